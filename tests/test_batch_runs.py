"""Scheduled batch runs: incremental skips, prune, run records, CLI, concurrency, shards."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from etl import run
from etl.db import database
from etl.db.schema import SCHEMA_REVISION, articles, etl_runs, rejected_documents, source_files
from etl.records import RunSummary
from etl.runner.workers import chunk_sizes, plan_chunks
from tests.helpers import SEEDS, connect, fetch, run_etl, run_python, start_etl
from tests.snapshots import CorpusLoads, net_change, snapshot

DATA_TABLES = (
    "articles",
    "providers",
    "topics",
    "images",
    "provider_images",
    "article_topics",
    "article_images",
    "related_articles",
    "source_files",
)


def _row_versions(url: str) -> dict[str, str]:
    """PostgreSQL: the newest row version (xmin) per data table; any write changes it."""
    with connect(url) as conn:
        return {
            table: str(
                conn.execute(text(f"SELECT max(xmin::text::bigint), count(*) FROM {table}")).one()
            )
            for table in DATA_TABLES
        }


def test_unchanged_rerun_writes_no_rows(pg_url: str) -> None:
    run([SEEDS], pg_url)
    before = _row_versions(pg_url)
    summary = run([SEEDS], pg_url)
    assert summary.files_skipped_unchanged == summary.files_seen
    assert _row_versions(pg_url) == before
    # ... and a full refresh of unchanged files writes nothing either, beyond source_files.
    run([SEEDS], pg_url, full_refresh=True)
    after = _row_versions(pg_url)
    assert {t: v for t, v in after.items() if t != "source_files"} == {
        t: v for t, v in before.items() if t != "source_files"
    }


def _age(root: Path, seconds: float = 3600) -> None:
    """Back-date every file, out of the window in which a fresh mtime is not trusted."""
    then = time.time() - seconds
    for path in root.rglob("*.md"):
        os.utime(path, (then, then))


def _stamps(url: str) -> dict[str, tuple[int | None, int | None]]:
    query = select(source_files.c.path, source_files.c.size, source_files.c.mtime_ns)
    return {row.path: (row.size, row.mtime_ns) for row in fetch(url, query)}


def test_rerun_trusts_size_and_mtime(db_url: str, tmp_path: Path) -> None:
    source = tmp_path / "news"
    shutil.copytree(SEEDS, source)
    _age(source)
    run([source], db_url)
    assert _stamps(db_url) == {
        path.name: (path.stat().st_size, path.stat().st_mtime_ns) for path in source.glob("*.md")
    }

    # Same size and mtime but other bytes: taken as unchanged without reading the file
    # (as make and rsync do) ...
    seed = source / "000_af0cddeac82c129c.md"
    before = seed.stat()
    seed.write_bytes(seed.read_bytes().replace(b"technology-48339142", b"technology-48339143"))
    os.utime(seed, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert seed.stat().st_size == before.st_size
    quick = run([source], db_url)
    assert quick.files_skipped_unchanged == quick.files_seen
    assert quick.articles_inserted == quick.articles_updated == 0
    # ... which --full-refresh does not trust.
    full = run([source], db_url, full_refresh=True)
    assert full.articles_inserted == 1
    url = "https://bbc.com/news/technology-48339143"
    assert fetch(db_url, select(articles.c.source_path).where(articles.c.url == url))


def test_touched_file_is_hashed_once_then_skipped_by_its_new_stamp(
    sqlite_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "news"
    shutil.copytree(SEEDS, source, copy_function=shutil.copy)  # new mtimes
    # Just written: too fresh to trust the mtime, so no stamp is kept.
    run([source], sqlite_url)
    assert set(_stamps(sqlite_url).values()) == {(None, None)}

    _age(source)
    second = run([source], sqlite_url)  # read and hashed: same content, new stamps
    assert second.files_skipped_unchanged == second.files_seen
    assert second.articles_updated == second.articles_inserted == 0
    seed = source / "000_af0cddeac82c129c.md"
    assert _stamps(sqlite_url)[seed.name] == (seed.stat().st_size, seed.stat().st_mtime_ns)

    seed.write_bytes(seed.read_bytes() + b"\nAn edited body.\n")
    _age(source, 60)
    third = run([source], sqlite_url)
    assert third.articles_updated == 1
    assert third.files_skipped_unchanged == third.files_seen - 1


def test_schema_revision_is_the_newest_migration() -> None:
    # etl run skips Alembic when the database is at SCHEMA_REVISION: it must be the head.
    assert database.head_revision() == SCHEMA_REVISION


def test_worker_processes_load_what_one_process_loads(db_url: str, tmp_path: Path) -> None:
    """Enough files for the worker path; every URL four times, so duplicates meet across
    chunks and processes; one broken file, rejected from inside a worker."""
    source = tmp_path / "news"
    for copy in "abcd":
        shutil.copytree(SEEDS, source / copy)
    (source / "b" / "broken.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    parallel = run([source], db_url, workers=2, batch_size=7)
    reference = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    single = run([source], reference, workers=1, batch_size=7)
    assert parallel.files_seen == single.files_seen == 4 * len(list(SEEDS.glob("*.md"))) + 1
    # Whether a file counts as "updated" or "duplicate", and how many stubs and links
    # were created and deleted again on the way, depend on which copy of a URL loaded
    # first; the net changes do not, nor does the outcome.
    for name in (
        "status",
        "articles_inserted",
        "documents_rejected",
        "files_skipped_unchanged",
        "warnings",
    ):
        assert getattr(parallel, name) == getattr(single, name), name
    assert (
        parallel.articles_updated + parallel.duplicates
        == single.articles_updated + single.duplicates
    )
    assert net_change([parallel]) == net_change([single])
    assert [(r.path, r.line) for r in parallel.rejected] == [("b/broken.md", 2)]
    assert snapshot(db_url) == snapshot(reference)
    rejected = fetch(db_url, select(rejected_documents.c.run_id, rejected_documents.c.source_path))
    assert [tuple(r) for r in rejected] == [(parallel.run_id, "b/broken.md")]


def test_run_records_and_rejects(db_url: str, tmp_path: Path) -> None:
    source = tmp_path / "news"
    shutil.copytree(SEEDS, source)
    broken = source / "broken.md"
    broken.write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    first = run([source], db_url)
    assert first.status == "partial"
    assert [r.path for r in first.rejected] == ["broken.md"]
    assert first.rejected[0].line is not None

    rejected = fetch(db_url, select(rejected_documents))
    assert [(r.run_id, r.source_path) for r in rejected] == [(first.run_id, "broken.md")]
    assert rejected[0].content_hash

    # Fixed, it loads on the next run; the unchanged files are skipped.
    broken.write_text(
        (SEEDS / "000_af0cddeac82c129c.md")
        .read_text(encoding="utf-8")
        .replace("technology-48339142", "technology-1"),
        encoding="utf-8",
    )
    second = run([source], db_url)
    assert second.status == "succeeded"
    assert second.articles_inserted == 1
    assert second.files_skipped_unchanged == second.files_seen - 1

    runs = fetch(db_url, select(etl_runs).order_by(etl_runs.c.id))
    assert [r.status for r in runs] == ["partial", "succeeded"]
    assert runs[0].documents_rejected == 1 and runs[0].finished_at is not None
    assert runs[1].files_skipped_unchanged == second.files_skipped_unchanged


def test_prune_marks_removed_and_return_restores(db_url: str, tmp_path: Path) -> None:
    source = tmp_path / "news"
    shutil.copytree(SEEDS, source)
    run([source], db_url)
    seed = source / "000_af0cddeac82c129c.md"
    kept = seed.read_bytes()
    seed.unlink()

    untouched = run([source], db_url)
    assert untouched.articles_removed == 0
    pruned = run([source], db_url, prune=True)
    assert pruned.articles_removed == 1
    url = "https://bbc.com/news/technology-48339142"
    rows = fetch(db_url, select(articles.c.is_removed).where(articles.c.url == url))
    assert [bool(r.is_removed) for r in rows] == [True]

    seed.write_bytes(kept)
    back = run([source], db_url, prune=True)
    assert back.articles_removed == 0
    rows = fetch(db_url, select(articles.c.is_removed).where(articles.c.url == url))
    assert [bool(r.is_removed) for r in rows] == [False]


def test_cli_exit_codes_and_json(sqlite_url: str, tmp_path: Path) -> None:
    ok = run_etl("run", str(SEEDS), "--database-url", sqlite_url, "--json")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["status"] == "succeeded"
    assert summary["files_seen"] == len(list(SEEDS.glob("*.md")))

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.md").write_text("no front matter\n", encoding="utf-8")
    partial = run_etl("run", str(bad), "--database-url", sqlite_url, "--json")
    assert partial.returncode == 1
    assert json.loads(partial.stdout)["documents_rejected"] == 1

    usage = run_etl("run", str(tmp_path / "missing"), "--database-url", sqlite_url)
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr
    assert run_etl("run", "--shard", "5/4", "--database-url", sqlite_url).returncode == 2

    fatal = run_etl(
        "run", str(SEEDS), "--database-url", "postgresql://etl:Secret123@127.0.0.1:1/none"
    )
    assert fatal.returncode == 3
    assert "Traceback" not in fatal.stderr
    assert "Secret123" not in fatal.stderr + fatal.stdout
    assert len(fatal.stderr.strip().splitlines()) == 1

    runs = run_etl("runs", "--database-url", sqlite_url)
    assert runs.returncode == 0 and "partial" in runs.stdout
    rejects = run_etl("rejects", "--database-url", sqlite_url)
    assert "x.md" in rejects.stdout


def test_no_progress_noise_when_not_a_terminal(sqlite_url: str) -> None:
    result = run_etl("run", str(SEEDS), "--database-url", sqlite_url)
    assert result.returncode == 0
    assert "doc/s" not in result.stderr and "\r" not in result.stderr


def command_then(argv: list[str], report: str) -> list[str]:
    """Run the `etl` console script's ``main()`` with ``argv`` in a fresh interpreter;
    after it exits, ``report`` (code that may use ``exc``, ``gc``, ``sys``) prints.
    Returns the output lines."""
    code = (
        "import gc, sys\n"
        f"sys.argv = {['etl', *argv]!r}\n"
        "from etl.__main__ import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        f"    {report}\n"
    )
    result = run_python(code, timeout=60)
    assert result.stdout, result
    return result.stdout.splitlines()


def test_the_command_freezes_its_imports_and_leaves_the_collector_on() -> None:
    # What the `etl` console script does; the import-time objects end up frozen
    # (never rescanned), and collection is back on for the run itself. On the way
    # out everything is frozen, so the interpreter's final collections walk nothing.
    lines = command_then(
        ["--version"],
        "print(exc.code, gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects()))",
    )
    assert lines[0].startswith("etl"), lines  # the version line
    code_, enabled, frozen, left = lines[-1].split()
    assert (code_, enabled) == ("0", "True")
    assert int(frozen) > 50_000  # SQLAlchemy and the pipeline, at least
    assert int(left) < 100  # unfrozen, the same exit showed thousands


def test_package_api_is_imported_on_first_use() -> None:
    import etl
    import etl.runner.pipeline

    assert etl.run is etl.runner.pipeline.run and etl.RunSummary is etl.runner.pipeline.RunSummary
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        etl.nope  # noqa: B018
    # In a fresh interpreter, `import etl` alone still reaches the modules.
    code = "import etl; print(etl.db.schema.articles.name, etl.runner.pipeline.run is etl.run)"
    result = run_python(code, timeout=60)
    assert result.stdout.split() == ["articles", "True"], result.stderr


def test_unchanged_rerun_imports_only_what_it_uses(tmp_path: Path) -> None:
    """Start-up is most of an unchanged re-run: nothing there parses, migrates or
    speaks MySQL or PostgreSQL, so none of those libraries may be imported."""
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    assert run_etl("run", str(SEEDS), "--database-url", url).returncode == 0
    heavy = ["alembic", "pydantic", "yaml", "yaml_rs", "tqdm"]
    heavy += ["sqlalchemy.dialects.mysql", "sqlalchemy.dialects.postgresql"]
    summary, imported = command_then(
        ["run", str(SEEDS), "--database-url", url],
        f"print(exc.code, *sorted(m for m in {heavy!r} if m in sys.modules))",
    )
    seeds = len(list(SEEDS.glob("*.md")))
    assert summary.startswith(f"{seeds} files ({seeds} unchanged, skipped)"), summary
    assert imported.split() == ["0"], imported


def _concurrent(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        start_etl(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in commands
    ]
    results = []
    for proc, args in zip(procs, commands, strict=True):
        out, err = proc.communicate(timeout=900)
        results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return results


@pytest.fixture(scope="module")
def corpus_eighth(
    corpus_news: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """Every 8th corpus document, and the snapshot of one run of them into a fresh SQLite
    database (the same for every backend's test)."""
    subset = tmp_path_factory.mktemp("subset")
    for path in sorted(corpus_news.glob("*.md"))[::8]:
        (subset / path.name).symlink_to(path)
    reference = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'reference.sqlite3'}"
    run([subset], reference)
    return subset, snapshot(reference)


