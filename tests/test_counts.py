"""Run counts add up: each change is counted by the run whose transaction committed it.

Over any set of runs (one after another, stopped by SIGTERM or SIGINT, three shards at
once) the sums telescope to what the tables gained since: articles inserted minus
removed is the change in full articles, stubs created minus deleted the change in
stubs, links added minus removed the change in links. And each run's articles
inserted + updated + removed is the number of its change-feed entries that are not
about stubs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

import etl
from etl.db.schema import article_changes, etl_runs
from etl.load.tally import ABSENT, FULL, STUB, TOMBSTONE, transition
from etl.records import COUNTER_NAMES, RunSummary
from tests.helpers import CLI_TIMEOUT, connect, dump_yaml, fetch, run_etl, start_etl, write_tree
from tests.snapshots import Held, held, net_change

N_DOCS = 400
BATCH_SIZE = 10  # many transactions: a signal finds the run between two of them
DUPLICATED = range(0, 40, 2)  # stories that a second file (dup-K.md) describes too

# --- the rule, case by case -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "counts"),
    [
        pytest.param((ABSENT, None), (FULL, "a"), {"articles_inserted": 1}, id="new-article"),
        pytest.param((ABSENT, None), (STUB, None), {"stubs_created": 1}, id="new-stub"),
        pytest.param(
            (STUB, "s"),
            (FULL, "a"),
            {"articles_inserted": 1, "stubs_deleted": 1},
            id="stub-filled",
        ),
        pytest.param((TOMBSTONE, None), (FULL, "a"), {"articles_inserted": 1}, id="back"),
        pytest.param((FULL, "a"), (FULL, "b"), {"articles_updated": 1}, id="rewritten"),
        pytest.param((FULL, "a"), (FULL, "a"), {}, id="same-document"),
        pytest.param((FULL, "a"), (TOMBSTONE, None), {"articles_removed": 1}, id="removed"),
        pytest.param(
            (FULL, "a"),
            (STUB, "s"),
            {"articles_removed": 1, "stubs_created": 1},
            id="removed-but-linked",
        ),
        pytest.param((STUB, "s"), (ABSENT, None), {"stubs_deleted": 1}, id="stub-unlinked"),
        pytest.param((STUB, None), (STUB, "s"), {}, id="stub-rebuilt"),
        pytest.param((TOMBSTONE, None), (STUB, "s"), {"stubs_created": 1}, id="linked-again"),
        pytest.param((STUB, "s"), (TOMBSTONE, None), {"stubs_deleted": 1}, id="stub-tombstone"),
        pytest.param((ABSENT, None), (ABSENT, None), {}, id="nothing"),
    ],
)
def test_what_one_articles_change_counts_for(
    before: tuple[str, str | None], after: tuple[str, str | None], counts: dict[str, int]
) -> None:
    assert transition(before, after) == counts


# --- a tree of documents that link to each other, in versions ----------------------------------


def story(i: int) -> str:
    return f"https://news{i % 13}.example.com/story/{i}"


def _document(i: int, version: int) -> dict[str, Any]:
    """Story ``i`` as version ``version`` of the tree has it: most stories change with
    every version (title, one link); every fifth never does; every thirteenth moves to
    another URL in one version."""
    edited = i % 5 != 0
    url = story(i) + ("-moved" if i % 13 == version else "")
    targets = [story((i + 1) % N_DOCS), story((i * 7 + 3 + (version if edited else 0)) % N_DOCS)]
    targets.append(f"https://elsewhere.example.org/{i % 40}")  # stubs that stay
    return {
        "title": f"Story {i}" + (f" v{version}" if edited else ""),
        "webUrl": url,
        "publishedDateTime": f"2024-01-01T00:{i // 60 % 60:02}:{i % 60:02}Z",
        "provider": {"name": f"Site {i % 13}", "domain": f"news{i % 13}.example.com"},
        "topics": [f"Section {i % 11}", "AI"],
        "related": [{"title": f"About {target}", "webUrl": target} for target in targets],
    }


def write_version(root: Path, version: int) -> None:
    """Version ``version`` of the tree: every eleventh story is gone in one version (and
    back in the others), 10 new stories per version, and duplicate files whose date
    flips between versions, so the file that wins a URL changes."""
    files: dict[str, bytes | None] = {}
    for i in range(N_DOCS + 30):
        name = f"{i:05d}.md"
        if i % 11 == version or i >= N_DOCS + 10 * version:
            if (root / name).exists():
                files[name] = None
        else:
            files[name] = _render(_document(i, version))
    for k in DUPLICATED:
        doc = _document(k, version)
        doc["title"] = f"Duplicate {k}"
        doc["publishedDateTime"] = "2030-01-01T00:00:00Z" if version % 2 else "2000-01-01T00:00:00Z"
        files[f"dup-{k}.md"] = _render(doc)
    write_tree(root, files)


def _render(front_matter: dict[str, Any]) -> bytes:
    return f"---\n{dump_yaml(front_matter, width=1 << 30)}---\nBody.\n".encode()


# --- reading what the runs recorded ----------------------------------------------------------


def runs_after(url: str, run_id: int) -> list[dict[str, Any]]:
    query = select(etl_runs).where(etl_runs.c.id > run_id).order_by(etl_runs.c.id)
    return [dict(row._mapping) for row in fetch(url, query)]


def last_run(url: str) -> int:
    return int(fetch(url, select(func.coalesce(func.max(etl_runs.c.id), 0)))[0][0])


def assert_feed_matches(url: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Each run's inserted + updated + removed = its change-feed entries not about stubs."""
    for row in rows:
        query = select(func.count()).where(
            article_changes.c.run_id == row["id"], ~article_changes.c.is_stub
        )
        entries = fetch(url, query)[0][0]
        counted = row["articles_inserted"] + row["articles_updated"] + row["articles_removed"]
        assert entries == counted, (row["id"], row["status"], entries, counted)


