"""PostgreSQL: a batch's article rows copied into the session's staging table before
the writer lock (``Prepared.stage_articles``), and upserted from there under it,
end as the per-row path and a fresh load do: across batches, in a dry run (one
transaction for every batch), and for a winner read again under the lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import func, select

import etl
import etl.load.prepared
from etl.db import database
from etl.db.schema import articles
from tests.helpers import fetch, make_doc, render, url_for, write_tree
from tests.snapshots import live_snapshot as live


def _doc(tag: str, *, url: str | None = None, date: str = "2021-06-01T00:00:00Z") -> bytes:
    front = make_doc(tag)
    if url is not None:
        front["webUrl"] = front["originalUrl"] = url_for(url)
    front["publishedDateTime"] = date
    return render(front)


class Staged(NamedTuple):
    urls: list[list[str]]  # of each staging, in order
    slots: list[int]  # every slot taken, in order


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> Iterator[Staged]:
    """Every batch's articles staged (not only those of ``STAGE_FROM`` documents or
    more), and what each staging took."""
    calls = Staged([], [])
    real = etl.load.prepared._stage_articles

    def stage(conn: Any, ready: list[Any], slots: dict[int, Any]) -> None:
        real(conn, ready, slots)
        calls.urls.append([d.article.url for d, _ in ready])
        calls.slots.extend(slots[id(d)][1] for d, _ in ready)

    monkeypatch.setattr(etl.load.prepared, "STAGE_FROM", 1)
    monkeypatch.setattr(etl.load.prepared, "_stage_articles", stage)
    yield calls


def _site(root: Path) -> None:
    files = {f"_news/d{i}.md": _doc(f"d{i}") for i in range(7)}
    files["_news/early.md"] = _doc("early", url="same", date="2020-01-01T00:00:00Z")
    files["_news/late.md"] = _doc("late", url="same", date="2021-01-01T00:00:00Z")
    write_tree(root, files)


def test_staged_articles_end_as_a_fresh_load(pg_url: str, tmp_path: Path, staged: Staged) -> None:
    site = tmp_path / "site"
    _site(site)
    options: dict[str, Any] = {"workers": 1, "batch_size": 3}
    engine = database.make_engine(pg_url)
    database.ensure_schema(engine)  # a dry run on an empty database makes no tables
    engine.dispose()
    # A dry run is one transaction: its batches' slots must not meet in the table.
    dry = etl.run([site], pg_url, dry_run=True, **options)
    assert fetch(pg_url, select(func.count()).select_from(articles)) == [(0,)]
    assert len(staged.urls) == 3, "each batch of 3 staged"
    assert len(set(staged.slots)) == len(staged.slots) == 9, "a slot names one row"
    real = etl.run([site], pg_url, **options)
    assert dry.documents_rejected == real.documents_rejected == 0
    assert (dry.articles_inserted, dry.duplicates) == (real.articles_inserted, real.duplicates)
    # The winner re-dated: the other file of its URL, in no batch, is read under the lock.
    staged.urls.clear()
    write_tree(site, {"_news/late.md": _doc("late", url="same", date="2019-01-01T00:00:00Z")})
    etl.run([site], pg_url, **options)
    assert staged.urls == [[url_for("same")]] * 2, "the batch, then the re-read"
    title = fetch(pg_url, select(articles.c.title).where(articles.c.url == url_for("same")))
    assert title == [("Title early",)]
    reference = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    etl.run([site], reference, workers=1)
    assert live(pg_url) == live(reference)
