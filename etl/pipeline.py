"""The pipeline: the Python API that runs extract -> transform -> load.

``run(paths, database_url)`` is what the CLI, cron jobs and orchestrators call.
It finds the files, skips those whose content is unchanged since they last
loaded, parses the rest in worker processes, loads them in batches (each batch one
transaction, a failing batch retried document by document), then rebuilds stubs,
prunes and deletes orphaned entities, and records the run in ``etl_runs``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, delete, exists, insert, select, update
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from etl import database
from etl.database import ConfigurationError, DatabaseUnavailable, describe_error
from etl.extract import (
    DEFAULT_MAX_FILE_BYTES,
    DocumentError,
    FileStamp,
    SourceFile,
    content_hash,
    discover,
    file_stamp,
    read_bytes,
)
from etl.extract import extract as extract_document
from etl.load import (
    LoadCounts,
    delete_orphans,
    load_batch,
    refresh_stamps,
    refresh_stubs,
    writer_transaction,
)
from etl.records import TransformedDocument
from etl.schema import articles, etl_runs, rejected_documents, source_files

if TYPE_CHECKING:
    from concurrent.futures import Future

log = logging.getLogger("etl")

DEFAULT_BATCH_SIZE = 500
INLINE_BELOW = 64  # fewer files than this: parsing in-process beats starting workers
POOL_FILES = 5000  # files per generation of worker processes (see load_in_workers)


@dataclass(frozen=True, slots=True)
class Rejection:
    path: str
    error: str
    line: int | None = None
    column: int | None = None
    content_hash: str | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}:{self.column}"
        return f"{where}: {self.error}"


# The RunSummary fields that count something; etl_runs has a column for each.
COUNTERS = (
    "files_seen",
    "files_skipped_unchanged",
    "articles_inserted",
    "articles_updated",
    "articles_unchanged",
    "articles_removed",
    "duplicates",
    "stubs_created",
    "stubs_deleted",
    "links_written",
    "documents_rejected",
    "warnings",
)


@dataclass
class RunSummary:
    """What a run did; ``etl run --json`` prints exactly ``to_dict()``."""

    run_id: int | None = None
    status: str = "running"
    database: str = ""
    files_seen: int = 0
    files_skipped_unchanged: int = 0
    articles_inserted: int = 0
    articles_updated: int = 0
    articles_unchanged: int = 0
    articles_removed: int = 0
    duplicates: int = 0
    stubs_created: int = 0
    stubs_deleted: int = 0
    links_written: int = 0
    documents_rejected: int = 0
    warnings: int = 0
    seconds: float = 0.0
    rejected: list[Rejection] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rejected"] = [asdict(item) for item in self.rejected]
        return data

    def line(self) -> str:
        return (
            f"{self.files_seen} files ({self.files_skipped_unchanged} unchanged, skipped): "
            f"{self.articles_inserted} articles inserted, {self.articles_updated} updated, "
            f"{self.articles_unchanged} unchanged, {self.articles_removed} removed, "
            f"{self.duplicates} duplicates; "
            f"{self.stubs_created} stubs created, {self.stubs_deleted} deleted; "
            f"{self.links_written} links written; {self.documents_rejected} documents rejected "
            f"[{self.status}, {self.seconds:.1f}s]"
        )

    def add_counts(self, counts: LoadCounts) -> None:
        for name, value in asdict(counts).items():
            setattr(self, name, getattr(self, name) + value)

    def merge(self, part: RunSummary) -> None:
        """Add the counts and rejections of a part of this run (a worker's chunk)."""
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.rejected.extend(part.rejected)


# --- shards -----------------------------------------------------------------------


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


# --- extract + transform, in worker processes ---------------------------------------

Outcome = TransformedDocument | Rejection | str  # str: the key of an unchanged file


class Task(NamedTuple):
    """A file to process, with what the database knows of it."""

    source: SourceFile
    known_hash: str | None  # content hash stored by an earlier run
    max_bytes: int
    stamp: FileStamp | None  # size and mtime seen before reading, recorded after loading


def process_file(task: Task) -> Outcome:
    """Read, hash, and (if the content changed) parse and normalize one file."""
    # Imported here, not at the top: pydantic and the models cost a tenth of a second,
    # which a re-run that finds nothing to parse does not pay.
    from etl.transform import transform

    source, known_hash, max_bytes, _ = task
    digest = None
    try:
        data = read_bytes(source.path, max_bytes)
        digest = content_hash(data)
        if digest == known_hash:
            return source.key
        return transform(extract_document(source, max_bytes, data=data, digest=digest))
    except DocumentError as exc:
        return Rejection(source.key, exc.reason, exc.line, exc.column, digest)
    except Exception as exc:  # a bug must not stop the run; the file is reported
        log.exception("unexpected error in %s", source.path)
        return Rejection(
            source.key, f"unexpected error: {type(exc).__name__}: {exc}", None, None, digest
        )


# --- parallel loading -----------------------------------------------------------------
#
# Each worker process parses a chunk of files and writes it itself, through its own
# connection, under the writer lock: documents never cross a process boundary
# (pickling them cost as much as parsing), and one worker parses while another writes.

_worker_engine: Engine | None = None
_malloc_trim: Callable[[int], int] | None = None


class RunAborted(Exception):
    """The run stopped for a reason that is no document's fault: a worker process died
    (killed, out of memory) or hit a bug. Exit code 3; the run is recorded as failed."""


class WorkerFailure(Exception):
    """A worker could not finish its chunk; picklable, unlike driver exceptions."""

    def __init__(self, message: str, database_unavailable: bool) -> None:
        super().__init__(message, database_unavailable)
        self.message = message
        self.database_unavailable = database_unavailable


def _init_worker(url: str) -> None:
    import ctypes
    import multiprocessing.util

    global _worker_engine, _malloc_trim
    _worker_engine = database.make_engine(url)
    # glibc keeps freed heap for reuse, so a worker's RSS crept up by ~30 MB over a
    # 50,000-file run; malloc_trim between chunks hands it back. Elsewhere: no-op.
    with contextlib.suppress(OSError, AttributeError):
        _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
    # Pool workers leave through multiprocessing's exit hooks, not atexit.
    multiprocessing.util.Finalize(_worker_engine, _worker_engine.dispose, exitpriority=10)


def _load_chunk(tasks: list[Task], run_id: int | None, batch_size: int) -> RunSummary:
    """In a worker: parse and load ``tasks``; returns what it did, as a partial summary."""
    assert _worker_engine is not None, "worker not initialized"
    summary = RunSummary(run_id=run_id)
    # Parsing makes millions of short-lived dicts and lists but hardly any cycles;
    # the cyclic collector ran ~1,200 times per worker over the corpus (0.2 s of
    # CPU each). Paused for the chunk, it collects once at the end instead.
    gc.disable()
    try:
        with _worker_engine.connect() as conn:
            loader = BatchLoader(conn, summary, batch_size)
            for task in tasks:
                loader.add(task, process_file(task))
            loader.close()
    except OperationalError as exc:
        raise WorkerFailure(describe_error(exc), True) from None
    except DBAPIError as exc:
        raise WorkerFailure(describe_error(exc), exc.connection_invalidated) from None
    except Exception as exc:
        log.exception("worker failed")
        raise WorkerFailure(describe_error(exc), False) from None
    finally:
        gc.enable()
        gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    return summary


def chunk_sizes(total: int, batch_size: int, workers: int) -> list[int]:
    """How to cut ``total`` files into chunks for ``workers`` processes.

    Chunks are at most a batch, and small enough that every worker gets several.
    The first and last few are smaller: writing (one process at a time) starts
    sooner, and the workers finish closer together.
    """
    size = max(1, min(batch_size, -(-total // (workers * 4))))
    ramp = [max(1, size // 4), max(1, size // 2)]
    sizes: list[int] = []
    left = total
    for part in ramp:  # ramp up
        if left > 2 * sum(ramp) + size:
            sizes.append(part)
            left -= part
    tail = []
    for part in ramp:  # ramp down, mirrored
        if left > sum(ramp) + size:
            tail.insert(0, part)
            left -= part
    while left > 0:
        sizes.append(min(size, left))
        left -= sizes[-1]
    return sizes + tail


def plan_chunks(total: int, batch_size: int, workers: int) -> list[list[int]]:
    """Chunk sizes for ``total`` files, per generation of worker processes.

    The files are split into the fewest near-equal segments of at most
    ``POOL_FILES``; each is cut by :func:`chunk_sizes`.
    """
    count = max(1, -(-total // POOL_FILES))
    sizes = [total // count + (1 if index < total % count else 0) for index in range(count)]
    return [chunk_sizes(size, batch_size, workers) for size in sizes]


def load_in_workers(
    engine: Engine,
    todo: Sequence[SourceFile],
    task_for: Callable[[SourceFile], Task],
    summary: RunSummary,
    workers: int,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> None:
    """Spread ``todo`` over ``workers`` processes that parse and load; merge their summaries.

    Each segment of at most ``POOL_FILES`` files gets fresh worker processes: a
    worker's heap fragments as it goes (its RSS crept up by ~35 MB over 25 chunks,
    with the same live objects), so recycling them keeps a 50,000-file run's memory
    where a 5,000-file run's is. Tasks are built chunk by chunk, just before they
    are sent.
    """
    # Imported here: a run with nothing to parse (most scheduled re-runs) never needs them.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Before forking, so that the workers inherit pydantic and the models (~0.2 s of
    # imports and schema building) instead of each doing it again.
    import etl.transform  # noqa: F401

    # fork, not spawn/forkserver: those re-import the caller's __main__, which breaks
    # scripts and notebooks that call run() without an `if __name__ == "__main__"` guard.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    url = engine.url.render_as_string(hide_password=False)

    def collect(pending: deque[tuple[int, Future[RunSummary]]]) -> None:
        count, future = pending.popleft()
        try:
            summary.merge(future.result())
        except WorkerFailure as exc:
            if exc.database_unavailable:
                raise DatabaseUnavailable(f"database {summary.database}: {exc.message}") from None
            raise RunAborted(f"a worker failed: {exc.message}") from None
        if progress:
            progress(count, total)

    # Forked workers share the parent's heap copy-on-write; keep the garbage
    # collector from touching (and so copying) it in every worker.
    gc.freeze()
    try:
        start = 0
        for segment in plan_chunks(len(todo), batch_size, workers):
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=_init_worker, initargs=(url,)
            ) as pool:
                pending: deque[tuple[int, Future[RunSummary]]] = deque()
                try:
                    for size in segment:
                        part = [task_for(source) for source in todo[start : start + size]]
                        start += size
                        future = pool.submit(_load_chunk, part, summary.run_id, batch_size)
                        pending.append((size, future))
                        if len(pending) > workers:
                            collect(pending)
                    while pending:
                        collect(pending)
                except BrokenProcessPool:
                    # Seen by result() or, if a worker died before that, by submit().
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise RunAborted(
                        "a worker process died (killed, or out of memory?); "
                        "what it had not committed is rolled back: run again"
                    ) from None
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        gc.unfreeze()


# --- the run ------------------------------------------------------------------------


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
) -> RunSummary:
    """Load news documents from ``paths`` (default: the project's ``seeds/``) into the database.

    Returns the run summary; document problems are in ``summary.rejected`` and
    never raise. Raises ``ConfigurationError`` for bad arguments,
    ``DatabaseUnavailable`` when the database cannot be used and ``RunAborted``
    when a worker process dies.
    """
    started = time.monotonic()
    path_list = [Path(p) for p in (paths or [database.PROJECT_ROOT / "seeds"])]
    shard_range = parse_shard(shard) if isinstance(shard, str) else shard
    try:
        sources = [s for s in discover(path_list) if in_shard(s.key, shard_range)]
    except FileNotFoundError as exc:
        raise ConfigurationError(str(exc)) from None
    owns_engine = engine is None
    engine = engine or database.make_engine(database_url)
    summary = RunSummary(database=database.redact(engine.url), files_seen=len(sources))
    arguments = {
        "paths": [str(p) for p in path_list],
        "full_refresh": full_refresh,
        "prune": prune,
        "shard": "/".join(map(str, shard_range)) if shard_range else None,
    }
    try:
        _prepare(engine, migrate)
        with engine.connect() as conn:
            summary.run_id = _start_run(conn, arguments)
            try:
                _load_all(
                    conn,
                    sources,
                    summary,
                    full_refresh,
                    workers,
                    batch_size,
                    max_file_bytes,
                    progress,
                )
                _finish(conn, summary, sources, prune, shard_range)
                summary.status = "partial" if summary.documents_rejected else "succeeded"
            except BaseException as exc:
                summary.status = "failed"
                summary.error = describe_error(exc)
                _record_run_end(engine, summary, started)
                raise
            _record_run_end(engine, summary, started)
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
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _prepare(engine: Engine, migrate: bool) -> None:
    if migrate:
        database.ensure_schema(engine)
    else:
        database.require_schema(engine)


def _now() -> datetime:
    return datetime.now(UTC)


def _start_run(conn: Connection, arguments: dict[str, Any]) -> int:
    with conn.begin():
        result = conn.execute(
            insert(etl_runs).values(started_at=_now(), status="running", arguments=arguments)
        )
        return int(result.inserted_primary_key[0])


def _record_run_end(engine: Engine, summary: RunSummary, started: float) -> None:
    summary.seconds = round(time.monotonic() - started, 3)
    if summary.run_id is None:
        return
    counts = {name: getattr(summary, name) for name in COUNTERS}
    try:  # a fresh connection: the run's own may be the one that broke
        with engine.begin() as conn:
            conn.execute(
                update(etl_runs)
                .where(etl_runs.c.id == summary.run_id)
                .values(status=summary.status, finished_at=_now(), error=summary.error, **counts)
            )
    except SQLAlchemyError as exc:
        log.warning("could not record the end of run %s: %s", summary.run_id, describe_error(exc))


def _known_sources(conn: Connection) -> dict[str, tuple[str, int | None, int | None]]:
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


def _changed_sources(
    conn: Connection, sources: Sequence[SourceFile], summary: RunSummary, full_refresh: bool
) -> tuple[Sequence[SourceFile], dict[str, str]]:
    """The files to read, and the stored content hash of those an earlier run loaded.

    A file whose size and mtime equal the stored ones is skipped without being read.
    """
    if full_refresh:
        return sources, {}
    known = _known_sources(conn)
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


class BatchLoader:
    """Gathers parsed documents into batches and writes each in one transaction.

    A batch that fails is retried document by document, so one bad document is
    rejected alone. Rejections are recorded in ``rejected_documents``.
    """

    def __init__(self, conn: Connection, summary: RunSummary, batch_size: int) -> None:
        self.conn = conn
        self.summary = summary
        self.batch_size = batch_size
        self.batch: list[TransformedDocument] = []
        self.stamps: dict[str, FileStamp | None] = {}
        self.touched: dict[str, FileStamp] = {}  # new mtime, same content
        self.rejects: list[Rejection] = []

    def add(self, task: Task, outcome: Outcome) -> None:
        if isinstance(outcome, str):
            self.summary.files_skipped_unchanged += 1
            if task.stamp is not None:
                self.touched[outcome] = task.stamp
        elif isinstance(outcome, Rejection):
            self.rejects.append(outcome)
        else:
            self.batch.append(outcome)
            self.stamps[outcome.source_key] = task.stamp
            for warning in outcome.warnings:
                log.warning("%s: %s", outcome.source_key, warning)
            self.summary.warnings += len(outcome.warnings)
        if len(self.batch) >= self.batch_size:
            self._write_batch()
        if len(self.rejects) >= self.batch_size:
            self._record_rejects()
        if len(self.touched) >= self.batch_size:
            self._record_touched()

    def close(self) -> None:
        self._write_batch()
        self._record_rejects()
        self._record_touched()

    def _write_batch(self) -> None:
        if self.batch:
            self.rejects.extend(self._load(self.batch))
            self.batch = []
            self.stamps = {}

    def _record_touched(self) -> None:
        if self.touched:
            with writer_transaction(self.conn):
                refresh_stamps(self.conn, self.touched)
            self.touched = {}

    def _load(self, batch: list[TransformedDocument]) -> list[Rejection]:
        """Load a batch in one transaction; if it fails, load its documents one by one."""
        try:
            with writer_transaction(self.conn):
                counts = load_batch(self.conn, batch, _now(), self.summary.run_id, self.stamps)
            self.summary.add_counts(counts)
            return []
        except OperationalError:
            raise
        except (SQLAlchemyError, TypeError, ValueError, OverflowError) as exc:
            # A value no driver can bind (TypeError, OverflowError) is the document's fault too.
            if len(batch) == 1:
                doc = batch[0]
                return [
                    Rejection(
                        doc.source_key,
                        f"database refused the document: {describe_error(exc)}",
                        None,
                        None,
                        doc.content_hash,
                    )
                ]
            log.info(
                "batch of %d failed (%s); retrying document by document",
                len(batch),
                describe_error(exc),
            )
        rejects = []
        for doc in batch:
            rejects.extend(self._load([doc]))
        return rejects

    def _record_rejects(self) -> None:
        if not self.rejects:
            return
        now = _now()
        for item in self.rejects:
            log.error("rejected %s", item)
        with self.conn.begin():
            self.conn.execute(
                insert(rejected_documents),
                [
                    {
                        "run_id": self.summary.run_id,
                        "source_path": item.path,
                        "error": item.error,
                        "line": item.line,
                        "column": item.column,
                        "content_hash": item.content_hash,
                        "rejected_at": now,
                    }
                    for item in self.rejects
                ],
            )
        self.summary.rejected.extend(self.rejects)
        self.summary.documents_rejected += len(self.rejects)
        self.rejects = []


def _finish(
    conn: Connection,
    summary: RunSummary,
    sources: Sequence[SourceFile],
    prune: bool,
    shard: tuple[int, int] | None,
) -> None:
    """Rebuild stubs, prune vanished sources, delete what nothing references."""
    with writer_transaction(conn):
        if prune:
            summary.articles_removed += _prune(conn, {s.key for s in sources}, shard)
        summary.stubs_deleted += refresh_stubs(conn, _now())
        delete_orphans(conn)


def _prune(conn: Connection, seen: set[str], shard: tuple[int, int] | None) -> int:
    """Forget source files that disappeared; mark articles with no source left as removed."""
    gone = [
        path
        for path in conn.execute(select(source_files.c.path)).scalars()
        if path not in seen and in_shard(path, shard)
    ]
    for start in range(0, len(gone), 900):
        conn.execute(delete(source_files).where(source_files.c.path.in_(gone[start : start + 900])))
    orphaned = and_(
        ~articles.c.is_stub,
        ~articles.c.is_removed,
        ~exists().where(source_files.c.article_id == articles.c.id),
    )
    # fingerprint=NULL: if the file comes back, its document is written again.
    result = conn.execute(
        update(articles)
        .where(orphaned)
        .values(is_removed=True, fingerprint=None, updated_at=_now())
    )
    return result.rowcount
