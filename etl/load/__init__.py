"""Load: the news entities written set-based, in batches, inside the run's transactions.

Owns the articles and their links (``load``: which file's document each URL holds;
``writes``: the rows of a batch; ``prepared``: those rows made ready before the writer
lock; ``unchanged``: the rewritten articles whose references stay as they were;
``stubs``: tombstones and stubs),
the shared entities named by many sources (``aggregates``: providers, topics, images,
and deleting those nothing references any more),
the net counts of a run (``tally``) and a source's taxonomy rows (``taxonomy_load``).
It asks the ledger which files describe which article and reports files and counts to
it through ``etl.records.LoadLedger``, which the ledger implements and the runner
passes in: load never imports the ledger.

May import: ``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