@pytest.mark.corpus
def test_two_concurrent_runs_equal_one(
    db_url: str, corpus_eighth: tuple[Path, dict[str, Any]]
) -> None:
    subset, reference = corpus_eighth
    results = _concurrent(
        [["run", str(subset), "--database-url", db_url, "--batch-size", "50"]] * 2
    )
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    assert snapshot(db_url) == reference


@pytest.mark.corpus
def test_four_shards_at_once_equal_one_run(
    pg_url: str, corpus_news: Path, corpus_loads: CorpusLoads
) -> None:
    results = _concurrent(
        [
            ["run", str(corpus_news), "--database-url", pg_url, "--shard", f"{k}/4", "--json"]
            for k in range(4)
        ]
    )
    assert [r.returncode for r in results] == [0] * 4, [r.stderr[-2000:] for r in results]
    seen = sum(json.loads(r.stdout)["files_seen"] for r in results)
    assert seen == len(list(corpus_news.glob("*.md")))
    # One run of the corpus into a fresh PostgreSQL database (the session's).
    assert snapshot(pg_url) == corpus_loads("postgresql").snapshot


CHUNK_CASES = [  # total, batch_size, workers
    pytest.param(1, 500, 2, id="one-file"),
    pytest.param(3, 500, 8, id="fewer-files-than-workers"),
    pytest.param(64, 500, 2, id="few-files"),
    pytest.param(4958, 500, 2, id="corpus"),
    pytest.param(49580, 500, 2, id="10x-corpus"),
    pytest.param(1000, 50, 4, id="small-batches"),
    pytest.param(100, 1, 2, id="batches-of-one"),
    pytest.param(5000, 500, 16, id="many-workers"),
    pytest.param(777, 500, 1, id="one-worker"),
]


