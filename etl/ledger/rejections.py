"""Rejected documents: recorded in ``rejected_documents`` as a run meets them, and read
back (``etl rejects``, ``etl.rejections()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, desc, insert, select

from etl.db import database
from etl.db.database import ConfigurationError
from etl.db.schema import etl_runs, rejected_documents
from etl.db.sql import transaction
from etl.ledger.ledger import now
from etl.ledger.runs import add_counts
from etl.records import Counts, Rejection


def record_rejects(
    conn: Connection, run_id: int | None, rejects: Sequence[Rejection], counts: Counts
) -> None:
    """Record rejected documents, and add ``counts`` (which include them) to the run's
    row, in one transaction (no writer lock needed: no news table changes)."""
    if not rejects:
        return
    at = now()
    with transaction(conn):
        conn.execute(
            insert(rejected_documents),
            [
                {
                    "run_id": run_id,
                    "source_path": item.path,
                    "error": item.error,
                    "line": item.line,
                    "column": item.column,
                    "content_hash": item.content_hash,
                    "rejected_at": at,
                }
                for item in rejects
            ],
        )
        add_counts(conn, run_id, counts)


def list_rejections(
    conn: Connection, run_id: int | None = None
) -> tuple[int | None, list[dict[str, Any]]]:
    """The run (default: the latest) and its rejected documents, in the order recorded.

    Raises ``ConfigurationError`` for a run id the database does not have.
    """
    database.require_etl_schema(conn)
    if run_id is None:
        run_id = conn.execute(select(etl_runs.c.id).order_by(desc(etl_runs.c.id)).limit(1)).scalar()
        if run_id is None:
            return None, []
    elif conn.execute(select(etl_runs.c.id).where(etl_runs.c.id == run_id)).first() is None:
        raise ConfigurationError(f"no run {run_id} in database {database.redact(conn.engine.url)}")
    query = (
        select(rejected_documents)
        .where(rejected_documents.c.run_id == run_id)
        .order_by(rejected_documents.c.id)
    )
    return run_id, [dict(row._mapping) for row in conn.execute(query)]


def rejections(
    run_id: int | None = None,
    database_url: str | None = None,
    *,
    engine: Engine | None = None,
    connect_timeout: float | None = database.DEFAULT_CONNECT_TIMEOUT,
) -> list[dict[str, Any]]:
    """The documents run ``run_id`` (default: the latest run) rejected, one dict per row.

    Raises ``ConfigurationError`` for an unknown run id, ``NotAnEtlDatabase`` for a
    database without the schema.
    """
    with (
        database.engine_for(
            database_url, engine, connect_timeout=connect_timeout, existing=True
        ) as reader,
        reader.connect() as conn,
    ):
        return list_rejections(conn, run_id)[1]
