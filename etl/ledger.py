"""The ledger: the bookkeeping tables, every statement that reads or writes them.

Owns ``etl_runs`` (a run's start, end and counts), ``rejected_documents``,
``source_files`` (which file holds which content, its stamp for the next run's
quick check) and the prune of files that disappeared. The news tables belong to
``etl.load``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, exists, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from etl.database import describe_error
from etl.records import FileStamp, Rejection, RunSummary, TransformedDocument
from etl.schema import articles, etl_runs, rejected_documents, source_files
from etl.sql import in_conditions, upsert

log = logging.getLogger("etl")


def now() -> datetime:
    return datetime.now(UTC)


def start_run(conn: Connection, arguments: dict[str, Any]) -> int:
    with conn.begin():
        result = conn.execute(
            insert(etl_runs).values(started_at=now(), status="running", arguments=arguments)
        )
        return int(result.inserted_primary_key[0])


def record_run_end(engine: Engine, summary: RunSummary) -> None:
    if summary.run_id is None:
        return
    counts = summary.counts()
    try:  # a fresh connection: the run's own may be the one that broke
        with engine.begin() as conn:
            conn.execute(
                update(etl_runs)
                .where(etl_runs.c.id == summary.run_id)
                .values(status=summary.status, finished_at=now(), error=summary.error, **counts)
            )
    except SQLAlchemyError as exc:
        log.warning("could not record the end of run %s: %s", summary.run_id, describe_error(exc))


def known_sources(conn: Connection) -> dict[str, tuple[str, int | None, int | None]]:
    """Source key -> (content hash, size, mtime_ns) as the last load recorded them.

    One plain query: on a re-run it is several times faster than asking for the
    files a block at a time (IN lists of 900 keys), and on a first load it is empty.
    """
    columns = (
        source_files.c.path,
        source_files.c.content_hash,
        source_files.c.size,
        source_files.c.mtime_ns,
    )
    with conn.begin():
        return {row[0]: tuple(row[1:]) for row in conn.execute(select(*columns))}


def record_sources(
    conn: Connection,
    docs: Sequence[TransformedDocument],
    ids: dict[str, int],
    now: datetime,
    run_id: int | None,
    stamps: Mapping[str, FileStamp | None],
) -> None:
    rows = []
    for d in sorted(docs, key=lambda d: d.source_key):
        stamp = stamps.get(d.source_key)
        rows.append(
            {
                "path": d.source_key,
                "content_hash": d.content_hash,
                "size": stamp.size if stamp else None,
                "mtime_ns": stamp.mtime_ns if stamp else None,
                "article_id": ids[d.article.url],
                "canonical_url": d.article.url,
                "published_at": d.article.published_at,
                "loaded_at": now,
                "last_run_id": run_id,
            }
        )
    upsert(
        conn,
        source_files,
        rows,
        ["path"],
        lambda table, new: [
            (name, new[name])
            for name in (
                "content_hash",
                "size",
                "mtime_ns",
                "article_id",
                "canonical_url",
                "published_at",
                "loaded_at",
                "last_run_id",
            )
        ],
    )


def refresh_stamps(conn: Connection, stamps: Mapping[str, FileStamp]) -> None:
    """Record new stamps of files whose content turned out unchanged (touched, not edited)."""
    if not stamps:
        return
    stmt = (
        update(source_files)
        .where(source_files.c.path == bindparam("b_path"))
        .values(size=bindparam("b_size"), mtime_ns=bindparam("b_mtime_ns"))
    )
    conn.execute(
        stmt,
        [
            {"b_path": path, "b_size": stamp.size, "b_mtime_ns": stamp.mtime_ns}
            for path, stamp in sorted(stamps.items())
        ],
    )


def prune(conn: Connection, seen: set[str], in_scope: Callable[[str], bool]) -> int:
    """Forget source files that disappeared; mark articles with no source left as removed."""
    gone = [
        path
        for path in conn.execute(select(source_files.c.path)).scalars()
        if path not in seen and in_scope(path)
    ]
    for condition in in_conditions(conn, source_files.c.path, gone):
        conn.execute(delete(source_files).where(condition))
    orphaned = and_(
        ~articles.c.is_stub,
        ~articles.c.is_removed,
        ~exists().where(source_files.c.article_id == articles.c.id),
    )
    # fingerprint=NULL: if the file comes back, its document is written again.
    result = conn.execute(
        update(articles).where(orphaned).values(is_removed=True, fingerprint=None, updated_at=now())
    )
    return result.rowcount


def record_rejects(conn: Connection, run_id: int | None, rejects: Sequence[Rejection]) -> None:
    """Record rejected documents (their own transaction: no writer lock needed)."""
    if not rejects:
        return
    at = now()
    with conn.begin():
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
