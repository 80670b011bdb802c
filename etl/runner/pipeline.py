"""The pipeline: the Python API that runs extract -> transform -> load.

``run(paths, database_url)`` is what the CLI, cron jobs and orchestrators call.
It finds the files, loads the taxonomy of site roots whose ``_data/`` or
``_config.yml`` changed (``etl.transform.taxonomy``), skips documents whose size and mtime are
unchanged since they last loaded, hands the rest to the workers (``etl.runner.workers``),
then rebuilds stubs, prunes and deletes orphaned entities, and records the run in
the ledger.
A dry run is the same run inside one transaction that is rolled back at the end.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from etl.extract.sources import (
    DATA_DIR,
    SourceError,
    SourceSpec,
    discover_all,
    in_scope,
    plan_sources,
)
from etl.ledger import ledger
from etl.load import taxonomy_load
from etl.load.aggregates import recompute_pending
from etl.load.load import delete_orphans, refresh_stubs, settle
from etl.load.tally import counted
from etl.records import (
    Counts,
    Rejection,
    RunAborted,
    RunInterrupted,
    RunSummary,
    SourceFile,
    Taxonomy,
)
from etl.runner import logs
from etl.runner.failures import run_failure
from etl.runner.interrupts import stop_on_signals
from etl.runner.run_log import describe_load, describe_plan, describe_timings
from etl.runner.workers import (
    DEFAULT_BATCH_SIZE,
    BatchLoader,
    LoadContext,
    Task,
    load_in_workers,
    read_candidate,
    timed_process_file,
)
from etl.transform import taxonomy

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Rejection",
    "RunAborted",
    "RunInterrupted",
    "RunSummary",
    "default_paths",
    "run",
]

log = logging.getLogger("etl")

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


DEFAULT_MAX_PRUNE = 0.5  # --prune refuses to forget more than this share of a source's files


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
    path_list = [Path(p) for p in (paths or default_paths())]
    shard_range = parse_shard(shard) if isinstance(shard, str) else shard
    if not 0 <= max_prune <= 1:
        raise ConfigurationError(f"--max-prune must be a share from 0 to 1, not {max_prune}")
    missing = [str(p) for p in path_list if not p.exists()]
    if missing:
        raise ConfigurationError(f"{missing[0]}: no such file or directory")
    owns_engine = engine is None
    engine = engine or database.make_engine(database_url, connect_timeout=connect_timeout)
    new_file = database.sqlite_file(engine.url)
    if new_file is not None and new_file.exists():
        new_file = None  # not created by this run: never removed by it
    summary = RunSummary(database=database.redact(engine.url), dry_run=dry_run)
    arguments = {
        "paths": [str(p) for p in path_list],
        "source": source,
        "full_refresh": full_refresh,
        "prune": prune,
        "max_prune": max_prune,
        "shard": "/".join(map(str, shard_range)) if shard_range else None,
    }
    try:
        with stop_on_signals(handle_signals), engine.connect() as conn, _dry(conn, dry_run):
            _prepare(conn if dry_run else engine, migrate)
            specs = _plan(conn, path_list, source)
            summary.sources = arguments["sources"] = describe_plan(specs, shard_range, dry_run)
            rows = ledger.ensure_sources(conn, specs)
            source_ids = {name: row.id for name, row in rows.items()}
            files = [f for f in discover_all(specs) if in_shard(f.key, shard_range)]
            known = ledger.known_files(conn, sorted(source_ids.values()))
            gone = (
                _prune_plan(specs, source_ids, known, files, shard_range, max_prune)
                if prune
                else []
            )
            todo, known_hashes, skipped = _changed_files(files, known, source_ids, full_refresh)
            found = Counts(files_seen=len(files), files_skipped_unchanged=skipped)
            summary.run_id = ledger.start_run(conn, arguments, found)
            summary.add(found)
            logs.bind(run_id=summary.run_id, sources=summary.sources)
            ledger.mark_abandoned_runs(conn, summary.run_id)
            context = LoadContext(summary.run_id, batch_size, max_file_bytes, source_ids)
            try:
                _load_taxonomies(conn, specs, rows, summary, context, full_refresh)
                loading = time.monotonic()  # the end of start-up: the first chunk goes out
                _load_all(
                    conn,
                    todo,
                    known_hashes,
                    len(files),
                    summary,
                    context,
                    1 if dry_run else workers,  # one connection, one transaction
                    progress,
                )
                loaded = time.monotonic()
                _finish(conn, summary, gone, context)
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
            _record_timings(summary, started, loading, loaded)
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


def _plan(conn: Connection, paths: Sequence[Path], source: str | None) -> list[SourceSpec]:
    try:
        return plan_sources(paths, source, ledger.known_source_roots(conn))
    except (FileNotFoundError, SourceError) as exc:
        raise ConfigurationError(str(exc)) from None


def _prune_plan(
    specs: Sequence[SourceSpec],
    source_ids: Mapping[str, int],
    known: Mapping[tuple[int, str], ledger.Stored],
    files: Sequence[SourceFile],
    shard: tuple[int, int] | None,
    max_prune: float,
) -> list[tuple[int, str]]:
    """The recorded files ``--prune`` forgets: of this run's sources, under this run's
    PATHs (and shard), and not found. Refuses (``ConfigurationError``) to forget every
    file of a source, or more than ``max_prune`` of them, before anything is written."""
    seen = {(source_ids[f.source], f.key) for f in files}
    gone: list[tuple[int, str]] = []
    for spec in specs:
        source_id = source_ids[spec.name]
        recorded = [key for sid, key in known if sid == source_id]
        lost = sorted(
            key
            for key in recorded
            if (source_id, key) not in seen and in_scope(key, spec) and in_shard(key, shard)
        )
        if not lost:
            continue
        if len(lost) == len(recorded):
            raise ConfigurationError(
                f"--prune would forget every file of source {spec.name!r} ({len(lost)} files): "
                f"is {spec.root} the right tree, and is it checked out? Nothing was changed"
            )
        if len(lost) > max_prune * len(recorded):
            raise ConfigurationError(
                f"--prune would forget {len(lost)} of the {len(recorded)} files of source "
                f"{spec.name!r} ({len(lost) / len(recorded):.0%}), more than --max-prune "
                f"{max_prune:g} allows; nothing was changed (pass a larger --max-prune if "
                "that is intended)"
            )
        gone.extend((source_id, key) for key in lost)
    return gone


def _dry(conn: Connection, dry_run: bool) -> AbstractContextManager[None]:
    """A dry run's one transaction, rolled back at the end; nothing for a real run."""
    return rolled_back(conn) if dry_run else nullcontext()


