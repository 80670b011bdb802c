"""The ledger: the bookkeeping tables, every statement that reads or writes them.

Owns ``etl_runs`` (a run's start, end and counts, and the liveness lock that tells
a run still working from one whose process was killed), ``rejected_documents``,
``source_files`` (which file holds which content, its stamp for the next run's
quick check) and the prune of files that disappeared; and reading rejections back
(``rejections()``: the API behind ``etl rejects``; ``runs()`` is in
``etl.ledger.run_history``). The news tables belong to ``etl.load.load``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    desc,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from etl.db import database
from etl.db.database import ConfigurationError, describe_error
from etl.db.locks import LockAction, run_lease
from etl.db.schema import (
    etl_runs,
    rejected_documents,
    source_files,
    sources,
)
from etl.db.sql import in_conditions, transaction, upsert
from etl.db.writer import writer_transaction
from etl.extract.sources import LEGACY, SourceSpec
from etl.records import (
    COUNTER_NAMES,
    Counts,
    FileStamp,
    Rejection,
    RunSummary,
    TransformedDocument,
)

log = logging.getLogger("etl")


def now() -> datetime:
    return datetime.now(UTC)


def start_run(conn: Connection, arguments: dict[str, Any], counts: Counts | None = None) -> int:
    """Record a run as ``running``, with ``counts`` known before it writes (the files it
    found, and those it skips unread); ``conn`` holds its liveness lock until
    :func:`end_lease`.

    The arguments get the host and process id (how SQLite tells a dead run from a
    live one, and what an operator looks for).
    """
    process = {"host": socket.gethostname(), "pid": os.getpid()}
    with transaction(conn):
        result = conn.execute(
            insert(etl_runs).values(
                started_at=now(),
                status="running",
                arguments={**arguments, "process": process},
                **(counts.nonzero() if counts else {}),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        run_id = int(key[0])
        # Taken before the row is committed: no other run sees it `running` unlocked.
        _lease(conn, run_id, LockAction.TAKE)
        return run_id


def add_counts(conn: Connection, run_id: int | None, counts: Counts) -> None:
    """Add ``counts`` to the run's row, in the caller's transaction: a run's counts are
    recorded by the transactions that commit what they count (etl.load.tally)."""
    values = counts.nonzero()
    if run_id is None or not values:
        return
    conn.execute(
        update(etl_runs)
        .where(etl_runs.c.id == run_id)
        .values({name: etl_runs.c[name] + value for name, value in values.items()})
    )


def record_run_end(target: Engine | Connection, summary: RunSummary) -> None:
    """Record a run's end (through a fresh connection of an engine: the run's own may be
    the one that broke; or through the connection a dry run holds), and read its counts
    back into ``summary``: what its committed transactions recorded, worker processes
    stopped mid-chunk included."""
    if summary.run_id is None:
        return
    if isinstance(target, Connection) and target.invalidated:
        return  # a dry run stopped mid-statement: its transaction is gone already
    statement = (
        update(etl_runs)
        .where(etl_runs.c.id == summary.run_id)
        .values(status=summary.status, finished_at=now(), error=summary.error)
    )
    counters = select(*(etl_runs.c[name] for name in COUNTER_NAMES)).where(
        etl_runs.c.id == summary.run_id
    )

    def record(conn: Connection) -> None:
        conn.execute(statement)
        row = conn.execute(counters).one()
        for name in COUNTER_NAMES:
            setattr(summary, name, row._mapping[name])

    try:
        if isinstance(target, Engine):
            with target.begin() as conn:
                record(conn)
        else:
            with transaction(target):
                record(target)
    except SQLAlchemyError as exc:
        if summary.status in ("succeeded", "partial"):
            # The run's work is committed but its row would say `running`: the run
            # fails (a broken schema is exit 2, a lost connection 3) instead of
            # reporting success the run table contradicts.
            raise
        # Already failing: the run's own error is the one to report.
        log.warning("could not record the end of run %s: %s", summary.run_id, describe_error(exc))


# --- sources ---------------------------------------------------------------------


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


# --- source files ------------------------------------------------------------------

Stored = tuple[str, int | None, int | None]  # content hash, size, mtime_ns


def known_files(conn: Connection, source_ids: Sequence[int]) -> dict[tuple[int, str], Stored]:
    """(source id, key) -> (content hash, size, mtime_ns) as the last load recorded them,
    for every file of the given sources.

    One plain query: on a re-run it is several times faster than asking for the
    files a block at a time, and on a first load it is empty.
    """
    columns = (
        source_files.c.source_id,
        source_files.c.path,
        source_files.c.content_hash,
        source_files.c.size,
        source_files.c.mtime_ns,
    )
    with transaction(conn):
        return {
            (row[0], row[1]): (row[2], row[3], row[4])
            for row in conn.execute(
                select(*columns).where(source_files.c.source_id.in_(list(source_ids)))
            )
        }


SOURCE_FILE_COLUMNS = (
    "content_hash",
    "size",
    "mtime_ns",
    "article_id",
    "canonical_url",
    "published_at",
    "loaded_at",
    "last_run_id",
)


def record_sources(
    conn: Connection,
    docs: Sequence[TransformedDocument],
    source_ids: Mapping[str, int],
    article_ids: Mapping[str, int],
    at: datetime,
    run_id: int | None,
    stamps: Mapping[tuple[str, str], FileStamp | None],
) -> None:
    """Record what each file says now (its URL, date and content), with its stamp."""
    rows = []
    for d in sorted(docs, key=lambda d: (d.source, d.source_key)):
        stamp = stamps.get((d.source, d.source_key))
        rows.append(
            {
                "source_id": source_ids[d.source],
                "path": d.source_key,
                "content_hash": d.content_hash,
                "size": stamp.size if stamp else None,
                "mtime_ns": stamp.mtime_ns if stamp else None,
                "article_id": article_ids[d.article.url],
                "canonical_url": d.article.url,
                "published_at": d.article.published_at,
                "loaded_at": at,
                "last_run_id": run_id,
            }
        )
    upsert(
        conn,
        source_files,
        rows,
        ["source_id", "path"],
        lambda table, new: [(name, new[name]) for name in SOURCE_FILE_COLUMNS],
    )


def refresh_stamps(conn: Connection, stamps: Mapping[tuple[int, str], FileStamp]) -> None:
    """Record new stamps of files whose content turned out unchanged (touched, not edited)."""
    if not stamps:
        return
    stmt = (
        update(source_files)
        .where(
            source_files.c.source_id == bindparam("b_source_id"),
            source_files.c.path == bindparam("b_path"),
        )
        .values(size=bindparam("b_size"), mtime_ns=bindparam("b_mtime_ns"))
    )
    conn.execute(
        stmt,
        [
            {"b_source_id": sid, "b_path": path, "b_size": stamp.size, "b_mtime_ns": stamp.mtime_ns}
            for (sid, path), stamp in sorted(stamps.items())
        ],
    )


def forget_files(conn: Connection, gone: Sequence[tuple[int, str]]) -> set[int]:
    """Delete the rows of files that disappeared; the articles they described."""
    affected: set[int] = set()
    by_source: dict[int, list[str]] = {}
    for source_id, path in gone:
        by_source.setdefault(source_id, []).append(path)
    for source_id, paths in sorted(by_source.items()):
        for condition in in_conditions(conn, source_files.c.path, paths):
            where = and_(source_files.c.source_id == source_id, condition)
            affected.update(
                conn.execute(
                    select(source_files.c.article_id).where(
                        where, source_files.c.article_id.is_not(None)
                    )
                ).scalars()
            )
            conn.execute(delete(source_files).where(where))
    return affected


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


# --- liveness: runs left `running` by a process that was killed --------------------------


def _lease(conn: Connection, run_id: int, action: LockAction) -> bool | None:
    """Take, release or probe (True: nobody holds it) a run's liveness lock.

    A session lock held by the run's own connection (``etl.db.locks.run_lease``): it
    vanishes with the process or its connection, on whatever machine the run was, which
    is what tells a run that is still working from one that was killed. SQLite has none
    (host and pid instead).
    """
    return run_lease(conn, run_id, action)


def end_lease(conn: Connection, run_id: int | None) -> None:
    """Release a run's liveness lock (its connection may go back to a pool)."""
    if run_id is None or conn.invalidated or conn.closed:
        return
    try:
        with transaction(conn):
            _lease(conn, run_id, LockAction.RELEASE)
    except SQLAlchemyError as exc:
        log.warning("could not release the lock of run %s: %s", run_id, describe_error(exc))


