"""The pipeline: the Python API that runs extract -> transform -> load.

``run(paths, database_url)`` is what the CLI, cron jobs and orchestrators call.
It plans the run (``etl.runner.planning``: the files, the shard, what ``--prune``
forgets, which files are unchanged since they last loaded), records its start, hands
the files to read to the workers (``etl.runner.workers``) and, while they parse their
first ones, loads the taxonomy of site roots whose ``_data/`` or ``_config.yml``
changed (``etl.transform.taxonomy``); then prunes, rebuilds stubs and deletes orphaned
entities, and records the run's end in the ledger.
A dry run is the same run inside one transaction that is rolled back at the end.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from etl.db import database, timing
from etl.db.database import (
    DEFAULT_CONNECT_TIMEOUT,
    ConfigurationError,
    describe_error,
)
from etl.db.integrity import validate_keys
from etl.db.schema import related_articles
from etl.db.sql import rolled_back, transaction, writer_transaction
from etl.extract.extract import DEFAULT_MAX_FILE_BYTES, file_stamp
from etl.extract.sources import DATA_DIR, SourceSpec, parse_shard
from etl.ledger import ledger
from etl.ledger.files import LEDGER, forget_files
from etl.ledger.rejections import record_rejects
from etl.ledger.runs import add_counts, record_run_end, start_run
from etl.ledger.sources import SourceRow, set_taxonomy_stamp
from etl.load import taxonomy_load
from etl.load.aggregates import has_pending, recompute_pending
from etl.load.load import settle
from etl.load.stubs import has_dirty_stubs, refresh_stubs
from etl.load.tally import counted
from etl.records import (
    Counts,
    FileKey,
    Outcome,
    Rejection,
    RunAborted,
    RunInterrupted,
    RunStatus,
    RunSummary,
    SourceFile,
    Taxonomy,
)
from etl.runner import interrupts, logs, parse_ahead
from etl.runner.defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_PRUNE
from etl.runner.failures import run_failure
from etl.runner.parsing import Task
from etl.runner.planning import Options, plan_work
from etl.runner.run_log import describe_load, describe_timings, parsed_ahead
from etl.runner.workers import (
    BatchLoader,
    LoadContext,
    load_in_workers,
    read_candidate,
    timed_process_file,
)
from etl.transform import taxonomy

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_PRUNE",
    "Rejection",
    "RunAborted",
    "RunInterrupted",
    "RunSummary",
    "default_paths",
    "run",
]

log = logging.getLogger("etl")

# Fewer files than this: written by this process (parsed ahead, see _parsed), no pool.
INLINE_BELOW = 64


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
    source: str | None = None,
    full_refresh: bool = False,
    prune: bool = False,
    max_prune: float = DEFAULT_MAX_PRUNE,
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

    Each PATH belongs to a source (a named tree, see ``etl.extract.sources``): ``source``
    names it, else it is the source of the PATH's root. Returns the run summary;
    document problems are in ``summary.rejected`` and never raise. Raises
    ``ConfigurationError`` for bad arguments (and when ``prune`` would forget every
    file of a source, or more than ``max_prune`` of them: nothing is changed then),
    ``DatabaseUnavailable`` when the database cannot be used, ``RunAborted``
    when a worker process dies, and ``RunInterrupted`` (a KeyboardInterrupt) on
    SIGTERM or SIGINT when ``handle_signals`` (main thread only): the workers are
    stopped and the run is recorded as ``interrupted`` first.

    ``dry_run``: the whole run, in this process, inside one transaction that is
    rolled back: the summary is a real run's, and nothing is written, not even the
    run's row. It holds the writer lock throughout (on SQLite: the database's).
    """
    started = time.monotonic()
    timing.reset()
    options = Options(
        paths=[Path(p) for p in (paths or default_paths())],
        source=source,
        full_refresh=full_refresh,
        prune=prune,
        max_prune=max_prune,
        shard=parse_shard(shard) if isinstance(shard, str) else shard,
        workers=workers,
        batch_size=batch_size,
        max_file_bytes=max_file_bytes,
        progress=progress,
        dry_run=dry_run,
    )
    options.check()
    if workers != 1:  # --workers 1: all in this process
        parse_ahead.survey(options.paths, source, options.shard)
    owns_engine = engine is None
    engine = engine or database.make_engine(database_url, connect_timeout=connect_timeout)
    new_file = database.sqlite_file(engine.url)
    if new_file is not None and new_file.exists():
        new_file = None  # not created by this run: never removed by it
    summary = RunSummary(database=database.redact(engine.url), dry_run=dry_run)
    try:
        with (
            interrupts.stop_on_signals(handle_signals),
            engine.connect() as conn,
            _dry(conn, dry_run),
        ):
            _prepare(conn, engine, migrate, dry_run)
            _run_on(conn, engine, options, summary, started)
    except DBAPIError as exc:
        failure = run_failure(summary.database, engine.url, exc)  # exit code 2 or 3
        if failure is None:
            raise
        raise failure from None
    finally:
        logs.bind(run_id=None, sources=None)
        if owns_engine:
            engine.dispose()
            database.discard_if_empty(new_file)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _run_on(
    conn: Connection, engine: Engine, options: Options, summary: RunSummary, started: float
) -> None:
    """The run on ``conn``: plan, record its start, load, finish; its end is recorded
    however it ends (after a failure through a fresh connection of ``engine``, as
    ``conn`` may be what broke; a dry run's through ``conn``), and its liveness lock
    released."""
    arguments = options.arguments()
    work = plan_work(conn, options, summary, arguments, parse_ahead.surveyed)
    found = Counts(files_seen=len(work.files), files_skipped_unchanged=work.skipped)
    end_through = conn if options.dry_run else engine
    summary.run_id = start_run(conn, arguments, found)
    try:  # from here on, its row records how the run ended
        summary.add(found)
        logs.bind(run_id=summary.run_id, sources=summary.sources)
        ledger.mark_abandoned_runs(conn, summary.run_id)
        context = LoadContext(
            summary.run_id, options.batch_size, options.max_file_bytes, work.source_ids
        )
        loading = time.monotonic()  # the end of start-up: the first chunk goes out
        _load_all(
            conn,
            work.todo,
            work.known_hashes,
            len(work.files),
            summary,
            context,
            1 if options.dry_run else options.workers,  # one connection, one transaction
            options.progress,
            lambda: _load_taxonomies(
                conn, work.specs, work.rows, summary, context, options.full_refresh
            ),
        )
        loaded = time.monotonic()
        interrupts.raise_if_stopped()  # its exception was lost after the last file
        _finish(conn, summary, work.gone, context)
        summary.status = RunStatus.PARTIAL if summary.documents_rejected else RunStatus.SUCCEEDED
    except BaseException as exc:
        ended = _interruption_or(exc)
        summary.status = RunStatus.FAILED
        summary.error = describe_error(ended)
        if isinstance(ended, RunInterrupted):
            summary.status = RunStatus.INTERRUPTED
            ended.summary = summary
        _record_end(end_through, summary, started)
        ledger.end_lease(conn, summary.run_id)
        if ended is exc:
            raise
        raise ended from exc
    _record_end(conn, summary, started)  # it did not break: no second connection
    ledger.end_lease(conn, summary.run_id)
    _record_timings(summary, started, loading, loaded)


