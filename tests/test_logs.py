"""What ``etl run`` logs at each verbosity, and ``--log-format json``: run as the
operator would (``python -m etl`` in a subprocess)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from etl.db import database, timing
from etl.db.sql import writer_transaction
from etl.runner import logs
from tests.helpers import make_doc, render, run_etl, token, write_tree


def _site(root: Path) -> dict[str, str]:
    """Two good documents (one with a dropped related entry: a warning) and a broken one."""
    tag = token()
    warned = make_doc(f"{tag}-w")
    warned["related"][0].pop("webUrl", None)
    warned["related"][0].pop("originalUrl", None)
    write_tree(
        root / "_news",
        {
            "good.md": render(make_doc(f"{tag}-g")),
            "warned.md": render(warned),
            "broken.md": b"---\ntitle: [unclosed\n---\n",
        },
    )
    return {"good": "good.md", "warned": "warned.md", "broken": "broken.md"}


def _run(tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    result = run_etl(
        "run", str(tmp_path / "site"), "--workers", "1", "--database-url", url, *options, env=env
    )
    assert result.returncode == 1, result.stderr  # the broken document
    return result.stdout, result.stderr


def test_each_rejected_document_is_reported_once(tmp_path: Path) -> None:
    _site(tmp_path / "site")
    stdout, stderr = _run(tmp_path)
    assert stderr.count("broken.md") == 1, stderr
    assert "ERROR etl.rejected: rejected _news/broken.md:2:" in stderr
    assert "warned.md: related[0] dropped" in stderr  # a warning
    assert "1 documents rejected" in stdout


def test_quiet_leaves_warnings_and_the_summary(tmp_path: Path) -> None:
    _site(tmp_path / "site")
    stdout, stderr = _run(tmp_path, "-q")
    assert "broken.md" not in stderr
    assert [line for line in stderr.splitlines() if line] == [
        line for line in stderr.splitlines() if line.startswith("WARNING ")
    ]
    assert "warned.md: related[0] dropped" in stderr
    assert "1 documents rejected" in stdout
    _, quieter = _run(tmp_path, "-qq", "--full-refresh")
    assert quieter == ""


def test_verbose_tells_sources_paths_shard_workers_and_batches(tmp_path: Path) -> None:
    _site(tmp_path / "site")
    _, stderr = _run(tmp_path, "-v", "--shard", "0/1", "--batch-size", "1")
    site = tmp_path / "site"
    assert f"INFO etl: source {site}: root {site} (a site" in stderr
    assert "INFO etl: shard 0/1" in stderr
    found = "INFO etl: 3 files found, 0 unchanged (skipped, not read), 3 to read without the"
    assert f"{found} worker pool" in stderr
    batches = [line for line in stderr.splitlines() if "batch of 1 documents written in" in line]
    assert len(batches) == 2, stderr  # batch size 1, two good documents
    assert "DEBUG" not in stderr
    _, very = _run(tmp_path, "-vv", "--full-refresh")
    for name in ("good.md", "warned.md", "broken.md"):
        assert f"DEBUG etl: file {site / '_news' / name}:" in very


def test_verbose_with_workers_names_them(tmp_path: Path) -> None:
    tree = tmp_path / "site" / "_news"
    tag = token()
    write_tree(tree, {f"{n:03}.md": render(make_doc(f"{tag}-{n}")) for n in range(70)})
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    result = run_etl("run", str(tmp_path / "site"), "--workers", "2", "--database-url", url, "-v")
    assert result.returncode == 0, result.stderr
    assert "70 to read with 2 worker processes" in result.stderr


TIMINGS = {"startup", "load", "finish", "fill", "wait", "lock", "lock_kinds"}


def test_json_timings_add_up_the_workers_and_verbose_tells_them(tmp_path: Path) -> None:
    """``timings`` (README "Logs"): the documented keys, none negative; the workers'
    parsing and writes reach the main process's summary; the statements timed under
    the lock are part of the time it was held."""
    tree = tmp_path / "site" / "_news"
    tag = token()
    write_tree(tree, {f"{n:03}.md": render(make_doc(f"{tag}-{n}")) for n in range(70)})
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    site = str(tmp_path / "site")
    result = run_etl("run", site, "--workers", "2", "--database-url", url, "--json", "-v")
    assert result.returncode == 0, result.stderr
    assert "70 to read with 2 worker processes" in result.stderr
    timings = json.loads(result.stdout)["timings"]
    assert set(timings) == TIMINGS
    kinds = timings["lock_kinds"]
    assert all(timings[name] >= 0 for name in TIMINGS - {"lock_kinds"})
    assert all(value >= 0 for value in kinds.values())
    assert timings["fill"] > 0 and timings["lock"] > 0  # parsed and written by the workers
    assert {"articles upsert", "links", "source_files"} <= set(kinds)
    # Each kind is rounded to the millisecond on its own.
    assert sum(kinds.values()) <= timings["lock"] + 0.0005 * len(kinds)
    (line,) = [line for line in result.stderr.splitlines() if "INFO etl: timings:" in line]
    assert f"held {timings['lock']:.3f} s" in line
    unchanged = run_etl("run", site, "--database-url", url, "--json")
    assert set(json.loads(unchanged.stdout)["timings"]) == TIMINGS  # nothing parsed
    # A dry run holds the lock from its start to its end: it counts until the summary.
    dry = run_etl("run", site, "--database-url", url, "--json", "--dry-run", "--full-refresh")
    timings = json.loads(dry.stdout)["timings"]
    kinds = timings["lock_kinds"]
    assert timings["lock"] > 0 and timings["fill"] > 0
    assert sum(kinds.values()) <= timings["lock"] + 0.0005 * len(kinds)


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        (
            "INSERT INTO articles (url) VALUES (?) ON CONFLICT (url) DO UPDATE SET x = 1",
            "articles upsert",
        ),
        (
            "SELECT articles.id, articles.url FROM articles WHERE articles.url IN (?)",
            "articles read",
        ),
        ('COPY "related_articles" (article_id) FROM STDIN', "links"),
        ("INSERT INTO etl_staging_articles (url) VALUES (%s)", "articles upsert"),
        ("SELECT source_files.article_id FROM source_files WHERE x", "elect"),
        ("DELETE FROM `source_files` WHERE id = 1", "source_files"),
        ("UPDATE etl_runs SET files_seen = files_seen + 1", "counts"),
        ("DELETE FROM article_topics WHERE article_id IN (1)", "entities"),
        ("SELECT 1", "other"),
    ],
)
def test_statements_under_the_lock_are_told_apart_by_verb_and_table(
    statement: str, kind: str
) -> None:
    assert timing.kind_of(statement) == kind


@pytest.mark.parametrize("how", ["option", "environment"])
def test_json_logs_are_one_object_per_line(tmp_path: Path, how: str) -> None:
    _site(tmp_path / "site")
    if how == "option":
        _, stderr = _run(tmp_path, "-v", "--log-format", "json")
    else:
        _, stderr = _run(tmp_path, "-v", env={"ETL_LOG_FORMAT": "json"})
    records = [json.loads(line) for line in stderr.splitlines()]
    assert records, "nothing logged"
    site = str(tmp_path / "site")
    for record in records:
        at = datetime.fromisoformat(record["time"])
        assert at.utcoffset() == timedelta(0)
        assert {"level", "logger", "message", "run_id", "source"} <= set(record)
        # The schema is made (by Alembic, or from etl.db.head_schema) before the sources.
        if record["logger"].startswith("etl") and record["logger"] != "etl.db.database":
            assert record["source"] == site
    (rejected,) = [r for r in records if r["logger"] == "etl.rejected"]
    assert rejected["level"] == "ERROR" and rejected["path"] == "_news/broken.md"
    assert rejected["line"] == 2 and "unclosed" in rejected["error"]
    assert isinstance(rejected["run_id"], int)
    batch = next(r for r in records if "batch_size" in r)
    assert batch["level"] == "INFO" and batch["seconds"] >= 0


def test_a_failure_is_a_json_line_too(tmp_path: Path) -> None:
    result = run_etl(
        "--log-format", "json", "runs", "--database-url", f"sqlite:///{tmp_path / 'x.sqlite3'}"
    )
    assert result.returncode == 2
    (record,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert record["exit_code"] == 2 and "no such file" in record["message"]
    usage = run_etl("changes", "--latest", "--since", "5", env={"ETL_LOG_FORMAT": "json"})
    assert usage.returncode == 2
    (record,) = [json.loads(line) for line in usage.stderr.splitlines()]
    assert (
        record["level"] == "CRITICAL" and "--latest does not go with --since" in record["message"]
    )


@pytest.mark.parametrize(
    ("verbosity", "etl_level", "rejected_shown"),
    [
        (-2, logging.ERROR, False),
        (-1, logging.WARNING, False),
        (0, logging.WARNING, True),
        (1, logging.INFO, True),
        (2, logging.DEBUG, True),
    ],
)
def test_the_verbosity_ladder(verbosity: int, etl_level: int, rejected_shown: bool) -> None:
    levels = logs.levels(verbosity)
    assert levels["etl"] == etl_level
    shown = levels[logs.REJECTED_LOGGER] <= logging.ERROR
    assert shown is rejected_shown
    assert levels["sqlalchemy"] == logging.WARNING


_HOLD_THE_LOCK = """
import sys, time
from etl.db import database
from etl.db.sql import writer_transaction
engine = database.make_engine(sys.argv[1])
with engine.connect() as conn, writer_transaction(conn):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_the_wait_for_another_writer_is_counted_on_every_backend(db_url: str) -> None:
    """``wait``: a transaction that does work before asking for the lock (PostgreSQL's
    staged article rows) starts counting when it asks; SQLite's BEGIN IMMEDIATE, which
    is the lock, counts from the start."""
    engine = database.make_engine(db_url)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_LOCK, db_url, "0.6"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        timing.reset()
        with engine.connect() as conn, writer_transaction(conn, before_lock=lambda: None):
            pass
        waited = timing.snapshot()["wait"]
    finally:
        assert holder.wait(timeout=60) == 0
        engine.dispose()
        timing.reset()
    assert waited >= 0.3
