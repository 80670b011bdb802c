"""Workers: parse files and write them, a chunk at a time, in a pool of processes.

Owns the batch loader (a batch is one transaction; a failing batch is retried document
by document, so one bad document is rejected alone), and the process pool: chunk
planning, fresh worker processes every ``POOL_FILES`` files, the garbage collector and
``malloc_trim``, and stopping the workers: on a signal to the run
(:func:`stop_workers`), when the run fails, and when the main process dies
(``PR_SET_PDEATHSIG``).

Each worker process parses a chunk of files and writes it itself, through its own
connection, under the writer lock: its documents never cross a process boundary
(pickling them cost as much as parsing; only a run too small for the pool has its
documents parsed ahead, ``etl.runner.parse_ahead``), and one worker parses while
another writes.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from etl.db import database, timing
from etl.db.database import DatabaseUnavailable, describe_error
from etl.db.sql import transaction, writer_transaction
from etl.ledger.files import LEDGER, refresh_stamps
from etl.ledger.ledger import now
from etl.ledger.rejections import record_rejects
from etl.ledger.runs import add_counts
from etl.load.load import settle
from etl.load.prepared import Prepared
from etl.load.tally import counted
from etl.records import (
    Candidate,
    Counts,
    FileKey,
    FileStamp,
    Outcome,
    Rejection,
    RunAborted,
    RunSummary,
    SourceFile,
    TransformedDocument,
    Unchanged,
)
from etl.runner import logs, run_log
from etl.runner.failures import is_document_error
from etl.runner.parsing import Task, prefetch_files, process_file

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.process import BaseProcess

log = logging.getLogger("etl")

POOL_FILES = 5000  # files per generation of worker processes (see load_in_workers)


def timed_process_file(task: Task) -> Outcome:
    """:func:`process_file`, its CPU seconds added to the ``fill`` timer."""
    started = time.process_time()
    outcome = process_file(task)
    timing.add("fill", time.process_time() - started)
    return outcome


class LoadContext(NamedTuple):
    """What every batch of a run needs to know (sent to each worker with its chunk)."""

    run_id: int | None
    batch_size: int
    max_bytes: int
    source_ids: dict[str, int]  # source name -> sources.id


def read_candidate(candidate: Candidate, max_bytes: int) -> TransformedDocument | None:
    """A recorded file read again, because it wins a URL whose article does not hold it."""
    source = SourceFile(candidate.root, candidate.path, candidate.source)
    outcome = process_file(Task(source, None, max_bytes, None))
    if isinstance(outcome, TransformedDocument):
        return outcome
    log.warning(
        "%s (source %s) wins %s but cannot be read again: %s",
        candidate.path,
        candidate.source,
        "its URL",
        outcome,
    )
    return None


_worker_engine: Engine | None = None

_malloc_trim: Callable[[int], int] | None = None


class WorkerFailure(Exception):
    """A worker could not finish its chunk; picklable, unlike driver exceptions."""

    def __init__(self, message: str, database_unavailable: bool) -> None:
        super().__init__(message, database_unavailable)
        self.message = message
        self.database_unavailable = database_unavailable


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _init_worker(url: str) -> None:
    import ctypes
    import multiprocessing.util

    global _worker_engine, _malloc_trim
    # The main process decides when the run stops: Ctrl-C (SIGINT to the whole
    # foreground process group) is its to handle, so workers print no traceback; its
    # SIGTERM ends a worker at once, rolling back what the worker had not committed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        # Linux: the kernel sends SIGTERM when the main process dies (even by SIGKILL),
        # so no worker outlives it blocked on a pipe, holding the database open.
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the main process died before prctl: nobody to work for
        os._exit(1)
    _worker_engine = database.make_engine(url)
    # glibc keeps freed heap for reuse, so a worker's RSS crept up by ~30 MB over a
    # 50,000-file run; malloc_trim between chunks hands it back. Elsewhere: no-op.
    with contextlib.suppress(OSError, AttributeError):
        _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
    # Pool workers leave through multiprocessing's exit hooks, not atexit.
    multiprocessing.util.Finalize(_worker_engine, _worker_engine.dispose, exitpriority=10)


def _load_chunk(tasks: list[Task], context: LoadContext) -> RunSummary:
    """In a worker: parse and load ``tasks``; returns what it did, as a partial summary."""
    assert _worker_engine is not None, "worker not initialized"
    summary = RunSummary(run_id=context.run_id)
    timing.reset()  # a forked worker starts with the main process's timers
    # Parsing makes millions of short-lived dicts and lists but hardly any cycles;
    # the cyclic collector ran ~1,200 times per worker over the corpus (0.2 s of
    # CPU each). Paused for the chunk, it collects once at the end instead.
    gc.disable()
    try:
        prefetch_files(tasks)
        with _worker_engine.connect() as conn:
            loader = BatchLoader(conn, summary, context)
            for task in tasks:
                loader.add(task, timed_process_file(task))
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
    summary.timings = timing.snapshot()
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
    tail: list[int] = []
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


_running_pools: list[ProcessPoolExecutor] = []


def _pool_processes(pool: ProcessPoolExecutor) -> list[BaseProcess]:
    return list((getattr(pool, "_processes", None) or {}).values())


def stop_workers(signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` to every worker process of the running pools (safe in a signal
    handler: it only sends signals). SIGTERM ends a worker at once: what it had not
    committed is rolled back by the database."""
    for pool in list(_running_pools):
        for process in _pool_processes(pool):
            if process.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signum)


