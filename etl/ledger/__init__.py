"""Ledger: what runs did, kept in the database beside the news.

Owns ``etl_runs`` and the runs' leases, the ``sources`` and ``source_files`` rows,
the net-count scratch rows, rejected documents and their read API (``ledger``), and
the run history ``etl runs`` lists (``run_history``).

May import: ``etl.extract``, ``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
