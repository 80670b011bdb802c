"""The pipeline: the Python API that runs extract -> transform -> load.

``run(paths, database_url)`` is what the CLI, cron jobs and orchestrators call.
It finds the files, skips those whose size and mtime are unchanged since they
last loaded, hands the rest to the workers (``etl.workers``), then rebuilds
stubs, prunes and deletes orphaned entities, and records the run in the ledger.
A dry run is the same run inside one transaction that is rolled back at the end.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from etl import database, ledger
from etl.database import (
    DEFAULT_CONNECT_TIMEOUT,
    ConfigurationError,
    DatabaseUnavailable,
    describe_error,
)
from etl.extract import DEFAULT_MAX_FILE_BYTES, discover, file_stamp
from etl.interrupts import stop_on_signals
from etl.load import delete_orphans, refresh_stubs
from etl.records import Rejection, RunAborted, RunInterrupted, RunSummary, SourceFile
from etl.sql import rolled_back, writer_transaction
from etl.workers import DEFAULT_BATCH_SIZE, BatchLoader, Task, load_in_workers, process_file

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Rejection",
    "RunAborted",
    "RunInterrupted",
    "RunSummary",
    "default_paths",
    "run",
]

INLINE_BELOW = 64  # fewer files than this: parsing in-process beats starting workers


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` with 0 <= K < N."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ConfigurationError(
            f"--shard must look like K/N (for example 0/4), not {text!r}"
        ) from None
    if n < 1 or not 0 <= k < n:
        raise ConfigurationError(f"--shard {text}: K must be in 0..N-1 and N at least 1")
    return k, n


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Stable across machines and Python versions: sha256 of the relative path."""
    if shard is None:
        return True
    k, n = shard
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n == k


def default_paths() -> list[Path]:
    """What ``run()`` loads without paths: the project checkout's ``seeds/``.

    Only in a checkout (``pyproject.toml`` beside the package): an installed package
    has no seeds, and a run must be told what to load.
    """
    root = database.PROJECT_ROOT
    if (root / "pyproject.toml").is_file() and (root / "seeds").is_dir():
        return [root / "seeds"]
    raise ConfigurationError(
        "no PATH given: pass the files or directories to load, "
        "for example `etl run /data/news` (or set ETL_PATHS)"
    )


def run(
    paths: Iterable[str | os.PathLike[str]] | None = None,
    database_url: str | None = None,
    *,
    full_refresh: bool = False,
    prune: bool = False,
    shard: str | tuple[int, int] | None = None,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    migrate: bool = True,
    progress: Callable[[int, int], None] | None = None,
    engine: Engine | None = None,
    dry_run: bool = False,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    handle_signals: bool = True,
) -> RunSummary:
    """Load news documents from ``paths`` (default: the project's ``seeds/``) into the database.

    Returns the run summary; document problems are in ``summary.rejected`` and
    never raise. Raises ``ConfigurationError`` for bad arguments,
    ``DatabaseUnavailable`` when the database cannot be used, ``RunAborted``
    when a worker process dies, and ``RunInterrupted`` (a KeyboardInterrupt) on
    SIGTERM or SIGINT when ``handle_signals`` (main thread only): the workers are
    stopped and the run is recorded as ``interrupted`` first.

    ``dry_run``: the whole run, in this process, inside one transaction that is
    rolled back: the summary is a real run's, and nothing is written, not even the
    run's row. It holds the writer lock throughout (on SQLite: the database's).
    """
    started = time.monotonic()
    path_list = [Path(p) for p in (paths or default_paths())]
    shard_range = parse_shard(shard) if isinstance(shard, str) else shard
    try:
        sources = [s for s in discover(path_list) if in_shard(s.key, shard_range)]
    except FileNotFoundError as exc:
        raise ConfigurationError(str(exc)) from None
    owns_engine = engine is None
    engine = engine or database.make_engine(database_url, connect_timeout=connect_timeout)
    new_file = database.sqlite_file(engine.url)
    if new_file is not None and new_file.exists():
        new_file = None  # not created by this run: never removed by it
    summary = RunSummary(
        database=database.redact(engine.url), files_seen=len(sources), dry_run=dry_run
    )
    arguments = {
        "paths": [str(p) for p in path_list],
        "full_refresh": full_refresh,
        "prune": prune,
        "shard": "/".join(map(str, shard_range)) if shard_range else None,
    }
    try:
        with stop_on_signals(handle_signals), engine.connect() as conn, _dry(conn, dry_run):
            _prepare(conn if dry_run else engine, migrate)
            summary.run_id = ledger.start_run(conn, arguments)
            ledger.mark_abandoned_runs(conn, summary.run_id)
            try:
                _load_all(
                    conn,
                    sources,
                    summary,
                    full_refresh,
                    1 if dry_run else workers,  # one connection, one transaction
                    batch_size,
                    max_file_bytes,
                    progress,
                )
                _finish(conn, summary, sources, prune, shard_range)
                summary.status = "partial" if summary.documents_rejected else "succeeded"
            except BaseException as exc:
                summary.status = "interrupted" if isinstance(exc, RunInterrupted) else "failed"
                summary.error = describe_error(exc)
                if isinstance(exc, RunInterrupted):
                    exc.summary = summary
                _record_end(conn if dry_run else engine, summary, started)
                ledger.end_lease(conn, summary.run_id)
                raise
            _record_end(conn if dry_run else engine, summary, started)
            ledger.end_lease(conn, summary.run_id)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"database {summary.database}: {describe_error(exc)}") from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable(
                f"database {summary.database}: {describe_error(exc)}"
            ) from None
        raise
    finally:
        if owns_engine:
            engine.dispose()
            database.discard_if_empty(new_file)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _dry(conn: Connection, dry_run: bool) -> AbstractContextManager[None]:
    """A dry run's one transaction, rolled back at the end; nothing for a real run."""
    return rolled_back(conn) if dry_run else nullcontext()


