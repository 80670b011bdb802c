"""Sources: the database is a function of the files that exist now.

Pure rules (which source a PATH belongs to, what --prune may consider) are tested
with tables of cases; then histories of edits, renames, URL changes, re-dated and
deleted duplicate winners, cross-site duplicates and prunes are replayed on every
backend and compared with a fresh load of the final trees (tombstones aside).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from etl import run
from etl.db.database import ConfigurationError
from etl.db.schema import articles, etl_runs, source_files, sources
from etl.extract.sources import SourceError, SourceSpec, default_name, discover_source, in_scope
from etl.extract.sources import plan_sources as plan
from tests.helpers import fetch, make_doc, render, url_for, write_tree
from tests.snapshots import Held, as_of, held, net_change, snapshot
from tests.snapshots import live_snapshot as live

# --- pure rules ------------------------------------------------------------------------


def _tree(root: Path, *files: str) -> Path:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\ntitle: x\n---\n", encoding="utf-8")
    return root


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "site",
        "_news/2021/a.md",
        "_news/b.md",
        "_data/organizations/x.com.md",
        "README.md",
    )


@pytest.mark.parametrize(
    ("given", "root", "scopes"),
    [
        ("site", "site", ("",)),
        ("site/_news", "site", ("_news/",)),
        ("site/_news/2021", "site", ("_news/2021/",)),
        ("site/_news/b.md", "site", ("_news/b.md",)),
        ("plain", "plain", ("",)),
        ("plain/sub", "plain/sub", ("",)),
        ("plain/c.md", "plain", ("c.md",)),
    ],
)
def test_a_path_belongs_to_the_source_of_its_root(
    site: Path, tmp_path: Path, given: str, root: str, scopes: tuple[str, ...]
) -> None:
    _tree(tmp_path / "plain", "c.md", "sub/d.md")
    [spec] = plan([tmp_path / given], None, {})
    assert spec.root == str((tmp_path / root).resolve())
    assert spec.name == default_name(spec.root)
    assert spec.scopes == scopes
    assert spec.site == (root == "site")


def test_a_subdirectory_finds_the_same_keys_as_its_site(site: Path) -> None:
    [whole] = plan([site], None, {})
    [part] = plan([site / "_news" / "2021"], None, {})
    assert [f.key for f in discover_source(whole)] == ["_news/2021/a.md", "_news/b.md"]
    assert [f.key for f in discover_source(part)] == ["_news/2021/a.md"]
    assert whole.name == part.name


def test_nothing_under_data_is_a_document(site: Path) -> None:
    [spec] = plan([site / "_data"], None, {})
    assert discover_source(spec) == []
    assert not in_scope("_data/organizations/x.com.md", spec)


@pytest.mark.parametrize(
    ("key", "scopes", "site", "inside"),
    [
        ("_news/a.md", ("",), True, True),
        ("README.md", ("",), True, False),
        ("_news/2021/a.md", ("_news/2021/",), True, True),
        ("_news/2021x/a.md", ("_news/2021/",), True, False),
        ("_news/b.md", ("_news/b.md",), True, True),
        ("a.md", ("",), False, True),
        ("sub/a.md", ("sub/",), False, True),
        ("other/a.md", ("sub/",), False, False),
    ],
)
def test_what_prune_may_consider(
    key: str, scopes: tuple[str, ...], site: bool, inside: bool
) -> None:
    assert in_scope(key, SourceSpec("s", "/r", site, scopes)) is inside


def test_a_named_source_keeps_its_root_for_paths_under_it(site: Path) -> None:
    known = {"azure": str(site.resolve())}
    [spec] = plan([site / "_news" / "2021"], "azure", known)
    assert (spec.name, spec.root, spec.scopes) == ("azure", str(site.resolve()), ("_news/2021/",))


def test_a_named_source_that_moved_takes_its_new_root(site: Path, tmp_path: Path) -> None:
    moved = tmp_path / "checkout"
    shutil.copytree(site, moved)
    [spec] = plan([moved], "azure", {"azure": str(site.resolve())})
    assert spec.root == str(moved.resolve())


def test_without_a_name_a_known_root_keeps_its_source(site: Path) -> None:
    [spec] = plan([site], None, {"azure": str(site.resolve())})
    assert spec.name == "azure"


def test_one_source_cannot_span_two_trees(site: Path, tmp_path: Path) -> None:
    other = _tree(tmp_path / "other", "x.md")
    with pytest.raises(SourceError, match="different trees"):
        plan([site, other], "azure", {})
    assert len(plan([site, other], None, {})) == 2


def test_long_roots_get_short_distinct_names() -> None:
    a, b = "/" + "a" * 300, "/" + "a" * 299 + "b"
    assert len(default_name(a)) <= 255 and default_name(a) != default_name(b)


# --- histories against a fresh load ----------------------------------------------------


def doc(
    tag: str, *, url: str | None = None, date: str = "2021-06-01T00:00:00Z", **fields: Any
) -> bytes:
    front = make_doc(tag)
    if url is not None:
        front["webUrl"] = front["originalUrl"] = url_for(url)
    front["publishedDateTime"] = date
    front.update(fields)
    return render(front)


def fresh(tmp_path: Path, roots: list[tuple[list[Path], str | None]]) -> dict[str, Any]:
    reference = f"sqlite:///{tmp_path / f'fresh-{len(list(tmp_path.iterdir()))}.sqlite3'}"
    for paths, name in roots:
        run(paths, reference, workers=1, source=name)
    return live(reference)


def test_edits_renames_and_url_changes_end_as_a_fresh_load(db_url: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_tree(site, {f"_news/{t}.md": doc(t) for t in ("a", "b", "c", "d")})
    run([site], db_url, workers=1)
    write_tree(
        site,
        {
            "_news/a.md": doc("a", title="Edited"),  # an edit
            "_news/b.md": None,  # a rename: same document, new path
            "_news/b-renamed.md": doc("b"),
            "_news/c.md": doc("c", url="moved"),  # a URL change, without --prune
        },
    )
    second = run([site], db_url, workers=1)
    assert second.articles_inserted == 1  # c's new URL
    assert live(db_url) != fresh(tmp_path, [([site], None)])  # b.md is still recorded
    run([site], db_url, workers=1, prune=True)
    assert live(db_url) == fresh(tmp_path, [([site], None)])
    old_c = url_for("c")
    assert fetch(db_url, select(articles.c.is_removed).where(articles.c.url == old_c)) == [
        (True,)
    ], "c's old URL, which nothing links to, stays as a tombstone"


@pytest.mark.parametrize("change", ["re-dated", "deleted", "moved"])
def test_a_duplicate_winner_that_loses_hands_over(db_url: str, tmp_path: Path, change: str) -> None:
    site = tmp_path / "site"
    write_tree(
        site,
        {
            "_news/early.md": doc("early", url="same", date="2020-01-01T00:00:00Z"),
            "_news/late.md": doc("late", url="same", date="2021-01-01T00:00:00Z"),
        },
    )
    run([site], db_url, workers=1)
    title = fetch(db_url, select(articles.c.title).where(articles.c.url == url_for("same")))
    assert title == [("Title late",)]
    if change == "re-dated":
        write_tree(site, {"_news/late.md": doc("late", url="same", date="2019-01-01T00:00:00Z")})
    elif change == "deleted":
        write_tree(site, {"_news/late.md": None})
    else:
        write_tree(site, {"_news/late.md": doc("late", url="elsewhere")})
    run([site], db_url, workers=1, prune=True, max_prune=1)
    title = fetch(db_url, select(articles.c.title).where(articles.c.url == url_for("same")))
    assert title == [("Title early",)]
    assert live(db_url) == fresh(tmp_path, [([site], None)])


def test_the_loser_takes_over_even_when_only_the_winner_is_in_the_run(
    db_url: str, tmp_path: Path
) -> None:
    """The losing file is not in this run's PATHS: it is read again from its source."""
    site = tmp_path / "site"
    write_tree(
        site,
        {
            "_news/2020/early.md": doc("early", url="same", date="2020-01-01T00:00:00Z"),
            "_news/2021/late.md": doc("late", url="same", date="2021-01-01T00:00:00Z"),
        },
    )
    run([site], db_url, workers=1)
    write_tree(site, {"_news/2021/late.md": doc("late", url="same", date="2019-01-01T00:00:00Z")})
    run([site / "_news" / "2021"], db_url, workers=1)
    assert live(db_url) == fresh(tmp_path, [([site], None)])