def _interruption_or(exc: BaseException) -> BaseException:
    """``exc``, or the interruption by a signal whose exception was lost
    (``etl.runner.interrupts``): what failed since most likely failed because the
    signal stopped the workers (it is logged)."""
    signum = interrupts.stopped_by()
    if signum is None or isinstance(exc, RunInterrupted):
        return exc
    log.warning("after the signal: %s", describe_error(exc))
    return RunInterrupted(signum)


def _dry(conn: Connection, dry_run: bool) -> AbstractContextManager[None]:
    """A dry run's one transaction, rolled back at the end; nothing for a real run."""
    return rolled_back(conn) if dry_run else nullcontext()


def _record_end(target: Engine | Connection, summary: RunSummary, started: float) -> None:
    summary.seconds = round(time.monotonic() - started, 3)
    record_run_end(target, summary)


def _record_timings(summary: RunSummary, started: float, loading: float, loaded: float) -> None:
    ends = (loading - started, loaded - loading, time.monotonic() - loaded)
    summary.timings = timing.report(*ends, summary.timings)  # with its workers' timers
    describe_timings(summary.timings)


def _prepare(conn: Connection, engine: Engine, migrate: bool, dry_run: bool) -> None:
    if dry_run:  # inside its transaction
        database.prepare_in_transaction(conn, migrate)
    elif database.schema_is_current(conn):
        return
    elif migrate:
        database.ensure_schema(engine)  # on a connection of its own, under a lock
    else:
        database.require_schema(engine)