@pytest.mark.parametrize(("total", "batch_size", "workers"), CHUNK_CASES)
def test_chunk_sizes_keep_their_promises(total: int, batch_size: int, workers: int) -> None:
    sizes = chunk_sizes(total, batch_size, workers)
    assert sum(sizes) == total
    assert all(1 <= size <= batch_size for size in sizes), sizes  # at most a batch
    assert len(sizes) >= min(total, 2 * workers), sizes  # every worker gets several
    cap = max(sizes)
    peak = sizes.index(cap)
    head = sizes[: peak + 1]
    assert head == sorted(head), sizes  # ramps up to the largest chunk
    if cap > 1 and len(sizes) >= 5:  # room to ramp: the first and last are smaller
        assert sizes[0] < cap and sizes[-1] < cap, sizes


@pytest.mark.parametrize("total", [1, 29, 30, 31, 60, 61, 84, 1000])
def test_plan_chunks_cuts_the_fewest_near_equal_segments(
    total: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("etl.runner.workers.POOL_FILES", 30)
    segments = [sum(chunks) for chunks in plan_chunks(total, 7, 2)]
    assert sum(segments) == total
    assert max(segments) <= 30
    assert len(segments) == -(-total // 30)
    assert max(segments) - min(segments) <= 1


def _who_read(log: Path, run_files: Callable[[], RunSummary]) -> tuple[RunSummary, list[int]]:
    """``run_files()``'s summary, and the id of the process that read each file, in the
    order they were read. From the per-file (-vv) log line, written to ``log``: forked
    workers inherit the handler, and its file is opened for appending, so their lines
    keep their order."""
    logger = logging.getLogger("etl")
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(process)d"))
    handler.addFilter(lambda record: record.levelno == logging.DEBUG and "path" in vars(record))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        summary = run_files()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()
    return summary, [int(line) for line in log.read_text().split()]


def test_each_generation_of_workers_is_new_processes(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small generations: files are handed to three successive sets of worker processes,
    none of which reads for another generation; together they load what one process loads."""
    # Read by plan_chunks in this process; the forked workers are only handed chunks.
    monkeypatch.setattr("etl.runner.workers.POOL_FILES", 30)
    source = tmp_path / "news"
    for copy in "abcd":
        shutil.copytree(SEEDS, source / copy)
    files = len(list(source.rglob("*.md")))
    plan = plan_chunks(files, 7, 2)
    assert len(plan) == 3
    parallel, readers = _who_read(
        tmp_path / "read.log", lambda: run([source], db_url, workers=2, batch_size=7)
    )
    assert len(readers) == files
    assert os.getpid() not in readers  # read in worker processes
    # A generation's files are all read before the next generation's processes start.
    generations = []
    for segment in plan:
        generations.append(set(readers[: sum(segment)]))
        del readers[: sum(segment)]
    assert all(1 <= len(processes) <= 2 for processes in generations), generations
    for index, processes in enumerate(generations):
        for later in generations[index + 1 :]:
            assert processes.isdisjoint(later), generations

    reference = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    single = run([source], reference, workers=1, batch_size=7)
    assert parallel.files_seen == single.files_seen == files
    assert parallel.articles_inserted == single.articles_inserted
    assert parallel.documents_rejected == single.documents_rejected == 0
    assert snapshot(db_url) == snapshot(reference)


def test_in_memory_sqlite_loads_in_the_calling_process(tmp_path: Path) -> None:
    # Enough files for the worker path, but workers could not reach this database.
    source = tmp_path / "news"
    for copy in "abcd":
        shutil.copytree(SEEDS, source / copy)
    summary = run([source], "sqlite://", workers=2)
    assert summary.status == "succeeded"
    assert summary.files_seen == 4 * len(list(SEEDS.glob("*.md")))
    assert summary.articles_inserted > 0
