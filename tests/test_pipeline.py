"""End-to-end: documents into real databases, on every backend.

The whole-corpus tests derive their expected counts from the raw documents and
the (separately unit-tested) identity rules, not from the loader's own output.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml_rs

from etl import run
from etl.extract.extract import split_front_matter
from etl.records import winner_key
from etl.transform.transform import canonical_url, normalize_domain, topic_slug
from tests.helpers import SEEDS, make_database
from tests.snapshots import LoadedCorpus, counts, records, snapshot


def _expected(paths: list[Path]) -> dict[str, int]:
    """Counts the rules predict for a set of files, derived from their raw YAML."""
    winners: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for path in paths:
        text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
        front_matter, _, _ = split_front_matter(text)
        doc = yaml_rs.loads(front_matter)
        assert isinstance(doc, dict), path
        url = canonical_url(doc.get("webUrl") or doc["originalUrl"])
        key = winner_key(doc.get("publishedDateTime"), path.name)
        if url not in winners or key > winners[url][0]:
            winners[url] = (key, doc)
    links = 0
    targets: set[str] = set()
    slugs: set[str] = set()
    domains: set[str] = set()
    for url, (_, doc) in winners.items():
        domains.add(normalize_domain(doc["provider"]["domain"]))
        slugs.update(topic_slug(t) for t in doc.get("topics") or [])
        mine = {canonical_url(r["webUrl"]) for r in doc.get("related") or []} - {url}
        links += len(mine)
        targets |= mine
    # A site root's organization files declare providers, with or without articles.
    declared: set[str] = set()
    for folder in {path.parent for path in paths}:
        if folder.name == "_news":
            for organization in (folder.parent / "_data" / "organizations").glob("*.md"):
                data = yaml_rs.loads(split_front_matter(organization.read_text("utf-8"))[0])
                assert isinstance(data, dict), organization
                declared.add(normalize_domain(data["domain"]))
    stubs = targets - winners.keys()
    return {
        "articles": len(winners) + len(stubs),
        "stubs": len(stubs),
        "related_articles": links,
        "topics": len(slugs),
        "source_files": len(paths),
        "document_providers": len(domains | declared),
    }


def _check_counts(url: str, expected: dict[str, int]) -> None:
    actual = counts(url)
    for name in ("articles", "stubs", "related_articles", "topics", "source_files"):
        assert actual[name] == expected[name], name
    # Stubs may add providers that only snippets name; documents' providers are all there.
    assert actual["providers"] >= expected["document_providers"]
    if expected["stubs"] == 0:
        assert actual["providers"] == expected["document_providers"]


def test_seeds_load_and_rerun_changes_nothing(db_url: str) -> None:
    first = run([SEEDS], db_url)
    assert first.status == "succeeded"
    assert first.duplicates == 2  # two re-published articles (one differs only by www.)
    assert first.articles_inserted + first.duplicates == first.files_seen
    assert first.documents_rejected == 0
    assert first.files_seen == len(list(SEEDS.glob("*.md")))
    _check_counts(db_url, _expected(sorted(SEEDS.glob("*.md"))))
    before = snapshot(db_url)

    again = run([SEEDS], db_url)
    assert again.files_skipped_unchanged == again.files_seen
    assert (again.articles_inserted, again.articles_updated, again.links_written) == (0, 0, 0)
    assert snapshot(db_url) == before

    refreshed = run([SEEDS], db_url, full_refresh=True)
    assert refreshed.files_skipped_unchanged == 0
    assert refreshed.articles_unchanged == first.articles_inserted
    assert (refreshed.articles_inserted, refreshed.articles_updated) == (0, 0)
    assert snapshot(db_url) == before


def test_seeds_show_stubs_duplicates_and_provider_variants(sqlite_url: str) -> None:
    summary = run([SEEDS], sqlite_url)
    assert summary.stubs_created > 0
    data = snapshot(sqlite_url)
    canonical = [row["canonical_url"] for row in records(data, "source_files")]
    assert len(canonical) > len(set(canonical)), "two files share a canonical URL"
    assert any(
        (row["domain"], row["name"], row["named_by_document"])
        == ("morningstar.com", "Morningstar, Inc.", True)
        for row in records(data, "providers")
    )
    assert any(row["is_stub"] for row in records(data, "articles")), "a stub"


def test_document_update_replaces_its_sets(db_url: str, tmp_path: Path) -> None:
    source = tmp_path / "news"
    shutil.copytree(SEEDS, source)
    run([source], db_url)
    seed = source / "000_af0cddeac82c129c.md"
    text = seed.read_text(encoding="utf-8")
    text = text.replace("  - AWS AI\n  - AI\n  - Computer Vision\n", "  - Robotics\n")
    text = text.replace('title: "Amazon heads off', 'title: "Updated: Amazon heads off')
    seed.write_text(text, encoding="utf-8")

    summary = run([source], db_url)
    assert summary.articles_updated == 1
    assert summary.files_skipped_unchanged == summary.files_seen - 1
    data = snapshot(db_url)
    url = "https://bbc.com/news/technology-48339142"
    assert [r["topic_id"] for r in records(data, "article_topics") if r["article_id"] == url] == [
        "robotics"
    ]
    assert any(
        row["url"] == url and row["title"].startswith("Updated:")
        for row in records(data, "articles")
    )
    # Topics no document uses any more are gone.
    assert "computer-vision" not in {slug for slug, _ in data["topics"]}


def test_stub_becomes_full_article_in_place(db_url: str, tmp_path: Path) -> None:
    target = "2020-04-18-judge-hits-pause-on-jedi-lawsuit.md"
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    for path in SEEDS.glob("*.md"):
        shutil.copy(path, (second_dir if path.name == target else first_dir) / path.name)
    run([first_dir], db_url)
    stub_rows = [r for r in records(snapshot(db_url), "articles") if r["is_stub"]]
    assert stub_rows
    run([second_dir], db_url)
    combined = tmp_path / "all"
    shutil.copytree(SEEDS, combined)
    reference = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    run([combined], reference)
    # The same files, in two sources here and in one there.
    assert snapshot(db_url, with_sources=False) == snapshot(reference, with_sources=False)


def test_unreferenced_stub_is_deleted(sqlite_url: str, tmp_path: Path) -> None:
    source = tmp_path / "news"
    source.mkdir()
    seed = source / "seed.md"
    shutil.copy(SEEDS / "000_af0cddeac82c129c.md", seed)
    run([source], sqlite_url)
    assert counts(sqlite_url)["stubs"] == 1
    text = seed.read_text(encoding="utf-8")
    seed.write_text(text.split("related:")[0] + "secured: x\n---\n", encoding="utf-8")
    summary = run([source], sqlite_url)
    assert summary.stubs_deleted == 1
    assert counts(sqlite_url)["stubs"] == 0
    assert counts(sqlite_url)["related_articles"] == 0


def test_stubs_rebuilt_in_small_blocks_equal_one_block(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stubs are rebuilt (and deleted) a block at a time; block size changes nothing."""
    reference = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    run([SEEDS], reference, workers=1)
    monkeypatch.setattr("etl.load.stubs.STUB_BLOCK", 3)
    summary = run([SEEDS], db_url, workers=1)
    assert summary.stubs_created > 3 * 10  # many blocks
    assert snapshot(db_url) == snapshot(reference)
    # Dropping every related list leaves every stub unreferenced: all deleted, in blocks.
    source = tmp_path / "news"
    shutil.copytree(SEEDS, source)
    for path in source.glob("*.md"):
        text = path.read_text(encoding="utf-8")
        if "related:" in text:
            path.write_text(text.split("related:")[0] + "secured: x\n---\n", encoding="utf-8")
    # The same source, checked out elsewhere.
    after = run([source], db_url, workers=1, source=str(SEEDS.resolve()))
    assert after.stubs_deleted == summary.stubs_created
    assert counts(db_url)["stubs"] == 0


