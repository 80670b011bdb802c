"""A batch's article rows staged before the writer lock and upserted from there under
it: on PostgreSQL copied into the session's table in the batch's transaction
(``Prepared.stage_articles``), on MariaDB loaded by the server with ``LOAD DATA``
(``Prepared.add``, ``etl.db.load_data``). They end as the per-row path and a fresh
load do: across batches, in a dry run (one transaction for every batch), for a winner
read again under the lock, and a value the server refuses rejects its document alone.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import func, select

import etl
import etl.load.prepared
from etl.db import database
from etl.db.schema import articles
from etl.load.prepared import Prepared
from tests.helpers import (
    assert_loaded,
    assert_rejected,
    fetch,
    make_doc,
    render,
    token,
    url_for,
    write_tree,
)
from tests.snapshots import live_snapshot as live


def _doc(tag: str, *, url: str | None = None, date: str = "2021-06-01T00:00:00Z") -> bytes:
    front = make_doc(tag)
    if url is not None:
        front["webUrl"] = front["originalUrl"] = url_for(url)
    front["publishedDateTime"] = date
    return render(front)


class Staged(NamedTuple):
    urls: list[list[str]]  # of each staging, in order
    slots: list[list[int]]  # of each staging, the slots it took


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> Iterator[Staged]:
    """Every batch's articles staged (not only those of ``STAGE_FROM`` documents or
    more), and what each staging took, on either server."""
    calls = Staged([], [])
    real = etl.load.prepared._stage_articles

    def stage(conn: Any, ready: list[Any], slots: dict[int, Any]) -> None:
        calls.urls.append([d.article.url for d, _ in ready])  # even if the server refuses
        real(conn, ready, slots)
        calls.slots.append([slots[id(d)][1] for d, _ in ready])

    real_fields = Prepared._stage_article_fields

    def stage_fields(self: Prepared, conn: Any, docs: list[Any], ready: list[Any]) -> None:
        calls.urls.append(sorted(d.article.url for d in docs))  # even if the server refuses
        real_fields(self, conn, docs, ready)
        calls.slots.append(sorted(self._article_slots[id(d)][1] for d in docs))

    monkeypatch.setattr(etl.load.prepared, "STAGE_FROM", 1)
    monkeypatch.setattr(etl.load.prepared, "_stage_articles", stage)
    monkeypatch.setattr(Prepared, "_stage_article_fields", stage_fields)
    yield calls


def _site(root: Path) -> None:
    files = {f"_news/d{i}.md": _doc(f"d{i}") for i in range(7)}
    files["_news/early.md"] = _doc("early", url="same", date="2020-01-01T00:00:00Z")
    files["_news/late.md"] = _doc("late", url="same", date="2021-01-01T00:00:00Z")
    write_tree(root, files)


def test_staged_articles_end_as_a_fresh_load(
    server_url: str, tmp_path: Path, staged: Staged
) -> None:
    site = tmp_path / "site"
    _site(site)
    options: dict[str, Any] = {"workers": 1, "batch_size": 3}
    engine = database.make_engine(server_url)
    database.ensure_schema(engine)  # a dry run on an empty database makes no tables
    mariadb = engine.dialect.name != "postgresql"
    engine.dispose()
    # A dry run is one transaction: its batches' slots must not meet in the table
    # (MariaDB's staging table is made anew for each batch: its slots start again).
    dry = etl.run([site], server_url, dry_run=True, **options)
    assert fetch(server_url, select(func.count()).select_from(articles)) == [(0,)]
    assert len(staged.urls) == 3, "each batch of 3 staged"
    taken = [slot for slots in staged.slots for slot in slots]
    if mariadb:
        assert staged.slots == [[0, 1, 2]] * 3, "a slot names one row of its batch"
    else:
        assert len(set(taken)) == len(taken) == 9, "a slot names one row"
    real = etl.run([site], server_url, **options)
    assert dry.documents_rejected == real.documents_rejected == 0
    assert (dry.articles_inserted, dry.duplicates) == (real.articles_inserted, real.duplicates)
    # The winner re-dated: the other file of its URL, in no batch, is read under the lock.
    staged.urls.clear()
    write_tree(site, {"_news/late.md": _doc("late", url="same", date="2019-01-01T00:00:00Z")})
    etl.run([site], server_url, **options)
    assert staged.urls == [[url_for("same")]] * 2, "the batch, then the re-read"
    title = fetch(server_url, select(articles.c.title).where(articles.c.url == url_for("same")))
    assert title == [("Title early",)]
    reference = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    etl.run([site], reference, workers=1)
    assert live(server_url) == live(reference)


def test_a_value_the_server_refuses_in_a_staged_batch_rejects_its_document_alone(
    server_url: str, tmp_path: Path, staged: Staged
) -> None:
    """The batch's staged rows meet a value the server refuses (on MariaDB a title longer
    than its TEXT column holds: its LOAD DATA warns; on PostgreSQL a URL longer than its
    unique index takes: the upsert from the staging table fails). The batch is written
    again document by document, where the server refuses the one document, with its
    reason, and takes the others."""
    bad, good = token(), token()
    doc = make_doc(bad)
    if server_url.startswith("postgresql"):
        # Random hex: a repeated character compresses to fit the index.
        doc["webUrl"] = doc["originalUrl"] = url_for(bad) + "/" + secrets.token_hex(1600)
        reason = r"index row"
    else:
        doc["title"] = f"Title {bad} " + "t" * 70_000  # TEXT holds 65,535 bytes
        reason = r"too long|truncated"
    files = {f"bad-{bad}.md": render(doc), f"good-{good}.md": render(make_doc(good))}
    root = tmp_path / "in"
    write_tree(root, files)
    summary = etl.run([root], server_url, workers=1, batch_size=2)
    assert len(staged.urls[0]) == 2, "the two documents staged together"
    assert_rejected(server_url, summary, f"bad-{bad}.md", reason)
    assert_loaded(server_url, summary, f"good-{good}.md", good)
    assert fetch(
        server_url,
        select(func.count()).select_from(articles).where(articles.c.title.like(f"Title {bad}%")),
    ) == [(0,)]
