"""A rewritten article's links are written again only where they changed
(etl.load.writes): an edit that leaves them as they are (a title, a topic) neither
deletes nor inserts a link row, and every other edit of them ends as a fresh load.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import etl.load.writes
from etl import run
from etl.db import load_data
from etl.db.schema import articles
from tests.helpers import fetch, make_doc, render, url_for, write_tree
from tests.snapshots import live_snapshot as live


def _entry(target: str, **fields: Any) -> dict[str, Any]:
    """A related entry pointing at ``url_for(target)``."""
    entry: dict[str, Any] = copy.deepcopy(make_doc("x")["related"][0])
    entry["webUrl"] = url_for(target)
    entry["title"] = f"Related {target}"
    entry["publishedDateTime"] = "2021-01-01T00:00:00Z"
    entry.update(fields)
    return entry


def _doc(tag: str, related: list[dict[str, Any]], **fields: Any) -> bytes:
    front = make_doc(tag)
    front["related"] = related
    front.update(fields)
    return render(front)


RELATED = [_entry("t1"), _entry("t2"), _entry("t3")]

# Each document's edit, by name: what it does to the related entries of RELATED.
EDITS: dict[str, Callable[[list[dict[str, Any]]], list[dict[str, Any]]]] = {
    "same": lambda related: related,
    "snippet": lambda related: [{**related[0], "title": "Retitled"}, *related[1:]],
    "date": lambda related: [related[0], {**related[1], "publishedDateTime": "2022-02-02"}],
    "provider": lambda related: [
        {**related[0], "provider": {"name": "Other", "domain": "other.example.com"}},
        *related[1:],
    ],
    "dropped": lambda related: related[:2],
    "added": lambda related: [*related, _entry("t4")],
    "reordered": lambda related: [related[1], related[0], related[2]],
    "retargeted": lambda related: [_entry("t9"), *related[1:]],
    "emptied": lambda related: [],
}


class Written:
    """The article ids whose links a run deleted, and those it inserted links for."""

    def __init__(self) -> None:
        self.deleted: set[int] = set()
        self.inserted: set[int] = set()


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[Written]:
    """Records the link writes of runs in this process (``workers=1``)."""
    seen = Written()
    delete = getattr(etl.load.writes, "delete_where_in")  # noqa: B009  (not in its __all__)
    insert = getattr(etl.load.writes, "insert_checked_once")  # noqa: B009

    def deleting(conn: Any, table: Any, column: str, ids: Any) -> None:
        ids = list(ids)
        if table.name == "related_articles":
            seen.deleted.update(ids)
        delete(conn, table, column, ids)

    map_slots = load_data.map_slots

    def inserting(conn: Any, table: Any, columns: Any, rows: list[list[Any]], **kw: Any) -> None:
        # Elsewhere than MariaDB's staged links: rows name their keys' values, None where
        # a row names none.
        seen.inserted.update(row[0] for row in rows if row[0] is not None)
        insert(conn, table, columns, rows, **kw)

    def mapping(conn: Any, table: Any, first: Any, second: Any) -> None:
        # MariaDB's staged links: the ids their first slots map to are their articles'.
        seen.inserted.update(id_ for _, id_ in first)
        map_slots(conn, table, first, second)

    monkeypatch.setattr(etl.load.writes, "delete_where_in", deleting)
    monkeypatch.setattr(etl.load.writes, "insert_checked_once", inserting)
    monkeypatch.setattr(load_data, "map_slots", mapping)
    yield seen


def _fresh(tmp_path: Path, site: Path) -> dict[str, Any]:
    reference = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    run([site], reference, workers=1)
    return live(reference)


def _ids(url: str) -> dict[str, int]:
    return {row.url: row.id for row in fetch(url, select(articles.c.url, articles.c.id))}


def test_only_links_that_changed_are_written_again(
    db_url: str, tmp_path: Path, written: Written
) -> None:
    site = tmp_path / "site"
    write_tree(site / "_news", {f"{name}.md": _doc(name, RELATED) for name in EDITS})
    run([site], db_url, workers=1)
    write_tree(
        site / "_news",
        {
            f"{name}.md": _doc(name, edit(RELATED), title=f"Edited {name}")
            for name, edit in EDITS.items()
        },
    )
    written.deleted.clear()
    written.inserted.clear()
    summary = run([site], db_url, workers=1)
    assert summary.articles_updated == len(EDITS)
    ids = _ids(db_url)
    changed = {ids[url_for(name)] for name in EDITS if name != "same"}
    assert written.deleted == changed
    assert written.inserted == changed - {ids[url_for("emptied")]}
    assert live(db_url) == _fresh(tmp_path, site)


def test_a_batch_that_drops_every_link_deletes_them(
    db_url: str, tmp_path: Path, written: Written
) -> None:
    site = tmp_path / "site"
    write_tree(site / "_news", {"a.md": _doc("a", RELATED), "b.md": _doc("b", RELATED)})
    run([site], db_url, workers=1)
    write_tree(site / "_news", {"a.md": _doc("a", [])})
    written.deleted.clear()
    written.inserted.clear()
    summary = run([site], db_url, workers=1)
    assert (summary.links_removed, summary.links_added) == (3, 0)
    assert written.deleted == {_ids(db_url)[url_for("a")]} and not written.inserted
    assert live(db_url) == _fresh(tmp_path, site)