def _load_taxonomies(
    conn: Connection,
    specs: Sequence[SourceSpec],
    rows: Mapping[str, SourceRow],
    summary: RunSummary,
    context: LoadContext,
    full_refresh: bool,
) -> None:
    """Load the taxonomy of every site root whose taxonomy files or configuration
    changed (etl.transform.taxonomy); their warnings are logged and counted.

    Files whose names, sizes and mtimes are as stored are not read; files read again
    with the same content write nothing. A taxonomy file that cannot be read or is
    invalid is rejected like a document, and the files are read again by the next run
    (and rejected again until fixed). A source that is no longer a site root (its
    ``_news/`` is gone) has no taxonomy any more.
    """
    for spec in specs:
        source_id = context.source_ids[spec.name]
        stored_files, stored_content = taxonomy.stored_parts(rows[spec.name].taxonomy_stamp)
        if not spec.site:
            if stored_content is not None:
                _write_taxonomy(conn, source_id, Taxonomy(), None, context)
            continue
        files = taxonomy.stamp(spec.root)
        if files == stored_files and not full_refresh:
            continue
        found = taxonomy.read_taxonomy(spec.root, context.max_bytes)
        for warning in found.warnings:
            log.warning("%s", warning)
        warned = Counts(warnings=len(found.warnings))
        rejected = list(found.rejected)
        new_stamp = f"{taxonomy.REREAD if rejected else files}:{found.content}"
        if found.content == stored_content and not full_refresh:
            if new_stamp != rows[spec.name].taxonomy_stamp:
                with writer_transaction(conn, context.run_id):
                    set_taxonomy_stamp(conn, source_id, new_stamp)
        else:
            try:
                _write_taxonomy(conn, source_id, found, new_stamp, context)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                # What the checks let through and the database refused: the taxonomy
                # is left as it was, and read again by the next run.
                rejected.append(
                    Rejection(DATA_DIR, f"the database refused it: {describe_error(exc)}")
                )
        _count_taxonomy(conn, spec.name, rejected, warned, summary, context.run_id)


def _count_taxonomy(
    conn: Connection,
    source: str,
    rejected: Sequence[Rejection],
    warned: Counts,
    summary: RunSummary,
    run_id: int | None,
) -> None:
    """Record a taxonomy's rejected files and count them and its warnings on the run's
    row, in one transaction (the run's summary is read back from that row)."""
    counts = Counts(documents_rejected=len(rejected))
    counts.add(warned)
    if rejected:
        for item in rejected:
            logs.rejected(item, source)
        record_rejects(conn, run_id, rejected, counts)
        summary.rejected.extend(rejected)
    elif counts.nonzero():
        with transaction(conn):
            add_counts(conn, run_id, counts)
    summary.add(counts)


def _write_taxonomy(
    conn: Connection,
    source_id: int,
    found: Taxonomy,
    stamp: str | None,
    context: LoadContext,
) -> None:
    with writer_transaction(conn, context.run_id):
        taxonomy_load.refresh(conn, source_id, found, ledger.now())
        set_taxonomy_stamp(conn, source_id, stamp)


