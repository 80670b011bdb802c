"""The change feed: every committed change to an article, once, in commit order.

Replaying the feed (last change per article id) must give exactly the articles
table, on every backend, including while several shard runs write at once.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.engine import make_url

from etl import CursorTooOld, changes, run
from etl.db import database
from etl.db.database import ConfigurationError, resolve_url
from etl.db.schema import SEARCH_TRIGGERS, articles, etl_runs
from etl.query.feed import Change, compact, latest_cursor
from tests.helpers import SEEDS, fetch, kill_other_connections, run_etl, start_etl

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
SQLITE_FORM = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


def _doc(
    folder: Path,
    name: str,
    url: str,
    title: str,
    related: tuple[str, ...] = (),
    topics: tuple[str, ...] = (),
) -> None:
    lines = [
        "---",
        f'title: "{title}"',
        f'webUrl: "{url}"',
        "publishedDateTime: 2024-01-01T00:00:00Z",
        "provider:",
        "  name: Example",
        "  domain: example.com",
    ]
    if topics:
        lines += ["topics:", *(f"  - {topic}" for topic in topics)]
    if related:
        lines.append("related:")
        for target in related:
            lines += [f'  - title: "about {target}"', f'    webUrl: "{target}"']
    lines.append("---")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\nbody\n", encoding="utf-8")


def _table(url: str) -> dict[int, tuple[str, bool, bool]]:
    """id -> (url, is_removed, is_stub) of every article row."""
    engine = database.make_engine(url)
    try:
        with engine.connect() as conn:
            query = select(articles.c.id, articles.c.url, articles.c.is_removed, articles.c.is_stub)
            return {r.id: (r.url, bool(r.is_removed), bool(r.is_stub)) for r in conn.execute(query)}
    finally:
        engine.dispose()


def assert_replays_to_table(url: str, feed: list[Change]) -> None:
    """Cursors strictly increase, and the last change per article is the table's row."""
    cursors = [change.cursor for change in feed]
    assert all(a < b for a, b in pairwise(cursors)), "cursor order"
    last: dict[int, Change] = {}
    for change in feed:
        last[change.article_id] = change
    replayed = {
        article_id: (change.url, change.op == "remove", change.is_stub)
        for article_id, change in last.items()
        if change.op != "delete"
    }
    assert replayed == _table(url)


def _by_url(feed: list[Change]) -> dict[str, list[tuple[str, bool]]]:
    found: dict[str, list[tuple[str, bool]]] = {}
    for change in feed:
        found.setdefault(change.url, []).append((change.op, change.is_stub))
    return found


def test_feed_records_stubs_prune_and_deletions(db_url: str, tmp_path: Path) -> None:
    news = tmp_path / "news"
    a, b, c = (f"https://example.com/{name}" for name in "abc")
    _doc(news, "a.md", a, "A", related=(b,))
    first = run([news], db_url)
    feed = list(changes(db_url))
    assert _by_url(feed) == {
        a: [("upsert", False)],
        b: [("upsert", True), ("upsert", True)],  # the stub created, then filled in
    }
    assert {change.run_id for change in feed} == {first.run_id}
    assert all(ISO_UTC.match(change.to_dict()["committed_at"]) for change in feed)

    _doc(news, "b.md", b, "B")  # the stub becomes a full article
    run([news], db_url)
    _doc(news, "a.md", a, "A2", related=(c,))  # b loses its link, c is a new stub
    run([news], db_url)
    _doc(news, "a.md", a, "A3")  # nothing links to c any more: the stub is deleted
    run([news], db_url)
    (news / "b.md").unlink()
    pruned = run([news], db_url, prune=True)
    assert pruned.articles_removed == 1
    feed = list(changes(db_url))
    history = _by_url(feed)
    assert history[b] == [
        ("upsert", True),
        ("upsert", True),
        ("upsert", False),
        ("remove", False),
    ]
    assert history[c] == [("upsert", True), ("upsert", True), ("delete", True)]
    assert history[a] == [("upsert", False)] * 3
    assert feed[-1].run_id == pruned.run_id
    assert_replays_to_table(db_url, feed)

    # An unchanged re-run, with or without --prune, records nothing.
    newest = latest_cursor(db_url)
    run([news], db_url)
    run([news], db_url, prune=True, full_refresh=True)
    assert latest_cursor(db_url) == newest
    assert list(changes(db_url, since=newest)) == []


