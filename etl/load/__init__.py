"""Load: the news entities written set-based, in batches, inside the run's transactions.

Owns the articles and their links (``load``: settle, elect, write, stubs and orphans),
the shared entities named by many sources (``aggregates``: providers, topics, images),
the net counts of a run (``tally``) and a source's taxonomy rows (``taxonomy_load``).
It reports source files and counts to the ledger.

May import: ``etl.ledger``, ``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
