"""Db: the database itself, knowing nothing of files or runs.

Owns the tables (``schema``), the analyst views (``views``), the descriptions of both
(``comments``, ``dictionary``, ``datasette_metadata``), engines and the dialects'
settings (``database``), the per-dialect SQL toolkit (``sql``), the timers of where
a run's time goes (``timing``) and Alembic upgrades (``migrating``; the migrations
themselves are in ``etl/migrations``).

May import: ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
