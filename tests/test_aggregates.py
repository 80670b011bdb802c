"""Every column equals a fresh load: providers' names and logos, topics' names and images'
sizes follow the files that exist now, after any history (etl.load.aggregates).

Each history runs on every backend and ends compared, table by table and column by
column (tests.snapshots.live_snapshot, derived from etl.db.schema), with a fresh load of
the final files. The values the history started from are chosen so that the old rule
("the smallest or largest value ever seen while the row exists") would keep them.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from etl import run
from etl.db.schema import articles, images, providers, topics
from tests.helpers import fetch, make_doc, render, url_for, write_tree
from tests.snapshots import live_snapshot

SHARED = "shared.example.com"
LOGO = url_for("shared", "logo.png")
PHOTO = url_for("shared", "photo.jpg")


def doc(
    tag: str,
    *,
    provider: str = "Ars Technica",
    topic: str = "DevOps",
    size: int = 800,
    date: str = "2021-06-01T00:00:00Z",
    url: str | None = None,
    snippet_provider: str = "Snippet Co",
) -> bytes:
    """A document of the shared provider, topic, logo and photo, in the given spelling/size."""
    front: dict[str, Any] = make_doc(tag)
    if url is not None:
        front["webUrl"] = front["originalUrl"] = url_for(url)
    front["publishedDateTime"] = date
    front["provider"] = {
        "name": provider,
        "domain": SHARED,
        "images": [{"url": LOGO, "width": size // 10, "height": size // 10}],
    }
    front["topics"] = [topic, f"Topic {tag}"]
    front["images"] = [{"url": PHOTO, "width": size, "height": size // 2}]
    front["related"][0]["provider"] = {"name": snippet_provider, "domain": "snippets.example"}
    return render(front)


def fresh(tmp_path: Path, sites: list[tuple[Path, str]]) -> dict[str, Any]:
    reference = f"sqlite:///{tmp_path / f'fresh-{len(list(tmp_path.iterdir()))}.sqlite3'}"
    for site, name in sites:
        run([site], reference, workers=1, source=name)
    return live_snapshot(reference)


def values(url: str) -> tuple[Any, ...]:
    provider = fetch(url, select(providers.c.name).where(providers.c.domain == SHARED))
    topic = fetch(url, select(topics.c.name).where(topics.c.slug == "devops"))
    photo = fetch(url, select(images.c.width, images.c.height).where(images.c.url == PHOTO))
    logo = fetch(url, select(images.c.width).where(images.c.url == LOGO))
    return provider[0][0], topic[0][0], tuple(photo[0]), logo[0][0]


def test_a_site_wide_rename_recase_and_resize_is_followed(db_url: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_tree(site, {f"_news/{i}.md": doc(f"w{i}") for i in range(4)})
    run([site], db_url, workers=1, source="site")
    assert values(db_url) == ("Ars Technica", "DevOps", (800, 400), 80)
    # Every document of the provider is renamed, re-cased and resized; one batch of two.
    write_tree(
        site,
        {
            f"_news/{i}.md": doc(
                f"w{i}", provider="Ars Technica Newsroom", topic="Devops", size=400
            )
            for i in range(4)
        },
    )
    run([site], db_url, workers=1, source="site", batch_size=2)
    assert values(db_url) == ("Ars Technica Newsroom", "Devops", (400, 200), 40)
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "site")])


def test_a_renamed_snippet_provider_is_followed(db_url: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_tree(site, {"_news/a.md": doc("a", snippet_provider="Alpha Snippets")})
    run([site], db_url, workers=1, source="site")
    write_tree(site, {"_news/a.md": doc("a", snippet_provider="Beta Snippets")})
    run([site], db_url, workers=1, source="site")
    name = fetch(db_url, select(providers.c.name).where(providers.c.domain == "snippets.example"))
    assert name == [("Beta Snippets",)]
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "site")])


def test_the_winner_of_a_url_decides_and_the_loser_says_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """The loser of a URL contributes no name, spelling or size, whichever batch it was in."""
    site = tmp_path / "site"
    write_tree(
        site,
        {
            "_news/1-early.md": doc(
                "early", url="same", date="2020-01-01T00:00:00Z", provider="Zeta", size=200
            ),
            "_news/2-late.md": doc(
                "late", url="same", date="2021-01-01T00:00:00Z", provider="Alpha", topic="DEVOPS"
            ),
        },
    )
    # One document a batch: the early file is written first, then loses its URL.
    run([site], db_url, workers=1, source="site", batch_size=1)
    assert values(db_url) == ("Alpha", "DEVOPS", (800, 400), 80)
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "site")])
    # Re-dated: the early file wins now, and only what it says is left.
    write_tree(
        site,
        {
            "_news/2-late.md": doc(
                "late", url="same", date="2019-01-01T00:00:00Z", provider="Alpha", topic="DEVOPS"
            )
        },
    )
    run([site], db_url, workers=1, source="site")
    assert values(db_url) == ("Zeta", "DevOps", (200, 100), 20)
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "site")])


def test_a_pruned_site_takes_what_it_said_along(db_url: str, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write_tree(one, {f"_news/{i}.md": doc(f"one{i}", provider="AAA", size=1600) for i in range(3)})
    write_tree(two, {f"_news/{i}.md": doc(f"two{i}", topic="devops") for i in range(3)})
    run([one], db_url, workers=1, source="one")
    run([two], db_url, workers=1, source="two")
    assert values(db_url) == ("AAA", "DevOps", (1600, 800), 160)
    write_tree(one, {"_news/0.md": doc("one0"), "_news/1.md": None, "_news/2.md": None})
    run([one], db_url, workers=1, source="one", prune=True, max_prune=1)
    assert values(db_url) == ("Ars Technica", "DevOps", (800, 400), 80)
    assert live_snapshot(db_url) == fresh(tmp_path, [(one, "one"), (two, "two")])


def test_a_churn_of_deletions_renames_and_moves_ends_as_a_fresh_load(
    db_url: str, tmp_path: Path
) -> None:
    """A `git pull` at a time: files deleted, renamed, moved to other URLs, re-dated and
    re-spelled, across two sites, each run with --prune; compared after every run."""
    rng = random.Random(21)
    spellings = ["Ars Technica", "Ars technica", "ARS Technica", "Ars Technica Newsroom"]
    cases = ["DevOps", "Devops", "devops", "DEVOPS"]
    sites = {name: tmp_path / name for name in ("azure", "ai")}
    files: dict[str, dict[str, bytes]] = {name: {} for name in sites}

    def make(site: str, i: int) -> bytes:
        return doc(
            f"{site}{i}",
            provider=rng.choice(spellings),
            topic=rng.choice(cases),
            size=rng.choice([200, 400, 800]),
            date=f"2021-0{rng.randint(1, 9)}-01T00:00:00Z",
            url=f"u{rng.randint(0, 11)}" if rng.random() < 0.5 else None,
            snippet_provider=rng.choice(["Alpha Snippets", "Beta Snippets"]),
        )

    for name in sites:
        files[name] = {f"_news/{i}.md": make(name, i) for i in range(8)}
        write_tree(sites[name], files[name])
    for step in range(4):
        for name, root in sites.items():
            changes: dict[str, bytes | None] = {}
            for path in rng.sample(sorted(files[name]), 3):
                action = rng.choice(["edit", "delete", "rename"])
                if action == "edit":
                    changes[path] = files[name][path] = make(name, rng.randint(0, 20))
                elif action == "delete" and len(files[name]) > 4:
                    changes[path] = None
                    del files[name][path]
                else:
                    new = f"_news/r{step}-{path.rsplit('/', 1)[1]}"
                    changes[new] = files[name][new] = files[name].pop(path)
                    changes[path] = None
            write_tree(root, changes)
            run([root], db_url, workers=1, source=name, prune=True, max_prune=1, batch_size=3)
        expected = fresh(tmp_path, [(sites["azure"], "azure"), (sites["ai"], "ai")])
        assert live_snapshot(db_url) == expected, f"after step {step}"


OWN = {  # what the edited document references (make_doc("one0"))
    "providers": {"one0.example.com"},
    "topics": {"topic-one0", "ai"},
    "images": {url_for("one0", "image.jpg"), url_for("one0", "logo.png")},
}
NOTHING: dict[str, set[str]] = {"providers": set(), "topics": set(), "images": set()}


def _retitled(front: dict[str, Any]) -> None:
    front["title"] = "Edited"


def _respelled(front: dict[str, Any]) -> None:
    front["topics"] = ["TOPIC one0", "AI"]


def _resized(front: dict[str, Any]) -> None:
    front["images"][0]["width"] += 1


def _relogoed(front: dict[str, Any]) -> None:
    front["provider"]["images"][0]["height"] += 1


def _renamed(front: dict[str, Any]) -> None:
    front["provider"]["name"] = "Provider one0, renamed"


@pytest.mark.parametrize(
    ("edit", "own"),
    [
        # Its references as they were: its topics, images and provider stay as they are.
        (_retitled, NOTHING),
        # A reference changed: every entity the document references is recomputed.
        (_respelled, OWN),
        (_resized, OWN),
        (_relogoed, OWN),
        (_renamed, OWN),
    ],
)
def test_an_edit_recomputes_only_the_entities_it_touches(
    db_url: str,
    tmp_path: Path,
    monkeypatch: Any,
    edit: Callable[[dict[str, Any]], None],
    own: dict[str, set[str]],
) -> None:
    """One file of 20 edited: the entities recomputed are that file's, if its references
    changed (and its link's stub's provider), not the 21 providers, 21 topics and 40
    images of the load; the database equals a fresh load."""
    from etl.load import aggregates

    site = tmp_path / "site"
    write_tree(site, {f"_news/{i}.md": render(make_doc(f"one{i}")) for i in range(20)})
    run([site], db_url, workers=1, source="site")
    recomputed = aggregates.Touched()
    original = aggregates.recompute

    def spy(conn: Any, touched: aggregates.Touched, now: Any) -> None:
        original(conn, touched, now)
        recomputed.update(touched)

    monkeypatch.setattr("etl.load.aggregates.recompute", spy)  # the end of the run calls it once
    edited = make_doc("one0")
    edit(edited)
    write_tree(site, {"_news/0.md": render(edited)})
    assert run([site], db_url, workers=1, source="site").articles_updated == 1
    names = {
        table.name: {
            row[0] for row in fetch(db_url, select(table.c[key]).where(table.c.id.in_(ids)))
        }
        for table, key, ids in (
            (providers, "domain", recomputed.providers),
            (topics, "slug", recomputed.topics),
            (images, "url", recomputed.images),
        )
    }
    # bbc.com: the seed's related snippet names it, and the link's stub is rebuilt.
    assert names == {
        kind: own[kind] | ({"bbc.com"} if kind == "providers" else set()) for kind in own
    }
    monkeypatch.undo()
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "site")])


def test_an_unchanged_rerun_takes_no_writer_lock(db_url: str, tmp_path: Path) -> None:
    """Nothing pending, no stub to rebuild: a run that finds every file unchanged has
    nothing to settle, and neither waits for nor holds the writer lock."""
    site = tmp_path / "site"
    write_tree(site, {f"_news/{i}.md": render(make_doc(f"u{i}")) for i in range(3)})
    assert run([site], db_url, workers=1, source="site").timings["lock"] > 0
    summary = run([site], db_url, workers=1, source="site")
    assert summary.files_skipped_unchanged == 3
    assert (summary.timings["wait"], summary.timings["lock"]) == (0, 0)
    assert summary.timings["lock_kinds"] == {}


def test_what_a_run_stopped_before_its_end_left_is_settled_by_the_next(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails after its writes committed leaves entities to recompute, one that
    nothing references any more and a stub to rebuild. The next run finds every file
    unchanged, and settles them all: the database equals a fresh load."""
    site = tmp_path / "site"
    write_tree(site, {"_news/a.md": render(make_doc("a")), "_news/b.md": render(make_doc("b"))})
    run([site], db_url, workers=1, source="site")
    edited = make_doc("a")
    edited["provider"] = make_doc("b")["provider"]  # a.example.com: referenced by nothing
    edited["related"][0]["title"] = "Related a, renamed"
    write_tree(site, {"_news/a.md": render(edited)})

    def stop(*_: Any) -> None:
        raise RuntimeError("stopped before its end")

    monkeypatch.setattr("etl.runner.pipeline.refresh_stubs", stop)
    with pytest.raises(RuntimeError, match="before its end"):
        run([site], db_url, workers=1, source="site")
    monkeypatch.undo()
    orphan = select(providers.c.id).where(providers.c.domain == "a.example.com")
    assert fetch(db_url, orphan) != []  # what the stopped run left
    dirty = select(articles.c.id).where(articles.c.is_stub, articles.c.fingerprint.is_(None))
    assert fetch(db_url, dirty) != []
    summary = run([site], db_url, workers=1, source="site")
    assert summary.files_skipped_unchanged == 2
    assert fetch(db_url, orphan) == []
    assert fetch(db_url, dirty) == []
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "site")])