def _record_end(target: Engine | Connection, summary: RunSummary, started: float) -> None:
    summary.seconds = round(time.monotonic() - started, 3)
    ledger.record_run_end(target, summary)


def _record_timings(summary: RunSummary, started: float, loading: float, loaded: float) -> None:
    ends = (loading - started, loaded - loading, time.monotonic() - loaded)
    summary.timings = timing.report(*ends, summary.timings)  # with its workers' timers
    describe_timings(summary.timings)


def _prepare(target: Engine | Connection, migrate: bool) -> None:
    if isinstance(target, Connection):  # a dry run: inside its transaction
        database.prepare_in_transaction(target, migrate)
    elif migrate:
        database.ensure_schema(target)
    else:
        database.require_schema(target)


def _load_taxonomies(
    conn: Connection,
    specs: Sequence[SourceSpec],
    rows: Mapping[str, ledger.SourceRow],
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
                    ledger.set_taxonomy_stamp(conn, source_id, new_stamp)
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
        ledger.record_rejects(conn, run_id, rejected, counts)
        summary.rejected.extend(rejected)
    elif counts.nonzero():
        with transaction(conn):
            ledger.add_counts(conn, run_id, counts)
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
        ledger.set_taxonomy_stamp(conn, source_id, stamp)


def _changed_files(
    files: Sequence[SourceFile],
    known: Mapping[tuple[int, str], ledger.Stored],
    source_ids: Mapping[str, int],
    full_refresh: bool,
) -> tuple[Sequence[SourceFile], dict[tuple[str, str], str], int]:
    """The files to read, the stored content hash of those an earlier run loaded, and
    how many are skipped: a file whose size and mtime equal the stored ones is not read.
    """
    if full_refresh:
        return files, {}, 0
    todo: list[SourceFile] = []
    known_hashes: dict[tuple[str, str], str] = {}
    for file in files:
        stored = known.get((source_ids[file.source], file.key))
        if stored is None:
            todo.append(file)
        elif stored[1:] != file_stamp(file.path):
            todo.append(file)
            known_hashes[(file.source, file.key)] = stored[0]
    return todo, known_hashes, len(files) - len(todo)


def _load_all(
    conn: Connection,
    todo: Sequence[SourceFile],
    known_hashes: Mapping[tuple[str, str], str],
    total: int,
    summary: RunSummary,
    context: LoadContext,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    if progress and total > len(todo):
        progress(total - len(todo), total)

    def task_for(file: SourceFile) -> Task:
        # The stamp is taken now, shortly before the file is read, and recorded
        # once its content is loaded.
        stamp = file_stamp(file.path)
        return Task(file, known_hashes.get((file.source, file.key)), context.max_bytes, stamp)

    workers = workers or os.cpu_count() or 1
    # Workers open their own connections, which an in-memory database cannot share.
    shareable = not database.is_in_memory_sqlite(conn.engine.url)
    in_workers = workers > 1 and len(todo) >= INLINE_BELOW and shareable
    describe_load(total, total - len(todo), len(todo), workers, not in_workers)
    if in_workers:
        load_in_workers(conn.engine, todo, task_for, summary, workers, context, progress, total)
    else:
        loader = BatchLoader(conn, summary, context)
        for file in todo:
            task = task_for(file)
            loader.add(task, timed_process_file(task))
            if progress:
                progress(1, total)
        loader.close()
    summary.rejected.sort(key=lambda item: item.path)


def _finish(
    conn: Connection,
    summary: RunSummary,
    gone: Sequence[tuple[int, str]],
    context: LoadContext,
) -> None:
    """Forget pruned files (their URLs go to the files left, or become tombstones),
    settle stubs and delete what nothing references, in one transaction that counts
    what it changed (etl.load.tally)."""
    with counted(conn, context.run_id, summary, Counts()) as tally:
        now = ledger.now()
        if gone:
            affected = ledger.forget_files(conn, gone)
            settle(
                conn,
                [],
                source_ids=context.source_ids,
                now=now,
                run_id=context.run_id,
                stamps={},
                reader=lambda candidate: read_candidate(candidate, context.max_bytes),
                tally=tally,
                affected=affected,
            )
        with timing.labelled("stubs"):
            refresh_stubs(conn, now, tally)
        with timing.labelled("aggregates"):
            recompute_pending(conn, now)  # every entity the run's writes touched, once
        with timing.labelled("orphans"):
            delete_orphans(conn)
    with transaction(conn):  # keys a bulk insert left NOT VALID (this run's or a stopped one's)
        validate_keys(conn, [related_articles])
