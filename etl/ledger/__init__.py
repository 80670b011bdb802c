"""Ledger: what runs did, kept in the database beside the news.

Owns a run's row in ``etl_runs`` (``runs``: its start, the counts its transactions
add, its end), whether a run's process is still alive (``ledger``: the ledger's clock,
the runs' liveness locks, abandoned runs), the ``sources`` rows (``sources``), the
``source_files`` rows (``files``; its ``LEDGER`` is what load asks and reports to, as
``etl.records.LoadLedger`` describes it), rejected documents and their read API
(``rejections``), and the run history ``etl runs`` lists (``run_history``).

May import: ``etl.extract``, ``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