def committed_by(url: str, run_id: int) -> int:
    """What runs after ``run_id`` have committed so far (0 while the database is busy)."""
    total = etl_runs.c.articles_inserted + etl_runs.c.articles_updated + etl_runs.c.duplicates
    query = select(func.coalesce(func.sum(total), 0)).where(etl_runs.c.id > run_id)
    try:
        with connect(url, poolclass=NullPool) as conn:
            return int(conn.execute(query).scalar_one())
    except DBAPIError:
        return 0


def change(after: Held, before: Held) -> Held:
    return Held(*(a - b for a, b in zip(after, before, strict=True)))


def load(url: str, root: Path, *options: str) -> None:
    result = run_etl("run", str(root), "--database-url", url, *options)
    assert result.returncode == 0, result.stderr[-2000:]


# --- runs stopped by a signal ------------------------------------------------------------------


def _stop_mid_load(url: str, root: Path, signum: int, tmp_path: Path) -> None:
    """Start a run over the tree and stop it with ``signum`` once it has committed a
    batch; it must end ``interrupted``."""
    after = last_run(url)
    proc = start_etl(
        *("run", str(root), "--database-url", url, "--prune", "--batch-size", str(BATCH_SIZE)),
        stdout=(tmp_path / "stopped.out").open("wb"),
        stderr=(tmp_path / "stopped.err").open("wb"),
        start_new_session=True,  # its own process group, as a terminal's job
    )
    try:
        deadline = time.monotonic() + CLI_TIMEOUT
        while committed_by(url, after) == 0:
            assert proc.poll() is None, "the run ended before it committed anything"
            assert time.monotonic() < deadline, "the run committed nothing"
            time.sleep(0.01)
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)  # Ctrl-C: the whole process group
        else:
            os.kill(proc.pid, signum)  # a scheduler stopping the job
        code = proc.wait(timeout=CLI_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = (tmp_path / "stopped.err").read_text(errors="replace")
    assert code == 128 + signum, stderr[-2000:]
    [row] = runs_after(url, after)
    assert row["status"] == "interrupted", row


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_run_keeps_the_counts_of_what_it_committed(
    db_url: str, tmp_path: Path, signum: int
) -> None:
    root = tmp_path / "news"
    root.mkdir()
    write_version(root, 1)
    load(db_url, root, "--batch-size", str(BATCH_SIZE))
    assert net_change(runs_after(db_url, 0)) == held(db_url)

    write_version(root, 2)
    start, before = last_run(db_url), held(db_url)
    _stop_mid_load(db_url, root, signum, tmp_path)
    [stopped] = runs_after(db_url, start)
    # What it committed is counted, by it alone, against the database before it.
    assert net_change([stopped]) == change(held(db_url), before)
    assert stopped["articles_updated"] + stopped["articles_inserted"] > 0

    load(db_url, root, "--prune")
    rerun = runs_after(db_url, start)[1]
    assert rerun["articles_updated"] + rerun["articles_inserted"] > 0, "nothing was left to do"
    assert net_change(runs_after(db_url, start)) == change(held(db_url), before)
    assert net_change(runs_after(db_url, 0)) == held(db_url)
    assert_feed_matches(db_url, runs_after(db_url, 0))


# --- shards at once ------------------------------------------------------------------------------


def _shards_at_once(url: str, root: Path, *options: str) -> None:
    procs = [
        start_etl(
            *("run", str(root), "--database-url", url, "--shard", f"{k}/3", *options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    errors = [proc.communicate(timeout=CLI_TIMEOUT)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [e[-2000:] for e in errors]


def test_shards_run_at_once_count_each_change_once(db_url: str, tmp_path: Path) -> None:
    """Three shards started together: links and stubs cross shards, so each run creates
    stubs another fills and links to articles another writes."""
    root = tmp_path / "news"
    root.mkdir()
    write_version(root, 1)
    _shards_at_once(db_url, root, "--batch-size", str(BATCH_SIZE))
    assert net_change(runs_after(db_url, 0)) == held(db_url)

    write_version(root, 2)
    start, before = last_run(db_url), held(db_url)
    _shards_at_once(db_url, root, "--batch-size", str(BATCH_SIZE), "--prune")
    assert net_change(runs_after(db_url, start)) == change(held(db_url), before)
    assert_feed_matches(db_url, runs_after(db_url, 0))


# --- one run after another ----------------------------------------------------------------------


def test_a_history_of_runs_adds_up(db_url: str, tmp_path: Path) -> None:
    """Edits, deletions with and without --prune, URL moves, duplicates whose winner
    flips, a dry run, a full refresh: each run's counts, and their sums."""
    root = tmp_path / "news"
    root.mkdir()
    summaries: list[RunSummary] = []
    steps: list[tuple[int, dict[str, Any]]] = [
        (1, {}),
        (2, {}),  # files gone but not pruned: their articles stay
        (2, {"prune": True}),
        (3, {"prune": True, "batch_size": 7}),
        (3, {"full_refresh": True}),
        (1, {"prune": True, "workers": 1}),
    ]
    for version, options in steps:
        write_version(root, version)
        before = held(db_url) if summaries else Held(0, 0, 0)  # no schema yet
        # A dry run computes the same change (and writes nothing).
        dry = None
        if options.get("prune") and version == 2:  # the run with the most to do
            dry = etl.run([root], db_url, dry_run=True, **options)
            assert held(db_url) == before
        summary = etl.run([root], db_url, **options)
        assert net_change([summary]) == change(held(db_url), before), (version, options)
        if dry is not None:
            assert net_change([dry]) == net_change([summary])
        summaries.append(summary)
    rows = runs_after(db_url, 0)
    assert [row["id"] for row in rows] == [summary.run_id for summary in summaries]
    for row, summary in zip(rows, summaries, strict=True):
        assert {name: row[name] for name in COUNTER_NAMES} == summary.counts()
    assert net_change(rows) == held(db_url)
    refreshed = summaries[4]
    assert refreshed.articles_updated == refreshed.articles_inserted == 0
    assert refreshed.articles_unchanged + refreshed.duplicates == refreshed.files_seen
    assert_feed_matches(db_url, rows)