def _shut_down(pool: ProcessPoolExecutor) -> None:
    """After a failure or a signal: end the workers now (their open transactions roll
    back) instead of letting them finish their chunks, then wait for all of them."""
    processes = _pool_processes(pool)
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
    for process in processes:
        with contextlib.suppress(ValueError):
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
    pool.shutdown(wait=True, cancel_futures=True)


def load_in_workers(
    engine: Engine,
    todo: Sequence[SourceFile],
    task_for: Callable[[SourceFile], Task],
    summary: RunSummary,
    workers: int,
    context: LoadContext,
    progress: Callable[[int, int], None] | None,
    total: int,
    alongside: Callable[[], None] = lambda: None,
) -> None:
    """Spread ``todo`` over ``workers`` processes that parse and load; merge their summaries.
    ``alongside`` is this process's own work, done once the workers have their first
    chunks, before it first waits for one (they parse them meanwhile).

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
    import etl.transform.transform  # noqa: F401

    # fork, not spawn/forkserver: those re-import the caller's __main__, which breaks
    # scripts and notebooks that call run() without an `if __name__ == "__main__"` guard.
    methods = multiprocessing.get_all_start_methods()
    fork = multiprocessing.get_context("fork" if "fork" in methods else None)
    url = engine.url.render_as_string(hide_password=False)

    own = [alongside]  # done before this process first waits for a worker

    def collect(pending: deque[tuple[int, Future[RunSummary]]]) -> None:
        _collect(pending, summary, progress, total, own)

    # Forked workers share the parent's heap copy-on-write; keep the garbage
    # collector from touching (and so copying) it in every worker.
    gc.freeze()
    try:
        start = 0
        for segment in plan_chunks(len(todo), context.batch_size, workers):
            with ProcessPoolExecutor(
                workers, mp_context=fork, initializer=_init_worker, initargs=(url,)
            ) as pool:
                pending: deque[tuple[int, Future[RunSummary]]] = deque()
                _running_pools.append(pool)
                try:
                    for size in segment:
                        part = [task_for(source) for source in todo[start : start + size]]
                        start += size
                        future = pool.submit(_load_chunk, part, context)
                        pending.append((size, future))
                        if len(pending) > workers:
                            collect(pending)
                    while pending:
                        collect(pending)
                    pool.shutdown(wait=True)  # here, where a signal still stops the workers
                except BrokenProcessPool:
                    # Seen by result() or, if a worker died before that, by submit().
                    _shut_down(pool)
                    raise RunAborted(
                        "a worker process died (killed, or out of memory?); "
                        "what it had not committed is rolled back: run again"
                    ) from None
                except BaseException:  # a failure, or a signal (RunInterrupted)
                    _shut_down(pool)
                    raise
                finally:
                    _running_pools.remove(pool)
    finally:
        gc.unfreeze()


def _collect(
    pending: deque[tuple[int, Future[RunSummary]]],
    summary: RunSummary,
    progress: Callable[[int, int], None] | None,
    total: int,
    own: list[Callable[[], None]],
) -> None:
    """Wait for the oldest chunk sent and merge its summary; first do (once) this
    process's ``own`` work, left in the list until then."""
    while own:
        own.pop()()
    count, future = pending.popleft()
    try:
        summary.merge(future.result())
    except WorkerFailure as exc:
        if exc.database_unavailable:
            raise DatabaseUnavailable(f"database {summary.database}: {exc.message}") from None
        raise RunAborted(f"a worker failed: {exc.message}") from None
    if progress:
        progress(count, total)