def _record_end(target: Engine | Connection, summary: RunSummary, started: float) -> None:
    summary.seconds = round(time.monotonic() - started, 3)
    ledger.record_run_end(target, summary)


def _prepare(target: Engine | Connection, migrate: bool) -> None:
    if isinstance(target, Connection):  # a dry run: inside its transaction
        database.prepare_in_transaction(target, migrate)
    elif migrate:
        database.ensure_schema(target)
    else:
        database.require_schema(target)


def _changed_sources(
    conn: Connection, sources: Sequence[SourceFile], summary: RunSummary, full_refresh: bool
) -> tuple[Sequence[SourceFile], dict[str, str]]:
    """The files to read, and the stored content hash of those an earlier run loaded.

    A file whose size and mtime equal the stored ones is skipped without being read.
    """
    if full_refresh:
        return sources, {}
    known = ledger.known_sources(conn)
    todo: list[SourceFile] = []
    known_hashes: dict[str, str] = {}
    for source in sources:
        stored = known.get(source.key)
        if stored is None:
            todo.append(source)
        elif stored[1:] == file_stamp(source.path):
            summary.files_skipped_unchanged += 1  # same size and mtime: not even read
        else:
            todo.append(source)
            known_hashes[source.key] = stored[0]
    return todo, known_hashes


def _load_all(
    conn: Connection,
    sources: Sequence[SourceFile],
    summary: RunSummary,
    full_refresh: bool,
    workers: int | None,
    batch_size: int,
    max_file_bytes: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    todo, known_hashes = _changed_sources(conn, sources, summary, full_refresh)
    if progress and summary.files_skipped_unchanged:
        progress(summary.files_skipped_unchanged, len(sources))

    def task_for(source: SourceFile) -> Task:
        # The stamp is taken now, shortly before the file is read, and recorded
        # once its content is loaded.
        stamp = file_stamp(source.path)
        return Task(source, known_hashes.get(source.key), max_file_bytes, stamp)

    workers = workers or os.cpu_count() or 1
    # Workers open their own connections, which an in-memory database cannot share.
    shareable = not database.is_in_memory_sqlite(conn.engine.url)
    if workers > 1 and len(todo) >= INLINE_BELOW and shareable:
        load_in_workers(
            conn.engine, todo, task_for, summary, workers, batch_size, progress, len(sources)
        )
    else:
        loader = BatchLoader(conn, summary, batch_size)
        for source in todo:
            task = task_for(source)
            loader.add(task, process_file(task))
            if progress:
                progress(1, len(sources))
        loader.close()
    summary.rejected.sort(key=lambda item: item.path)


def _finish(
    conn: Connection,
    summary: RunSummary,
    sources: Sequence[SourceFile],
    prune: bool,
    shard: tuple[int, int] | None,
) -> None:
    """Rebuild stubs, prune vanished sources, delete what nothing references."""
    with writer_transaction(conn, summary.run_id):
        if prune:
            summary.articles_removed += ledger.prune(
                conn, {s.key for s in sources}, lambda key: in_shard(key, shard)
            )
        summary.stubs_deleted += refresh_stubs(conn, ledger.now())
        delete_orphans(conn)
