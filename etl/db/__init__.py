"""Db: the database itself, knowing nothing of files, and of a run only its id.

Owns the tables (``schema``, a package with a module per area), the analyst views
(``views``), the descriptions of both (``comments``, ``dictionary``,
``datasette_metadata``), engines, who disposes of them, and the dialects' settings
(``database``; its defaults, importing nothing, in ``defaults``; lost connections,
discarded rather than rolled back or reused, in ``disconnects``), every lock taken in
the database (``locks``: the writer lock, the migration lock, a run's lease), the
transactions that write the news under the writer lock and tag the change feed's entries
with their run (``writer``), the per-dialect SQL toolkit (``sql``; its lookups by ``IN``
lists in ``lookups``), foreign keys of bulk inserts checked once (``integrity``),
MariaDB's ``LOAD DATA`` of bulk rows (``load_data``), the timers of where a run's time
goes (``timing``) and Alembic upgrades (``migrating``; the migrations themselves are in
``etl/migrations``), and an empty database's schema made from the chain's recorded
statements (``head_schema``).

May import: ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