class BatchLoader:
    """Gathers parsed documents into batches and writes each in one transaction.

    A batch that fails is retried document by document, so one bad document is
    rejected alone. Rejections are recorded in ``rejected_documents``. Every count goes
    to the run's row in the transaction that commits what it counts (etl.load.tally):
    a batch's changes and its documents' warnings with the batch, rejections with
    their records, files found unchanged with the next transaction (or one of their
    own at the end), so that ``summary`` and the row hold only what was committed.
    """

    def __init__(self, conn: Connection, summary: RunSummary, context: LoadContext) -> None:
        self.conn = conn
        self.summary = summary
        self.context = context
        self.batch_size = context.batch_size
        self.batch: list[TransformedDocument] = []
        self.touched: dict[FileKey, FileStamp] = {}  # new mtime, same content
        self.rejects: list[Rejection] = []
        self.pending = Counts()  # counted here, recorded with the next transaction

    def add(self, task: Task, outcome: Outcome) -> None:
        run_log.file_outcome(task.source.path, outcome)
        if isinstance(outcome, Unchanged):
            self.pending.files_skipped_unchanged += 1
            if task.stamp is not None:
                source_id = self.context.source_ids[task.source.source]
                self.touched[FileKey(source_id, outcome.key)] = task.stamp
        elif isinstance(outcome, Rejection):
            self.rejects.append(outcome)
        else:
            self.batch.append(outcome)
            for warning in outcome.warnings:
                log.warning("%s: %s", outcome.source_key, warning)
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
        if self.pending.nonzero():
            with transaction(self.conn):
                add_counts(self.conn, self.summary.run_id, self.pending)
            self._committed()

    def _committed(self) -> None:
        """The pending counts were recorded by a transaction that committed."""
        self.summary.add(self.pending)
        self.pending = Counts()

    def _write_batch(self) -> None:
        if self.batch:
            started = time.monotonic()
            rejects = self._load(self.batch)
            run_log.batch_written(len(self.batch), time.monotonic() - started, len(rejects))
            self.rejects.extend(rejects)
            self.batch = []

    def _record_touched(self) -> None:
        if self.touched:
            with writer_transaction(self.conn):
                refresh_stamps(self.conn, self.touched)
                add_counts(self.conn, self.summary.run_id, self.pending)
            self._committed()
            self.touched = {}

    def _load(self, batch: list[TransformedDocument]) -> list[Rejection]:
        """Load a batch in one transaction; if it fails, load its documents one by one."""
        extra = Counts(warnings=sum(len(doc.warnings) for doc in batch))
        extra.add(self.pending)
        try:
            prepared = Prepared()  # before the writer lock: no one waits for this work
            prepared.add(self.conn, batch)
            with counted(
                self.conn,
                self.summary.run_id,
                self.summary,
                extra,
                LEDGER,
                before_lock=lambda: prepared.stage_articles(self.conn),
            ) as tally:
                settle(
                    self.conn,
                    batch,
                    source_ids=self.context.source_ids,
                    now=now(),
                    run_id=self.summary.run_id,
                    ledger=LEDGER,
                    reader=lambda candidate: read_candidate(candidate, self.context.max_bytes),
                    tally=tally,
                    prepared=prepared,
                )
            self.pending = Counts()
            return []
        except (SQLAlchemyError, TypeError, ValueError, OverflowError) as exc:
            if self.conn.invalidated or (
                isinstance(exc, OperationalError) and not is_document_error(exc.orig)
            ):
                raise  # the server's or the connection's (lost, of whatever class): the run ends
            # A value no driver can bind (TypeError, OverflowError) is the document's fault too.
            if len(batch) == 1:
                doc = batch[0]
                self.pending.warnings += len(doc.warnings)  # recorded with the next transaction
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
        for item in self.rejects:
            logs.rejected(item)
        counts = Counts(documents_rejected=len(self.rejects))
        counts.add(self.pending)
        record_rejects(self.conn, self.summary.run_id, self.rejects, counts)
        self.summary.rejected.extend(self.rejects)
        self.pending = counts
        self._committed()
        self.rejects = []
