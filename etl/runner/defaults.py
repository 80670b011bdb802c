"""The defaults of a run (``etl.runner.pipeline.run``, ``etl run``), in a module that
imports nothing: the ``etl`` command declares its options with them before it imports
the pipeline and SQLAlchemy (``etl.cli.run_command``)."""

DEFAULT_BATCH_SIZE = 500  # documents written per transaction
DEFAULT_MAX_PRUNE = 0.5  # --prune refuses to forget more than this share of a source's files