def _process_gone(process: Any) -> bool:
    """SQLite: a run of a process on this host that no longer exists."""
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return False  # another machine (or an older run): cannot tell, leave it
    pid = process.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, another user's
    return False


def run_is_gone(conn: Connection, run_id: int, arguments: Mapping[str, Any] | None) -> bool:
    """Whether a run recorded as ``running`` has no process any more: on SQLite its
    process (recorded in ``arguments``) is gone; elsewhere nobody holds its lock."""
    if conn.dialect.name == "sqlite":
        return _process_gone((arguments or {}).get("process"))
    return bool(_lease(conn, run_id, LockAction.PROBE))


def mark_abandoned_runs(conn: Connection, run_id: int) -> list[int]:
    """Record runs left ``running`` by a process that died (SIGKILL, power loss) as
    ``interrupted``; runs still working (concurrent shards, other machines) keep going."""
    with transaction(conn):
        running = conn.execute(
            select(etl_runs.c.id, etl_runs.c.arguments).where(
                etl_runs.c.status == "running", etl_runs.c.id != run_id
            )
        ).all()
        if not running:
            return []
        gone = [row.id for row in running if run_is_gone(conn, row.id, row.arguments)]
        if gone:
            conn.execute(
                update(etl_runs)
                .where(etl_runs.c.id.in_(gone), etl_runs.c.status == "running")
                .values(
                    status="interrupted",
                    finished_at=now(),
                    error=(
                        "the process ended without recording the end of the run (killed, "
                        f"or its machine stopped); found by run {run_id}"
                    ),
                )
            )
    for gone_id in gone:
        log.warning("run %s was left running by a process that ended: now interrupted", gone_id)
    return gone


# --- reading the ledger (``etl runs``, ``etl rejects``) --------------------------------------


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