def test_only_changes_a_consumer_sees_are_recorded(db_url: str) -> None:
    run([SEEDS], db_url)
    newest = latest_cursor(db_url)
    engine = database.make_engine(db_url)
    try:
        with engine.begin() as conn:
            # The load's internal marks and clocks: not changes.
            conn.execute(update(articles).values(fingerprint=None))
            conn.execute(update(articles).values(title=articles.c.title))
        assert latest_cursor(db_url) == newest
        with engine.begin() as conn:  # a writer other than the ETL is recorded too
            article_id = conn.execute(
                select(articles.c.id).where(~articles.c.is_stub).order_by(articles.c.id).limit(1)
            ).scalar_one()
            conn.execute(
                update(articles).where(articles.c.id == article_id).values(title="edited by hand")
            )
    finally:
        engine.dispose()
    [change] = list(changes(db_url, since=newest))
    assert (change.article_id, change.op, change.run_id) == (article_id, "upsert", None)


def test_a_change_of_topics_alone_is_recorded(db_url: str, tmp_path: Path) -> None:
    news = tmp_path / "news"
    _doc(news, "t.md", "https://example.com/t", "T", topics=("AI",))
    run([news], db_url)
    newest = latest_cursor(db_url)
    _doc(news, "t.md", "https://example.com/t", "T", topics=("AI", "Cloud"))
    assert run([news], db_url).articles_updated == 1
    assert [(c.url, c.op) for c in changes(db_url, since=newest)] == [
        ("https://example.com/t", "upsert")
    ]


def test_limit_and_paging(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run([SEEDS], sqlite_url)
    everything = list(changes(sqlite_url))
    monkeypatch.setattr("etl.query.feed.PAGE", 7)
    assert list(changes(sqlite_url)) == everything
    assert list(changes(sqlite_url, limit=10)) == everything[:10]
    assert list(changes(sqlite_url, since=everything[9].cursor, limit=3)) == everything[10:13]
    with pytest.raises(ConfigurationError):
        list(changes(sqlite_url, since=-1))


def test_compaction_and_the_too_old_cursor(db_url: str, tmp_path: Path) -> None:
    run([SEEDS], db_url)
    newest = latest_cursor(db_url)
    assert compact(db_url, keep=timedelta(days=1)).removed == 0
    done = compact(db_url, keep=timedelta(0))
    assert (done.removed, done.compacted_through) == (newest, newest)
    assert latest_cursor(db_url) == newest  # the log is empty; the cursor did not go back
    with pytest.raises(CursorTooOld) as info:
        list(changes(db_url, since=newest - 1))
    assert info.value.compacted_through == newest and "resynchronise" in str(info.value)
    result = _cli("changes", "--database-url", db_url)
    assert result.returncode == 4 and "resynchronise" in result.stderr, result.stderr
    assert list(changes(db_url, since=newest)) == []

    # New changes after an emptied log get larger cursors, and compaction again is a no-op.
    news = tmp_path / "news"
    _doc(news, "x.md", "https://example.com/x", "X")
    run([news], db_url)
    [change] = list(changes(db_url, since=newest))
    assert change.cursor > newest and change.url == "https://example.com/x"
    assert compact(db_url, keep=timedelta(days=1)).compacted_through == newest
    result = _cli("changes", "--compact", "--keep", "0", "--database-url", db_url)
    assert result.returncode == 0 and f"at least {change.cursor}" in result.stdout


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_etl(*args)


def test_cli_prints_json_lines(sqlite_url: str, tmp_path: Path) -> None:
    run([SEEDS], sqlite_url)
    result = _cli("changes", "--json", "--limit", "3", "--database-url", sqlite_url)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["cursor"] for line in lines] == [1, 2, 3]
    assert {"cursor", "op", "article_id", "url", "is_stub", "run_id", "committed_at"} == set(
        lines[0]
    )
    assert all(ISO_UTC.match(line["committed_at"]) for line in lines)
    plain = _cli("changes", "--since", "2", "--limit", "1", "--database-url", sqlite_url)
    assert plain.stdout.startswith("3  ") and "+00:00" in plain.stdout
    latest = _cli("changes", "--latest", "--database-url", sqlite_url)
    assert int(latest.stdout) == latest_cursor(sqlite_url)
    assert _cli("changes", "--compact", "--database-url", sqlite_url).returncode == 2
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    missing = _cli("changes", "--database-url", empty)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not (tmp_path / "empty.sqlite3").exists()  # reading the feed creates no file
    (tmp_path / "empty.sqlite3").touch()
    no_feed = _cli("changes", "--database-url", empty)
    assert no_feed.returncode == 2 and "no change feed" in no_feed.stderr


