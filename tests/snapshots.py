"""What a test database holds, as plain data to compare (helpers shared by the test
modules, like ``tests.helpers``).

- ``snapshot``: every entity table, id-free, derived from etl.db.schema (``live_snapshot``
  without tombstones, ``as_of`` for an older revision, ``records`` to read one table,
  ``db_text`` to search it all for a token);
- the types of conftest's fixtures of clean runs (``ReferenceSnapshot``, ``LoadedCorpus``,
  ``CorpusLoads``);
- counts: rows per table (``counts``), what run counts add up to (``held``,
  ``net_change``), and the articles a run in progress has committed (``loaded_articles``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Column, Table, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from etl.db.schema import (
    article_images,
    article_topics,
    articles,
    images,
    metadata,
    provider_images,
    providers,
    related_articles,
    source_files,
    topics,
)
from etl.records import RunSummary
from tests.helpers import connect

# --- a database's contents ----------------------------------------------------------------

# The tables that record runs, not what the files say: every other table of etl.db.schema
# is an entity table, and is compared column by column (a table added later too).
LEDGER_TABLES = frozenset(
    {
        "etl_runs",
        "rejected_documents",
        "article_changes",
        "change_feed_state",
    }
)


def compared(table: Table, column: Column[Any], *, with_sources: bool = True) -> bool:
    """Whether two databases that hold the same files must agree on ``column``: all
    but surrogate ids, when and by which run a row was written, the files' stamps
    (sizes, mtimes: not content, and NULL for a file read just after it was written)
    and where a source's checkout lives. The one list of what comparisons ignore.

    ``with_sources=False`` also ignores which source a row came from (the columns that
    refer to sources, and the fingerprint, which hashes the source's name): for the
    same files loaded as differently named sources.
    """
    if column.primary_key and column.name == "id":
        return False
    if column.name in ("created_at", "updated_at", "loaded_at") or column.name.endswith("run_id"):
        return False
    if column.name in ("size", "mtime_ns") or column.name.endswith("_stamp"):
        return False
    if not with_sources:
        target = referenced_table(column)
        if column.name == "fingerprint" or (target is not None and target.name == "sources"):
            return False
    return not (table.name == "sources" and column.name == "root")


def referenced_table(column: Column[Any]) -> Table | None:
    """The entity table a column holds ids of: its foreign key's, else ``X_id`` -> ``Xs``
    (``articles.source_id`` has no foreign key; see etl.db.schema)."""
    for key in column.foreign_keys:
        target: Table = key.column.table
        return target
    if column.name.endswith("_id"):
        return metadata.tables.get(f"{column.name.removesuffix('_id')}s")
    return None


def natural_key(table: Table) -> Column[Any]:
    """The column that identifies an entity: its one unique column (url, domain, slug, name)."""
    (key,) = (column for column in table.columns if column.unique)
    return key


def entity_tables(*, with_sources: bool = True) -> list[Table]:
    return [
        table
        for name, table in sorted(metadata.tables.items())
        if name not in LEDGER_TABLES and (with_sources or not name.startswith("source"))
    ]


def snapshot(url: str, *, with_sources: bool = True) -> dict[str, Any]:
    """Every entity table of etl.db.schema, column by column, with surrogate ids replaced
    by natural keys (article URL, provider domain, topic slug, image URL, source name)
    and rows sorted; ``snapshot["columns"]`` names each table's columns.

    Derived from the schema: a table or column added later is compared without anyone
    listing it. Tables and columns the database's schema revision does not have yet
    are left out: compare an older revision's snapshot with :func:`as_of`.

    Two databases hold the same data exactly when their snapshots are equal,
    whatever order, split or history the files were loaded in.
    """
    with connect(url) as conn:
        inspector = inspect(conn)
        present = {
            table.name: {column["name"] for column in inspector.get_columns(table.name)}
            for table in entity_tables(with_sources=with_sources)
            if inspector.has_table(table.name)
        }
        tables = [metadata.tables[name] for name in sorted(present)]
        keys: dict[str, dict[int, Any]] = {}
        for table in tables:
            if any(column.unique for column in table.columns) and "id" in table.c:
                key = natural_key(table)
                keys[table.name] = {row[0]: row[1] for row in conn.execute(select(table.c.id, key))}
        data: dict[str, Any] = {"columns": {}}
        for table in tables:
            columns = [
                column
                for column in table.columns
                if column.name in present[table.name]
                and compared(table, column, with_sources=with_sources)
            ]
            data["columns"][table.name] = tuple(column.name for column in columns)
            targets = [referenced_table(column) for column in columns]
            rows = []
            for row in conn.execute(select(*columns)):
                rows.append(
                    tuple(
                        keys[target.name].get(value)
                        if target is not None and value is not None
                        else _plain(value)
                        for value, target in zip(row, targets, strict=True)
                    )
                )
            data[table.name] = sorted(rows, key=_row_order)
        return data


class ReferenceSnapshot(Protocol):
    """The type of conftest's ``reference_snapshot`` fixture: the :func:`snapshot` of a
    clean ``etl run ROOT OPTIONS`` into a fresh database on ``backend``."""

    def __call__(self, root: Path, backend: str, *options: str) -> dict[str, Any]: ...


class LoadedCorpus(NamedTuple):
    """The whole shared corpus loaded by one clean ``etl.run`` into a fresh database on
    ``backend`` (conftest's ``corpus_loads`` and ``loaded_corpus``): the run's summary and
    the database's :func:`snapshot` right after it."""

    backend: str
    url: str
    summary: RunSummary
    snapshot: dict[str, Any]


class CorpusLoads(Protocol):
    """The type of conftest's ``corpus_loads`` fixture: the :class:`LoadedCorpus` of
    ``backend``, loaded once per session."""

    def __call__(self, backend: str) -> LoadedCorpus: ...


def records(data: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """A snapshot's rows of ``table`` as column -> value."""
    names = data["columns"][table]
    return [dict(zip(names, row, strict=True)) for row in data[table]]


def _row_order(row: tuple[Any, ...]) -> tuple[tuple[bool, str, str], ...]:
    return tuple((value is None, type(value).__name__, str(value)) for value in row)


def live_snapshot(url: str) -> dict[str, Any]:
    """The snapshot, tombstones aside (removed rows no file describes and nothing links)."""
    data = snapshot(url)
    names = data["columns"]["articles"]
    path_at, removed_at, stub_at = (
        names.index(name) for name in ("source_path", "is_removed", "is_stub")
    )
    data["articles"] = [
        row
        for row in data["articles"]
        if not (row[removed_at] and row[path_at] is None and not row[stub_at])
    ]
    return data


def as_of(data: dict[str, Any], older: dict[str, Any]) -> dict[str, Any]:
    """``data`` restricted to the tables and columns the ``older`` snapshot (an older
    revision) holds."""
    result: dict[str, Any] = {"columns": older["columns"]}
    for table, names in older["columns"].items():
        if table not in data["columns"]:
            continue
        at = [data["columns"][table].index(name) for name in names]
        rows = [tuple(row[i] for i in at) for row in data[table]]
        result[table] = sorted(rows, key=_row_order)
    return result


def db_text(url: str) -> str:
    """Everything the data tables hold, as one string (to search for a document's token)."""
    return json.dumps(snapshot(url, with_sources=True), default=str, ensure_ascii=False)


# --- counts -------------------------------------------------------------------------------


def counts(url: str) -> dict[str, int]:
    """Row counts of the data tables, plus stubs."""
    with connect(url) as conn:
        result = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                articles,
                providers,
                topics,
                images,
                provider_images,
                article_topics,
                article_images,
                related_articles,
                source_files,
            )
        }
        result["stubs"] = conn.execute(
            select(func.count()).select_from(articles).where(articles.c.is_stub)
        ).scalar_one()
        return result


class Held(NamedTuple):
    """What run counts add up to: full articles (tombstones aside), stubs, links."""

    articles: int
    stubs: int
    links: int


def held(url: str) -> Held:
    """The full articles, stubs and links the database holds now."""
    with connect(url) as conn:

        def number(query: Any) -> int:
            found: int = conn.execute(query).scalar_one()
            return found

        return Held(
            number(
                select(func.count())
                .select_from(articles)
                .where(~articles.c.is_stub, articles.c.source_path.is_not(None))
            ),
            number(select(func.count()).select_from(articles).where(articles.c.is_stub)),
            number(select(func.count()).select_from(related_articles)),
        )


def net_change(runs: Iterable[Mapping[str, Any] | RunSummary]) -> Held:
    """What the counts of ``runs`` (summaries or ``etl_runs`` rows) add up to: articles
    inserted minus removed, stubs created minus deleted, links added minus removed."""
    total = Held(0, 0, 0)
    for item in runs:
        row = item.counts() if isinstance(item, RunSummary) else item
        total = Held(
            total.articles + row["articles_inserted"] - row["articles_removed"],
            total.stubs + row["stubs_created"] - row["stubs_deleted"],
            total.links + row["links_added"] - row["links_removed"],
        )
    return total


def _plain(value: Any) -> Any:
    """Datetimes as ISO text; JSON as sorted text (dicts are not hashable)."""
    if isinstance(value, bool | None):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def loaded_articles(url: str) -> int | None:
    """Full (non-stub) articles committed so far; None while the schema does not exist."""
    backend = make_url(url).get_backend_name()
    try:
        if backend == "sqlite":
            path = make_url(url).database
            if not path or not Path(path).exists():
                return None
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                found: int = conn.execute(
                    "SELECT count(*) FROM articles WHERE NOT is_stub"
                ).fetchone()[0]
                return found
        with connect(url, poolclass=NullPool) as db:
            query = select(func.count()).select_from(articles).where(~articles.c.is_stub)
            count: int = db.execute(query).scalar_one()
            return count
    except (sqlite3.OperationalError, DBAPIError):
        return None
