"""Faults: the database unreachable at start, its connections killed mid-run, and the ETL
process itself killed (SIGKILL) mid-run.

After an interrupted run every article in the database must be complete (batches are
transactions: no half-written documents), and re-running must converge on exactly what a
clean, uninterrupted run produces.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.engine import make_url

import etl
import etl.runner.parsing
from etl.db.database import DatabaseUnavailable
from etl.db.schema import article_topics, articles, etl_runs, related_articles, source_files, topics
from etl.extract.extract import file_stamp
from etl.runner.workers import plan_chunks
from tests.helpers import (
    CLI_TIMEOUT,
    SEEDS,
    connect,
    dump_yaml,
    fetch,
    kill_other_connections,
    run_etl,
    start_etl,
)
from tests.snapshots import ReferenceSnapshot, loaded_articles, snapshot

N_DOCS = 1500
BATCH_SIZE = 50


# --- the corpus: the seed, copied 1500 times with distinct URLs and links between copies ---


@dataclass(frozen=True)
class Expected:
    url: str
    topics: frozenset[tuple[str, int]]  # (slug, position)
    links: frozenset[tuple[str, int]]  # (target url, position)


@dataclass(frozen=True)
class Corpus:
    root: Path
    expected: dict[str, Expected]  # by source key


def story_url(i: int) -> str:
    return f"https://news{i % 37}.example.com/story/{i}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    seed_text = (SEEDS / "000_af0cddeac82c129c.md").read_text(encoding="utf-8")
    _, front, body = seed_text.split("---\n", 2)
    seed = yaml.safe_load(front)
    root = tmp_path_factory.mktemp("corpus")
    expected = {}
    for i in range(N_DOCS):
        doc = copy.deepcopy(seed)
        doc["title"] = f"Story {i}"
        doc["webUrl"] = doc["originalUrl"] = story_url(i)
        doc["topics"] = [f"Section {i % 11}", f"Beat {i % 7}", "AI"]
        targets = [story_url((i + 1) % N_DOCS), story_url((i * 7 + 3) % N_DOCS)]
        targets.append(f"https://elsewhere.example.org/{i % 50}")
        template = doc["related"][0]
        doc["related"] = [
            {**copy.deepcopy(template), "webUrl": target, "title": f"Related {target}"}
            for target in targets
        ]
        key = f"{i:05d}.md"
        text_ = dump_yaml(doc)
        (root / key).write_text(f"---\n{text_}---\n{body}", encoding="utf-8")
        expected[key] = Expected(
            url=story_url(i),
            topics=frozenset({(f"section-{i % 11}", 0), (f"beat-{i % 7}", 1), ("ai", 2)}),
            links=frozenset((target, position) for position, target in enumerate(targets)),
        )
    return Corpus(root, expected)


# --- running the CLI -----------------------------------------------------------------------


def run_cli(root: Path, url: str, cwd: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return run_etl("run", str(root), "--database-url", url, "--workers", "1", *options, cwd=cwd)


def start_cli(root: Path, url: str, cwd: Path) -> subprocess.Popen[bytes]:
    """The run to interrupt, in its own process group (its parser workers die with it)."""
    proc: subprocess.Popen[bytes] = start_etl(
        *("run", str(root), "--database-url", url, "--batch-size", str(BATCH_SIZE)),
        cwd=cwd,
        stdout=(cwd / "interrupted.out").open("wb"),
        stderr=(cwd / "interrupted.err").open("wb"),
        start_new_session=True,
    )
    return proc


def reap(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the process; then kill whatever it left in its group (parser workers)."""
    try:
        code = proc.wait(timeout=CLI_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return code


def wait_until_articles(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = loaded_articles(url)
        if count:
            return count
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before any article was loaded")
        time.sleep(0.02)
    pytest.fail(f"no article loaded within {timeout}s")


# --- checking what an interrupted run left ----------------------------------------------------


def assert_every_article_complete(
    url: str,
    corpus: Corpus,
    keys: list[str] | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int = os.cpu_count() or 1,  # what the CLI uses by default
) -> int:
    """Every full article holds exactly its document's topics and links, and the files
    loaded make whole chunks (one transaction each) of the run's ``keys``; returns how
    many articles there are."""
    target = articles.alias("target")
    with connect(url) as conn:
        full = {
            row.id: (row.url, row.source_path)
            for row in conn.execute(
                select(articles.c.id, articles.c.url, articles.c.source_path).where(
                    ~articles.c.is_stub
                )
            )
        }
        topic_rows: dict[int, set[tuple[str, int]]] = {}
        for row in conn.execute(
            select(article_topics.c.article_id, topics.c.slug, article_topics.c.position).join(
                topics, topics.c.id == article_topics.c.topic_id
            )
        ):
            topic_rows.setdefault(row.article_id, set()).add((row.slug, row.position))
        link_rows: dict[int, set[tuple[str, int]]] = {}
        for row in conn.execute(
            select(related_articles.c.article_id, target.c.url, related_articles.c.position).join(
                target, target.c.id == related_articles.c.related_article_id
            )
        ):
            link_rows.setdefault(row.article_id, set()).add((row.url, row.position))
        sources = {
            row.path: row.article_id
            for row in conn.execute(select(source_files.c.path, source_files.c.article_id))
        }
    for article_id, (article_url, source_path) in full.items():
        want = corpus.expected[source_path]
        assert article_url == want.url, (source_path, article_url)
        assert topic_rows.get(article_id, set()) == want.topics, f"{source_path}: topics"
        assert link_rows.get(article_id, set()) == want.links, f"{source_path}: links"
        assert sources.get(source_path) == article_id, f"{source_path}: no source_files row"
    assert set(sources) == {path for _, path in full.values()}, "source files without article"
    assert not set(topic_rows) - set(full), "topics of an article that is not there"
    assert not set(link_rows) - set(full), "links from an article that is not there"
    keys = sorted(keys or corpus.expected)  # the order the run takes them in
    loaded = {path for _, path in full.values()}
    start = 0
    for size in [
        size for segment in plan_chunks(len(keys), batch_size, workers) for size in segment
    ]:
        chunk = set(keys[start : start + size])
        start += size
        assert loaded & chunk in (set(), chunk), f"the chunk at {start - size} was half written"
    return len(full)


def assert_rerun_converges(
    corpus: Corpus, url: str, backend: str, cwd: Path, reference_snapshot: ReferenceSnapshot
) -> None:
    result = run_cli(corpus.root, url, cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    after = snapshot(url, with_sources=True)
    expected = reference_snapshot(corpus.root, backend, "--workers", "1")
    assert len(expected["source_files"]) == N_DOCS
    for table in expected:
        assert after[table] == expected[table], f"{table} differs from a clean run"


# --- the database unreachable at start ----------------------------------------------------------


def test_database_unreachable_at_start_cli(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_bytes((SEEDS / "000_af0cddeac82c129c.md").read_bytes())
    result = run_etl(
        "run",
        str(tmp_path / "a.md"),
        "--database-url",
        "postgresql://postgres@127.0.0.1:1/nowhere",
        cwd=tmp_path,
    )
    assert result.returncode == 3, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("etl: error: database postgresql"), lines
    assert "127.0.0.1" in lines[0] and "refused" in lines[0].lower(), lines
    assert result.stdout == ""


def test_database_missing_at_start_cli(pg_url: str, tmp_path: Path) -> None:
    """The server answers but the database does not exist: the operator's to fix (exit 2:
    a scheduler must not retry it), one line."""
    missing = make_url(pg_url).set(database="etl_no_such_database_x")
    (tmp_path / "a.md").write_bytes((SEEDS / "000_af0cddeac82c129c.md").read_bytes())
    result = run_etl(
        "run",
        str(tmp_path / "a.md"),
        "--database-url",
        missing.render_as_string(hide_password=False),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "etl_no_such_database_x" in result.stderr


def test_database_unreachable_at_start_api(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_bytes((SEEDS / "000_af0cddeac82c129c.md").read_bytes())
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1"):
        etl.run([tmp_path / "a.md"], "postgresql://postgres@127.0.0.1:1/nowhere")


# --- connections killed mid-run -----------------------------------------------------------------


def test_connection_killed_mid_run(
    corpus: Corpus,
    server_url: str,
    tmp_path: Path,
    reference_snapshot: ReferenceSnapshot,
) -> None:
    backend = make_url(server_url).get_backend_name()
    proc = start_cli(corpus.root, server_url, tmp_path)
    try:
        wait_until_articles(server_url, proc)
        assert kill_other_connections(server_url), "no connection of the run to kill"
    finally:
        code = reap(proc)
    stderr = (tmp_path / "interrupted.err").read_text(errors="replace")
    assert code != 0, "the run did not notice its connection was killed"
    assert code == 3, (code, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("etl: error:"), stderr[-2000:]

    loaded = assert_every_article_complete(server_url, corpus)
    assert 0 < loaded < N_DOCS, f"{loaded} articles: the run was not interrupted mid-way"
    runs = fetch(server_url, select(etl_runs.c.status, etl_runs.c.error))
    assert [row.status for row in runs] == ["failed"], runs
    assert runs[0].error, runs

    assert_rerun_converges(corpus, server_url, backend, tmp_path, reference_snapshot)


# --- the ETL process killed mid-run ---------------------------------------------------------------


def _sigkill_mid_run(
    corpus: Corpus,
    url: str,
    backend: str,
    tmp_path: Path,
    reference_snapshot: ReferenceSnapshot,
) -> None:
    proc = start_cli(corpus.root, url, tmp_path)
    try:
        wait_until_articles(url, proc)
        proc.kill()
    finally:
        code = reap(proc)
    assert code == -signal.SIGKILL, code

    loaded = assert_every_article_complete(url, corpus)
    assert 0 < loaded < N_DOCS, f"{loaded} articles: the run was not interrupted mid-way"

    assert_rerun_converges(corpus, url, backend, tmp_path, reference_snapshot)


def test_sigkill_mid_run_sqlite(
    corpus: Corpus, sqlite_url: str, tmp_path: Path, reference_snapshot: ReferenceSnapshot
) -> None:
    _sigkill_mid_run(corpus, sqlite_url, "sqlite", tmp_path, reference_snapshot)


def test_sigkill_mid_run_postgresql(
    corpus: Corpus, pg_url: str, tmp_path: Path, reference_snapshot: ReferenceSnapshot
) -> None:
    _sigkill_mid_run(corpus, pg_url, "postgresql", tmp_path, reference_snapshot)


# --- a worker process dies mid-run -------------------------------------------------------------


@pytest.mark.parametrize(
    ("victim_index", "slow_submit"),
    [
        pytest.param(200, False, id="seen-by-result"),
        # The first chunk's worker dies while the next chunk is still being prepared,
        # so the parent learns of it when it submits that chunk.
        pytest.param(0, True, id="seen-by-submit"),
    ],
)
def test_worker_process_dies_mid_run(
    corpus: Corpus,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    victim_index: int,
    slow_submit: bool,
) -> None:
    """A worker killed mid-chunk (the OOM killer, say): the run stops with RunAborted and
    is recorded as failed; what the dead worker had not committed is rolled back, and a
    re-run ends where an uninterrupted run would."""
    root = tmp_path / "news"
    root.mkdir()
    for path in sorted(corpus.root.glob("*.md"))[:240]:
        (root / path.name).symlink_to(path)
    victim = sorted(p.name for p in root.iterdir())[victim_index]
    real = etl.runner.parsing.process_file
    if slow_submit:  # file_stamp runs in the parent, as it builds each chunk's tasks
        stamp = file_stamp

        def slow_stamp(path: str) -> Any:
            time.sleep(0.02)
            return stamp(path)

        monkeypatch.setattr(etl.runner.pipeline, "file_stamp", slow_stamp)

    def dies_on_victim(task: etl.runner.parsing.Task) -> Any:
        if task.source.key == victim:
            os._exit(9)  # no clean-up, no exception: as SIGKILL would
        return real(task)

    # Workers are forked, so they run the patched function.
    monkeypatch.setattr("etl.runner.workers.process_file", dies_on_victim)
    with pytest.raises(etl.RunAborted, match="worker process died"):
        etl.run([root], db_url, workers=2, batch_size=20)
    monkeypatch.undo()

    statuses = [row.status for row in fetch(db_url, select(etl_runs.c.status))]
    assert statuses == ["failed"]
    loaded = assert_every_article_complete(
        db_url, corpus, [p.name for p in root.iterdir()], batch_size=20, workers=2
    )
    assert loaded < 240, "the run did not stop"

    again = etl.run([root], db_url, workers=2, batch_size=20)
    assert again.status == "succeeded"
    reference = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    etl.run([root], reference, workers=1)
    assert snapshot(db_url) == snapshot(reference)