def _follow_one(url: str, since: int, found: list[Change]) -> threading.Thread:
    def consume() -> None:
        found.extend(changes(url, since=since, follow=True, limit=1, poll_interval=0.05))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread


def _edit_first_article(url: str, title: str) -> int:
    engine = database.make_engine(url)
    try:
        with engine.begin() as conn:
            first = conn.execute(select(articles.c.id).order_by(articles.c.id).limit(1)).scalar()
            conn.execute(update(articles).where(articles.c.id == first).values(title=title))
            return int(first or 0)
    finally:
        engine.dispose()


def test_follow_waits_for_the_next_change(db_url: str) -> None:
    run([SEEDS], db_url)
    newest = latest_cursor(db_url)
    found: list[Change] = []
    thread = _follow_one(db_url, newest, found)
    article_id = _edit_first_article(db_url, "followed")
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert [(c.article_id, c.cursor > newest) for c in found] == [(article_id, True)]


def _wait_until_following(url: str, timeout: float = 60) -> None:
    """Until the follower waits for a NOTIFY (PostgreSQL); elsewhere a second, in which
    it polls about twenty times (a cut in the middle of a poll is read again)."""
    if make_url(url).get_backend_name() != "postgresql":
        time.sleep(1)
        return
    deadline = time.monotonic() + timeout
    listening = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query = 'LISTEN news_etl' AND state = 'idle'"
    )
    while not fetch(url, listening)[0][0]:
        assert time.monotonic() < deadline, "the follower never LISTENed"
        time.sleep(0.02)


def test_following_goes_on_after_its_connections_are_cut(server_url: str) -> None:
    """A server restart, a failover or an operator cuts every connection of a
    follower: it connects again and gets the next change, not an error's traceback."""
    run([SEEDS], server_url)
    newest = latest_cursor(server_url)
    found: list[Change] = []
    thread = _follow_one(server_url, newest, found)
    _wait_until_following(server_url)
    assert kill_other_connections(server_url), "no connection of the follower to cut"
    article_id = _edit_first_article(server_url, "after the cut")
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert [(c.article_id, c.cursor > newest) for c in found] == [(article_id, True)]


def _notifications(conn: psycopg.Connection[Any], wanted: int) -> list[int]:
    payloads: list[int] = []
    while not payloads or payloads[-1] < wanted:
        batch = [int(n.payload) for n in conn.notifies(timeout=60, stop_after=1)]
        if not batch:
            break
        payloads += batch
    return payloads


def test_notify_arrives_on_postgresql(pg_url: str) -> None:
    engine = database.make_engine(pg_url)
    database.upgrade(engine)
    engine.dispose()
    dsn = resolve_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN news_etl")
        run([SEEDS], pg_url)
        newest = latest_cursor(pg_url)
        payloads = _notifications(listener, newest)
        assert payloads and payloads == sorted(payloads) and payloads[-1] == newest
        # The unchanged re-run writes nothing, so nothing is sent.
        run([SEEDS], pg_url)
        _edit_first_article(pg_url, "notified")
        assert _notifications(listener, newest + 1) == [newest + 1]