@pytest.fixture(scope="module")
def corpus_expected(corpus_news: Path) -> dict[str, int]:
    """The counts the rules predict for the corpus (the same for every backend)."""
    return _expected(sorted(corpus_news.glob("*.md")))


@pytest.mark.corpus
def test_corpus_counts_rerun_and_shuffled_split(
    loaded_corpus: LoadedCorpus, corpus_expected: dict[str, int], corpus_news: Path, tmp_path: Path
) -> None:
    files = sorted(corpus_news.glob("*.md"))
    expected = corpus_expected
    assert expected["articles"] == 4943  # the shared README's measured fact
    assert expected["stubs"] == 0

    # The session's load of the corpus into a fresh database (conftest's corpus_loads).
    summary, url, full = loaded_corpus.summary, loaded_corpus.url, loaded_corpus.snapshot
    assert summary.documents_rejected == 0
    assert summary.articles_inserted == 4943
    # Every file is accounted for: 15 files repeat a canonical URL (shared README).
    assert summary.articles_updated + summary.duplicates == len(files) - 4943
    _check_counts(url, expected)

    rerun = run([corpus_news], url)
    assert rerun.files_skipped_unchanged == len(files)
    assert snapshot(url) == full

    # Another database, loaded in a random split across two runs with small batches:
    # the files are given one by one, so both runs are of the same source (the site).
    rng = random.Random(20211)
    shuffled = files[:]
    rng.shuffle(shuffled)
    cut = rng.randrange(len(files) // 4, 3 * len(files) // 4)
    generator = make_database(loaded_corpus.backend, tmp_path)
    split_url = next(generator)
    try:
        run(shuffled[cut:], split_url, batch_size=97)
        run(shuffled[:cut], split_url, batch_size=311)
        assert snapshot(split_url) == full
    finally:
        generator.close()


def test_long_and_case_distinct_urls(db_url: str, tmp_path: Path) -> None:
    """URLs over 2,000 characters load; URLs differing only in path case stay distinct."""
    seed = (SEEDS / "000_af0cddeac82c129c.md").read_text(encoding="utf-8")
    base = "https://www.bbc.com/news/technology-48339142"
    long_path = "https://example.com/" + "a" * 2500
    source = tmp_path / "news"
    source.mkdir()
    for name, url in (
        ("long.md", long_path),
        ("upper.md", base + "/ABC"),
        ("lower.md", base + "/abc"),
    ):
        (source / name).write_text(seed.replace(base + '"', url + '"'), encoding="utf-8")
    summary = run([source], db_url)
    assert summary.documents_rejected == 0, summary.rejected
    urls = {row[0] for row in snapshot(db_url)["articles"]}
    assert long_path in urls
    assert {
        "https://bbc.com/news/technology-48339142/ABC",
        "https://bbc.com/news/technology-48339142/abc",
    } <= urls


@pytest.mark.corpus
def test_same_final_state_on_every_backend(corpus_news: Path, tmp_path: Path) -> None:
    """SQLite, PostgreSQL and MariaDB end in the same state from the same input.

    Seeds plus every 7th corpus document: stubs, duplicates and links included.
    """
    source = tmp_path / "news"
    shutil.copytree(SEEDS, source)
    for path in sorted(corpus_news.glob("*.md"))[::7]:
        target = source / path.name
        if not target.exists():
            target.symlink_to(path)
    snapshots = {}
    for backend in ("sqlite", "postgresql", "mariadb"):
        databases = make_database(backend, tmp_path)
        url = next(databases)
        try:
            summary = run([source], url)
            assert summary.documents_rejected == 0
            snapshots[backend] = snapshot(url)
        finally:
            databases.close()
    assert snapshots["sqlite"]["articles"], "something was loaded"
    assert snapshots["postgresql"] == snapshots["sqlite"]
    assert snapshots["mariadb"] == snapshots["sqlite"]