PROVIDER = re.compile(r"^provider:\n  name: (.*)\n  domain: (.*)$", re.M)
TOPICS = re.compile(r"^topics:\n((?:  - .*\n)+)", re.M)
IMAGE = re.compile(r'^images:\n  - url: "([^"\n]+)"\n    width: (\d+)\n    height: (\d+)$', re.M)


@pytest.mark.corpus
def test_corpus_site_wide_renames_recases_and_resizes(
    db_url: str, corpus_root: Path, tmp_path: Path
) -> None:
    """On the shared corpus: 10 providers renamed in every document of theirs, 3 topics
    re-cased in every document, 20 images halved in every document that shows them."""
    site = tmp_path / "azure"
    shutil.copytree(corpus_root / "_data", site / "_data")
    (site / "_news").mkdir()
    texts = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted((corpus_root / "_news").glob("*.md"))[:800]
    }
    write_tree(site, {f"_news/{name}": text.encode() for name, text in texts.items()})
    run([site], db_url, source="azure")

    domains = Counter(m[2] for text in texts.values() for m in PROVIDER.finditer(text))
    renamed = {domain for domain, _ in domains.most_common(10)}
    topic_names = Counter(
        line[4:]
        for text in texts.values()
        for m in TOPICS.finditer(text)
        for line in m[1].splitlines()
        if re.fullmatch(r"  - [A-Za-z][A-Za-z ]*", line)
    )
    recased = {name for name, _ in topic_names.most_common(3)}
    shown = Counter(m[1] for text in texts.values() for m in IMAGE.finditer(text))
    resized = {url for url, _ in shown.most_common(20)}
    assert (len(renamed), len(recased), len(resized)) == (10, 3, 20)

    def rename(m: re.Match[str]) -> str:
        if m[2] not in renamed:
            return m[0]
        name = f"{yaml.safe_load(m[1])} Newsroom"
        return f"provider:\n  name: {json.dumps(name)}\n  domain: {m[2]}"

    def recase(m: re.Match[str]) -> str:
        lines = [
            f"  - {line[4:].swapcase()}" if line[4:] in recased else line
            for line in m[1].splitlines()
        ]
        return "topics:\n" + "".join(f"{line}\n" for line in lines)

    def halve(m: re.Match[str]) -> str:
        if m[1] not in resized:
            return m[0]
        return (
            f'images:\n  - url: "{m[1]}"\n    width: {int(m[2]) // 2}\n    height: {int(m[3]) // 2}'
        )

    edited = {
        name: IMAGE.sub(halve, TOPICS.sub(recase, PROVIDER.sub(rename, text)))
        for name, text in texts.items()
    }
    changed = {name: text.encode() for name, text in edited.items() if text != texts[name]}
    write_tree(site, {f"_news/{name}": data for name, data in changed.items()})
    summary = run([site], db_url, source="azure")
    assert summary.articles_updated > 0
    document_names = fetch(
        db_url, select(providers.c.document_name).where(providers.c.domain.in_(renamed))
    )
    assert all(name.endswith(" Newsroom") for (name,) in document_names), document_names
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "azure")])


