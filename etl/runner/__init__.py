"""Runner: a run from paths to a summary; the API behind ``etl run``.

Owns the pipeline (``pipeline``: the run's steps, taxonomy, the run's end), what a run
does before it writes (``planning``: arguments, shards, prune, unchanged files), its
defaults (``defaults``: importing nothing, for the CLI's options), one file's parse
(``parsing``), the processes that parse a few files ahead while a run starts
(``parse_ahead``), the process pool and its batches (``workers``: each document gets its
file's stamp, and load gets the ledger, ``etl.ledger.files.LEDGER``, from here), signals
during a run (``interrupts``), logging (``logs``, ``run_log``) and the error a failed
run reports (``failures``). Named ``runner``, not ``run``: ``etl.run`` is the API's
function.

May import: ``etl.extract``, ``etl.transform``, ``etl.load``, ``etl.ledger``,
``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