def test_cross_site_duplicates_are_one_article(db_url: str, tmp_path: Path) -> None:
    azure, ai = tmp_path / "azure", tmp_path / "ai"
    same_day = "2021-01-01T00:00:00Z"
    write_tree(
        azure, {"_news/x.md": doc("azure", url="shared", date=same_day), "_news/y.md": doc("y")}
    )
    write_tree(ai, {"_news/x.md": doc("ai", url="shared", date=same_day), "_news/z.md": doc("z")})
    run([azure], db_url, workers=1, source="azure")
    run([ai], db_url, workers=1, source="ai")
    # Same date and path: the greater source name wins, whatever the load order.
    title = fetch(db_url, select(articles.c.title).where(articles.c.url == url_for("shared")))
    assert title == [("Title azure",)]
    carried = fetch(
        db_url,
        select(sources.c.name)
        .join(source_files, source_files.c.source_id == sources.c.id)
        .join(articles, articles.c.id == source_files.c.article_id)
        .where(articles.c.url == url_for("shared"))
        .order_by(sources.c.name),
    )
    assert [row[0] for row in carried] == ["ai", "azure"]
    reverse = fresh(tmp_path, [([ai], "ai"), ([azure], "azure")])
    assert live(db_url) == reverse
    # Azure drops the article; the AI site's file takes over.
    write_tree(azure, {"_news/x.md": None})
    run([azure], db_url, workers=1, source="azure", prune=True, max_prune=1)
    title = fetch(db_url, select(articles.c.title).where(articles.c.url == url_for("shared")))
    assert title == [("Title ai",)]
    assert live(db_url) == fresh(tmp_path, [([azure], "azure"), ([ai], "ai")])