def test_an_upgraded_database_is_exact_after_its_next_run(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0011 backfills what each row said with the aggregates of the time, which
    differ from what the files say; the next plain run reads every file again (0011
    cleared the stamps) and, under the new rules, writes them exact."""
    from alembic.script import ScriptDirectory

    from etl.db import database

    site = tmp_path / "site"
    write_tree(
        site,
        {
            "_news/a.md": doc("a", provider="Beta", topic="DEVOPS", size=400),
            "_news/b.md": doc("b", provider="Alpha", topic="DevOps", size=800),
        },
    )
    run([site], db_url, workers=1, source="site")
    previous = ScriptDirectory.from_config(database.alembic_config()).get_revision("0011")
    engine = database.make_engine(db_url)
    try:
        database.downgrade(engine, str(previous.down_revision))
        database.upgrade(engine)
    finally:
        engine.dispose()
    # Rules newer than the database's (as for a database loaded before 0011).
    monkeypatch.setattr("etl.records.RULES_VERSION", "next")
    expected = fresh(tmp_path, [(site, "site")])
    said = select(articles.c.provider_name).where(articles.c.url == url_for("a"))
    assert fetch(db_url, said) == [("Alpha",)]  # the backfill: the aggregate of the time
    run([site], db_url, workers=1, source="site")
    assert fetch(db_url, said) == [("Beta",)]
    assert live_snapshot(db_url) == expected