def _load_all(
    conn: Connection,
    todo: Sequence[SourceFile],
    known_hashes: Mapping[FileKey, str],
    total: int,
    summary: RunSummary,
    context: LoadContext,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    taxonomies: Callable[[], None],
) -> None:
    """Load the files of ``todo`` and, first, the ``taxonomies``: in a worker pool, while
    the workers parse their first chunks (a taxonomy is a transaction of its own, which
    no document's write depends on: its topics are recomputed from what references them
    whatever commits first)."""
    if progress and total > len(todo):
        progress(total - len(todo), total)

    def task_for(file: SourceFile) -> Task:
        # Before each file is sent to a worker: a signal whose exception was lost
        # (etl.runner.interrupts) stops the run here.
        interrupts.raise_if_stopped()
        # The stamp is taken now, shortly before the file is read, and recorded
        # once its content is loaded.
        stamp = file_stamp(file.path)
        known_hash = known_hashes.get(FileKey(context.source_ids[file.source], file.key))
        return Task(file, known_hash, context.max_bytes, stamp)

    workers = workers or os.cpu_count() or 1
    # Workers open their own connections, which an in-memory database cannot share.
    shareable = not database.is_in_memory_sqlite(conn.engine.url)
    in_workers = workers > 1 and len(todo) >= INLINE_BELOW and shareable
    describe_load(total, total - len(todo), len(todo), workers, not in_workers)
    try:
        if in_workers:
            parse_ahead.stop()  # before forking the pool: it would inherit their pipes
            load_in_workers(
                conn.engine, todo, task_for, summary, workers, context, progress, total, taxonomies
            )
        else:
            taxonomies()
            loader = BatchLoader(conn, summary, context)
            for task, outcome in _parsed(todo, task_for, workers):
                interrupts.raise_if_stopped()  # _parsed may have run task_for for all first
                loader.add(task, outcome)
                if progress:
                    progress(1, total)
            loader.close()
    finally:
        parse_ahead.stop()  # they serve one run, used or not
    summary.rejected.sort(key=lambda item: item.path)


def _parsed(
    todo: Sequence[SourceFile], task_for: Callable[[SourceFile], Task], workers: int
) -> Iterator[tuple[Task, Outcome]]:
    """Each file's task and outcome: for a run that may use more processes and has only
    a few files, parsed all at once by the parse-ahead processes
    (``etl.runner.parse_ahead``); else, or if they cannot, in this process, a file at a
    time."""
    if workers > 1 and len(todo) < INLINE_BELOW:
        tasks = [task_for(file) for file in todo]
        parsed = parse_ahead.parse(tasks, workers)
        if parsed is not None:
            timing.add("fill", parsed.seconds)
            parsed_ahead(len(tasks), parsed.processes)
            yield from zip(tasks, parsed.outcomes, strict=True)
            return
        yield from ((task, timed_process_file(task)) for task in tasks)
        return
    for file in todo:
        task = task_for(file)
        yield task, timed_process_file(task)


def _finish(
    conn: Connection,
    summary: RunSummary,
    gone: Sequence[FileKey],
    context: LoadContext,
) -> None:
    """Forget pruned files (their URLs go to the files left, or become tombstones),
    settle stubs and recompute the entities the run's writes touched (deleting those
    nothing references any more), in one transaction that counts what it changed
    (etl.load.tally). A run with nothing of that to do (an unchanged re-run) does not
    take the writer lock for it: what another run leaves pending is that run's to
    settle, or the next run's if it stops first."""
    with transaction(conn):  # keys a bulk insert left NOT VALID (this run's or a stopped one's)
        validate_keys(conn, [related_articles])
        if not (gone or has_pending(conn) or has_dirty_stubs(conn)):
            return
    with counted(conn, context.run_id, summary, Counts(), LEDGER) as tally:
        now = ledger.now()
        if gone:
            affected = forget_files(conn, gone)
            settle(
                conn,
                [],
                source_ids=context.source_ids,
                now=now,
                run_id=context.run_id,
                ledger=LEDGER,
                reader=lambda candidate: read_candidate(candidate, context.max_bytes),
                tally=tally,
                affected=affected,
            )
        with timing.labelled("stubs"):
            refresh_stubs(conn, now, tally)
        with timing.labelled("aggregates"):
            recompute_pending(conn, now)  # every entity the run's writes touched, once