def test_sqlite_timestamps_have_one_sortable_form(sqlite_url: str) -> None:
    engine = database.make_engine(sqlite_url)
    try:
        database.upgrade(engine, "0004")
        with engine.begin() as conn:  # a row given the server default: CURRENT_TIMESTAMP
            conn.execute(text("INSERT INTO topics (slug, name) VALUES ('t', 'T')"))
        database.upgrade(engine)
        run([SEEDS], sqlite_url, engine=engine)
        with engine.connect() as conn:
            stored = [
                *conn.execute(text("SELECT created_at FROM topics")).scalars(),
                *conn.execute(
                    text(
                        "SELECT created_at || '|' || updated_at || '|' || published_at "
                        "FROM articles WHERE published_at IS NOT NULL"
                    )
                ).scalars(),
                *conn.execute(text("SELECT committed_at FROM article_changes")).scalars(),
                *conn.execute(text("SELECT started_at FROM etl_runs")).scalars(),
            ]
            # Text comparison is time comparison, with a literal in the same form or a prefix.
            started = conn.execute(select(etl_runs.c.started_at)).scalar_one()
            prefix = started.strftime("%Y-%m-%d %H:%M")
            later = conn.execute(
                text("SELECT count(*) FROM article_changes WHERE committed_at >= :p"),
                {"p": prefix},
            ).scalar_one()
            total = conn.execute(text("SELECT count(*) FROM article_changes")).scalar_one()
    finally:
        engine.dispose()
    values = [part for item in stored for part in item.split("|")]
    assert values and all(SQLITE_FORM.match(value) for value in values), values[:5]
    assert later == total > 0


@pytest.mark.corpus
def test_consumer_during_four_concurrent_shard_runs(
    db_url: str, corpus_news: Path, tmp_path: Path
) -> None:
    """A consumer polling while four shard runs load the corpus ends with the table."""
    engine = database.make_engine(db_url)
    database.upgrade(engine)
    engine.dispose()
    reader: Engine = database.make_engine(db_url, read_only=True)
    feed: list[Change] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        since = 0
        try:
            while True:
                finished = done.is_set()  # read before polling: the last poll sees all
                for change in changes(since=since, engine=reader):
                    feed.append(change)
                    since = change.cursor
                if finished:
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    procs = [
        start_etl(
            "run",
            str(corpus_news),
            "--database-url",
            db_url,
            "--shard",
            f"{k}/4",
            "--workers",
            "1",
            "--no-migrate",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    outcomes = [proc.communicate(timeout=1800) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, outcomes
    done.set()
    consumer.join(timeout=600)
    reader.dispose()
    assert not errors and not consumer.is_alive()

    assert len({change.cursor for change in feed}) == len(feed)
    assert_replays_to_table(db_url, feed)
    assert len(_table(db_url)) > 4900
    assert {change.run_id for change in feed} == set(range(1, 5))
    ops = {(change.op, change.is_stub) for change in feed}
    assert ("upsert", True) in ops and ("upsert", False) in ops

    newest = latest_cursor(db_url)
    summary = run([corpus_news], db_url, prune=True)
    assert summary.files_skipped_unchanged == summary.files_seen
    assert latest_cursor(db_url) == newest


def test_the_triggers_exist_at_head(db_url: str) -> None:
    """A later migration that rebuilds ``articles`` (SQLite batch mode recreates the
    table, dropping its triggers) must recreate them: the feed would go silent."""
    engine = database.make_engine(db_url)
    try:
        database.upgrade(engine)
        queries = {
            "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name = 'articles'",
            "postgresql": "SELECT tgname FROM pg_trigger "
            "WHERE tgrelid = 'articles'::regclass AND NOT tgisinternal",
        }
        query = queries.get(
            engine.dialect.name,
            "SELECT trigger_name FROM information_schema.triggers "
            "WHERE event_object_schema = DATABASE() AND event_object_table = 'articles'",
        )
        with engine.connect() as conn:
            names = set(conn.execute(text(query)).scalars())
    finally:
        engine.dispose()
    feed = {f"article_changes_{event}" for event in ("insert", "update", "delete")}
    # SQLite's search index has triggers on articles too (migration 0009)
    assert names == (feed | SEARCH_TRIGGERS if engine.dialect.name == "sqlite" else feed)
