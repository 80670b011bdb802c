"""Reading ``etl_runs`` back for ``etl runs`` and ``etl.runs()``: each run's sources,
status, duration, counts and error, filtered by source and status.

A run left ``running`` whose process is gone (SIGKILL, the OOM killer, a machine that
stopped) is reported as ``abandoned`` as soon as that can be known, without writing
anything (``etl.ledger.ledger.run_is_gone``): on PostgreSQL and MariaDB its liveness lock
is free; on SQLite its process no longer exists on this host. The next run records it as
``interrupted`` (``etl.ledger.ledger.mark_abandoned_runs``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, desc, select

from etl.db import database
from etl.db.schema import etl_runs
from etl.ledger import ledger
from etl.records import RunStatus

# What `etl runs --status` accepts: plain strings (click matches an Enum by its name).
STATUSES = tuple(status.value for status in RunStatus)
# The counts `etl runs` shows, in its column order (of etl.records.COUNTER_NAMES).
SHOWN_COUNTS = (
    "articles_inserted",
    "articles_updated",
    "articles_removed",
    "duplicates",
    "documents_rejected",
)
_PAGE = 200


def run_sources(arguments: Any) -> list[str]:
    """The sources a run loaded, as it recorded them (runs before that: its --source)."""
    if not isinstance(arguments, dict):
        return []
    recorded = arguments.get("sources")
    if isinstance(recorded, list):
        return [str(name) for name in recorded]
    return [str(arguments["source"])] if arguments.get("source") else []


def describe(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    """An ``etl_runs`` row with ``sources``, ``seconds`` and the status as it is now."""
    described = dict(row)
    described["sources"] = run_sources(row.get("arguments"))
    if row["status"] == RunStatus.RUNNING and ledger.run_is_gone(
        conn, row["id"], row.get("arguments")
    ):
        described["status"] = RunStatus.ABANDONED.value
    started, finished = row.get("started_at"), row.get("finished_at")
    described["seconds"] = (
        round((finished - started).total_seconds(), 3) if started and finished else None
    )
    return described


def _pages(conn: Connection) -> Iterator[list[dict[str, Any]]]:
    before: int | None = None
    while True:
        query = select(etl_runs).order_by(desc(etl_runs.c.id)).limit(_PAGE)
        if before is not None:
            query = query.where(etl_runs.c.id < before)
        rows = [dict(row._mapping) for row in conn.execute(query)]
        if not rows:
            return
        yield rows
        before = rows[-1]["id"]


def list_runs(
    conn: Connection,
    limit: int = 20,
    *,
    sources: Sequence[str] = (),
    statuses: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The latest ``limit`` runs (newest first) that loaded one of ``sources`` and have
    one of ``statuses`` (empty: any), described (:func:`describe`)."""
    database.require_etl_schema(conn)
    found: list[dict[str, Any]] = []
    for page in _pages(conn):
        for row in page:
            if sources and not set(sources) & set(run_sources(row.get("arguments"))):
                continue
            described = describe(conn, row)
            if statuses and described["status"] not in statuses:
                continue
            found.append(described)
            if len(found) == limit:
                return found
    return found


def runs(
    database_url: str | None = None,
    *,
    limit: int = 20,
    sources: Sequence[str] = (),
    statuses: Sequence[str] = (),
    engine: Engine | None = None,
    connect_timeout: float | None = database.DEFAULT_CONNECT_TIMEOUT,
) -> list[dict[str, Any]]:
    """The latest runs recorded in ``etl_runs`` (newest first), one dict per row, with
    the run's ``sources`` and ``seconds``; a run whose process is gone has the status
    ``abandoned``. Only runs of one of ``sources`` and ``statuses`` (empty: any).

    Raises ``NotAnEtlDatabase`` (a ``ConfigurationError``) for a database without the
    schema, SQLAlchemy errors when the database cannot be reached.
    """
    with (
        database.engine_for(
            database_url, engine, connect_timeout=connect_timeout, existing=True
        ) as reader,
        reader.connect() as conn,
    ):
        return list_runs(conn, limit, sources=sources, statuses=statuses)
