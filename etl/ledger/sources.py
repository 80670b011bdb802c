"""The ``sources`` rows: each named tree a run loads, its root, its taxonomy's stamp.

Which PATH belongs to which source is ``etl.extract.sources``'; this module keeps
their rows: created, moved to a new root, or adopted from ``legacy`` (what a database
recorded before sources existed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection, insert, select, update

from etl.db.schema import sources
from etl.db.sql import transaction
from etl.db.writer import writer_transaction
from etl.extract.sources import LEGACY, SourceSpec
from etl.ledger.ledger import now


class SourceRow(NamedTuple):
    id: int
    name: str
    root: str
    taxonomy_stamp: str | None


def known_source_roots(conn: Connection) -> dict[str, str]:
    """Name -> root of every source the database knows (a handful of rows)."""
    with transaction(conn):
        return {row.name: row.root for row in conn.execute(select(sources.c.name, sources.c.root))}


def _source_rows(conn: Connection) -> dict[str, SourceRow]:
    columns = (sources.c.id, sources.c.name, sources.c.root, sources.c.taxonomy_stamp)
    return {row.name: SourceRow(*row) for row in conn.execute(select(*columns))}


def _source_changes(
    specs: Sequence[SourceSpec], rows: dict[str, SourceRow]
) -> tuple[list[SourceSpec], list[SourceSpec]]:
    """The specs with no row yet, and those whose row has another root."""
    missing = [spec for spec in specs if spec.name not in rows]
    moved = [spec for spec in specs if spec.name in rows and rows[spec.name].root != spec.root]
    return missing, moved


def ensure_sources(conn: Connection, specs: Sequence[SourceSpec]) -> dict[str, SourceRow]:
    """The rows of the run's sources, created or moved (new root) as needed.

    A source that is new adopts the ``legacy`` source (state recorded before sources
    existed) if there is one: it is renamed and given the new root, so an upgraded
    single-tree database reloads nothing. Writes nothing when every source exists
    with the same root.
    """
    with transaction(conn):
        rows = _source_rows(conn)
    if not any(_source_changes(specs, rows)):
        return {spec.name: rows[spec.name] for spec in specs}
    at = now()
    with writer_transaction(conn):
        # Read again under the writer lock: a concurrent run may have created or
        # moved the same sources since the first read.
        rows = _source_rows(conn)
        missing, moved = _source_changes(specs, rows)
        for spec in moved:
            conn.execute(
                update(sources)
                .where(sources.c.name == spec.name)
                .values(root=spec.root, updated_at=at)
            )
        for spec in missing:
            legacy = rows.get(LEGACY)
            if legacy is not None and legacy.root == "":
                conn.execute(
                    update(sources)
                    .where(sources.c.id == legacy.id)
                    .values(name=spec.name, root=spec.root, updated_at=at)
                )
                del rows[LEGACY]
                continue
            conn.execute(
                insert(sources).values(name=spec.name, root=spec.root, created_at=at, updated_at=at)
            )
        result = _source_rows(conn)
    return {spec.name: result[spec.name] for spec in specs}


def set_taxonomy_stamp(conn: Connection, source_id: int, stamp: str | None) -> None:
    """Record the stamp of the taxonomy files just loaded (None: read them next time)."""
    conn.execute(update(sources).where(sources.c.id == source_id).values(taxonomy_stamp=stamp))