def test_one_site_pruned_leaves_the_other_alone(db_url: str, tmp_path: Path) -> None:
    """The problem this issue started from: site B with --prune removed all of site A."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_tree(a, {f"_news/a{i}.md": doc(f"a{i}") for i in range(4)})
    write_tree(b, {f"_news/b{i}.md": doc(f"b{i}") for i in range(4)})
    run([a], db_url, workers=1)
    summary = run([b], db_url, workers=1, prune=True)
    assert summary.articles_removed == 0
    removed = fetch(db_url, select(func.count()).where(articles.c.is_removed))
    assert removed == [(0,)]


def test_same_file_names_in_two_sites_are_two_files(db_url: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_tree(a, {"_news/same.md": doc("a")})
    write_tree(b, {"_news/same.md": doc("b")})
    run([a], db_url, workers=1)
    run([b], db_url, workers=1)
    assert fetch(db_url, select(func.count()).select_from(source_files)) == [(2,)]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda site: shutil.rmtree(site / "_news" / "2021"), "every file"),
        (lambda site: [p.unlink() for p in (site / "_news" / "2021").glob("*[0-2].md")], "--max"),
    ],
    ids=["all-of-a-source", "over-max-prune"],
)
def test_prune_refuses_and_changes_nothing(
    db_url: str, tmp_path: Path, make: Callable[[Path], Any], message: str
) -> None:
    site = tmp_path / "site"
    write_tree(site, {f"_news/2021/{i}.md": doc(f"n{i}") for i in range(5)})
    run([site], db_url, workers=1)
    before, runs_before = snapshot(db_url), fetch(db_url, select(func.count(etl_runs.c.id)))
    make(site)
    (site / "_news" / "2021").mkdir(exist_ok=True)
    with pytest.raises(ConfigurationError, match=message):
        run([site], db_url, workers=1, prune=True, max_prune=0.5)
    assert snapshot(db_url) == before
    assert fetch(db_url, select(func.count(etl_runs.c.id))) == runs_before


def test_prune_of_a_missing_directory_is_a_usage_error(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such file"):
        run([tmp_path / "nowhere"], db_url, prune=True)


def test_a_moved_checkout_keeps_its_state(db_url: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_tree(site, {f"_news/{i}.md": doc(f"m{i}") for i in range(3)})
    run([site], db_url, workers=1, source="azure")
    moved = tmp_path / "checkout"
    shutil.copytree(site, moved)
    again = run([moved], db_url, workers=1, source="azure", prune=True)
    # The copy has new mtimes: read and hashed, but nothing is written again.
    assert (again.articles_inserted, again.articles_updated, again.articles_removed) == (0, 0, 0)
    assert fetch(db_url, select(sources.c.root)) == [(str(moved.resolve()),)]


def test_counts_add_up_to_the_tables_however_batched(db_url: str, tmp_path: Path) -> None:
    """Each transaction counts what it changed: how the files fall into batches changes
    the counts, never what they add up to, and every file loaded is accounted for."""
    site = tmp_path / "site"
    files = {f"_news/{i:02}.md": doc(f"k{i}", url=f"u{i % 7}") for i in range(20)}
    write_tree(site, files)
    one = run([site], db_url, workers=1, batch_size=1)
    assert net_change([one]) == held(db_url) == Held(7, 7, 7)
    # One file a transaction: each file that wins its URL so far rewrites the article.
    assert (one.articles_inserted, one.articles_updated + one.duplicates) == (7, 13)
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    whole = run([site], other, workers=1, batch_size=500)
    assert net_change([whole]) == net_change([one])
    assert (whole.articles_inserted, whole.articles_updated, whole.duplicates) == (7, 0, 13)
    for summary in (one, whole):
        loaded = summary.files_seen - summary.files_skipped_unchanged
        accounted = (
            summary.articles_inserted
            + summary.articles_updated
            + summary.articles_unchanged
            + summary.duplicates
        )
        assert accounted == loaded == 20


def test_a_stub_filled_later_in_the_run_is_a_stub_deleted(db_url: str, tmp_path: Path) -> None:
    """A link target whose document comes in a later transaction: that transaction
    deletes the stub and inserts the article, so the counts still add up to no stub."""
    site = tmp_path / "site"
    first = make_doc("first")
    first["related"][0]["webUrl"] = url_for("second")
    second = make_doc("second")
    second["related"] = []
    write_tree(site, {"_news/1.md": render(first), "_news/2.md": render(second)})
    summary = run([site], db_url, workers=1, batch_size=1)
    assert (summary.stubs_created, summary.stubs_deleted) == (1, 1)
    assert summary.articles_inserted == 2
    together = run([site], f"sqlite:///{tmp_path / 'b.sqlite3'}", workers=1, batch_size=2)
    assert (together.stubs_created, together.stubs_deleted) == (0, 0)


@pytest.mark.corpus
def test_corpus_history_ends_as_a_fresh_load(
    db_url: str, corpus_root: Path, tmp_path: Path
) -> None:
    """The shared corpus as a site root: every duplicate group's winner re-dated or
    deleted, files renamed and moved to other URLs, a second site sharing articles."""
    site = tmp_path / "azure"
    shutil.copytree(corpus_root / "_data", site / "_data")
    news = site / "_news"
    news.mkdir()
    groups: dict[str, list[Path]] = {}
    every = sorted((corpus_root / "_news").glob("*.md"))
    for path in every:
        match = re.search(r"^webUrl: *'?\"?([^'\"\n]+)", path.read_text(encoding="utf-8"), re.M)
        assert match, path
        groups.setdefault(match[1].strip().rstrip("/").replace("://www.", "://"), []).append(path)
    duplicated = [paths for paths in groups.values() if len(paths) > 1]
    assert len(duplicated) >= 13
    chosen = {p for paths in duplicated for p in paths} | set(every[:600])
    for path in chosen:
        shutil.copy(path, news / path.name)
    run([site], db_url, source="azure")

    def winner(paths: list[Path]) -> Path:
        return max(paths, key=lambda p: (_date(news / p.name), p.name))

    for index, paths in enumerate(duplicated):
        top = news / winner(paths).name
        if index % 2:
            top.unlink()
        else:
            text = top.read_text(encoding="utf-8")
            top.write_text(
                re.sub(
                    r"^publishedDateTime:.*$", "publishedDateTime: 1990-01-01", text, flags=re.M
                ),
                encoding="utf-8",
            )
    plain = sorted(news.glob("*.md"))[-10:]
    for path in plain[:5]:  # renamed
        path.rename(path.with_name("renamed-" + path.name))
    for path in plain[5:]:  # moved to another URL
        text = path.read_text(encoding="utf-8")
        path.write_text(
            re.sub(r"^webUrl: *", "webUrl: https://moved.example.com/x", text, count=1, flags=re.M),
            encoding="utf-8",
        )
    other = tmp_path / "ai"
    (other / "_news").mkdir(parents=True)
    for path in sorted(news.glob("*.md"))[:40]:
        shutil.copy(path, other / "_news" / path.name)
    run([site], db_url, source="azure", prune=True)
    run([other], db_url, source="ai")
    for path in sorted((other / "_news").glob("*.md"))[1:]:  # the AI site drops all but one
        path.unlink()
    shutil.copy(sorted(news.glob("*.md"))[50], other / "_news" / "added.md")
    run([other], db_url, source="ai", prune=True, max_prune=1)
    assert live(db_url) == fresh(tmp_path, [([site], "azure"), ([other], "ai")])


def _date(path: Path) -> str:
    match = re.search(r"^publishedDateTime: *'?\"?([^'\"\n]*)", path.read_text("utf-8"), re.M)
    return match[1] if match else ""


def test_state_from_before_sources_is_adopted_by_the_first_source(
    db_url: str, tmp_path: Path
) -> None:
    """Files recorded before migration 0005 belong to the `legacy` source; the first run
    whose source is new adopts it and writes nothing. (It reads every file once: 0011
    clears the stored stamps so that each row takes what its file says.)"""
    from etl.db import database

    site = tmp_path / "site"
    write_tree(site, {f"_news/{i}.md": doc(f"l{i}") for i in range(3)})
    run([site], db_url, workers=1)
    before = snapshot(db_url)
    engine = database.make_engine(db_url)
    try:
        database.downgrade(engine, "0004")
        database.upgrade(engine)
    finally:
        engine.dispose()
    assert fetch(db_url, select(sources.c.name, sources.c.root)) == [("legacy", "")]
    again = run([site], db_url, workers=1)
    assert (again.articles_inserted, again.articles_updated, again.articles_unchanged) == (0, 0, 3)
    assert fetch(db_url, select(sources.c.name)) == [(default_name(str(site.resolve())),)]
    assert snapshot(db_url) == before


def test_downgrading_sources_keeps_every_row(db_url: str, tmp_path: Path) -> None:
    """Migration 0005 and back: SQLite must not copy a parent table (ON DELETE CASCADE
    would empty its children), every backend keeps the runs' rejected documents."""
    from etl.db import database
    from etl.db.schema import rejected_documents

    site = tmp_path / "site"
    write_tree(site, {"_news/good.md": doc("g"), "_news/bad.md": b"---\ntitle: [\n---\n"})
    run([site], db_url, workers=1)
    before = snapshot(db_url)
    engine = database.make_engine(db_url)
    try:
        database.downgrade(engine, "0004")
        older = snapshot(db_url)
        assert older == as_of(before, older)
        assert fetch(db_url, select(func.count()).select_from(rejected_documents)) == [(1,)]
    finally:
        engine.dispose()
