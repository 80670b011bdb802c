"""Site taxonomies, loaded: `_data/topics` and `_data/organizations` of a Jekyll site root.

The tables they fill are checked on every backend after histories of taxonomy edits,
against a fresh load of the final trees. The parsing rules are tested with tables of cases
in ``tests/test_taxonomy_rules.py``; the sites the tests build, and the queries of those
tables, are in ``tests/sites.py``. The shared corpus's taxonomy is checked in
test_recipes.py, on the database that module loads once per backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import etl
from etl import run
from etl.db.schema import (
    images,
    providers,
    rejected_documents,
    source_providers,
    source_topics,
    sources,
    topics,
)
from etl.runner.pipeline import INLINE_BELOW
from tests.helpers import fetch, render, url_for, write_tree
from tests.sites import (
    fresh,
    hierarchy,
    logos,
    make_site,
    news,
    organization_file,
    provider,
    topic_file,
)
from tests.snapshots import live_snapshot


def test_a_site_root_loads_its_taxonomy(db_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "azure")
    summary = run([site], db_url, workers=1, source="azure")
    assert (summary.status, summary.documents_rejected, summary.articles_inserted) == (
        "succeeded",
        0,
        2,
    )
    assert hierarchy(db_url, "azure") == {"Azure": None, "AI": "Azure"}
    row = fetch(
        db_url,
        select(source_topics.c.position, source_topics.c.keywords, source_topics.c.file).order_by(
            source_topics.c.position
        ),
    )
    assert [(r.position, r.keywords, r.file) for r in row] == [
        (0, ["azure"], "_data/topics/00-azure.yaml"),
        (2, [], "_data/topics/02-ai.yaml"),
    ]
    # The declared name beats the documents'; the documents' is kept beside it.
    assert provider(db_url, "pcworld.com") == ("PCWorld", "PC World", True)
    assert provider(db_url, "wsj.com") == ("Wall Street Journal", "Wall Street Journal", False)
    assert logos(db_url, "pcworld.com") == ["/assets/pcworld-50.jpg"]
    assert logos(db_url, "wsj.com") == [url_for("b", "logo.png")]
    # Declared with no articles: it stays while declared.
    assert provider(db_url, "quiet.com") == ("Quiet", None, True)
    # Nothing under _data is a document.
    assert fetch(db_url, select(rejected_documents.c.source_path)) == []


def test_an_unchanged_taxonomy_is_not_read_again(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path / "azure")
    run([site], db_url, workers=1)

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the taxonomy was read again")

    monkeypatch.setattr(etl.transform.taxonomy, "read_taxonomy", fail)
    summary = run([site], db_url, workers=1)
    assert summary.files_skipped_unchanged == 2
    monkeypatch.undo()
    write_tree(site, {"_data/topics/02-ai.yaml": topic_file("AI")})  # AI becomes a root
    run([site], db_url, workers=1)
    assert hierarchy(db_url, str(site.resolve())) == {"Azure": None, "AI": None}


def test_taxonomy_history_ends_as_a_fresh_load(db_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "azure")
    run([site], db_url, workers=1, source="azure")
    write_tree(
        site,
        {
            # WSJ gets declared, PCWorld withdrawn, a topic re-parented and one dropped.
            "_data/organizations/wsj.com.md": organization_file("wsj.com", "WSJ", "/wsj.png"),
            "_data/organizations/pcworld.com.md": None,
            "_data/topics/02-ai.yaml": topic_file("AI", "Cloud"),
            "_data/topics/00-azure.yaml": None,
            "_data/topics/01-cloud.yaml": topic_file("Cloud"),
        },
    )
    run([site], db_url, workers=1, source="azure")
    assert provider(db_url, "wsj.com") == ("WSJ", "Wall Street Journal", True)
    assert logos(db_url, "wsj.com") == ["/wsj.png"]
    # Withdrawn: the documents' name and logos come back.
    assert provider(db_url, "pcworld.com") == ("PC World", "PC World", False)
    assert logos(db_url, "pcworld.com") == [url_for("a", "logo.png")]
    assert hierarchy(db_url, "azure") == {"Cloud": None, "AI": "Cloud"}
    # Azure is no longer declared nor used by a document: gone, as in a fresh load.
    assert fetch(db_url, select(topics.c.name).where(topics.c.slug == "azure")) == []
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "azure")])
    # The only document of a declared provider goes: the provider stays, as declared.
    write_tree(site, {"_news/b.md": None})
    run([site], db_url, workers=1, source="azure", prune=True)
    assert provider(db_url, "wsj.com") == ("WSJ", None, True)
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "azure")])
    # Every organization file gone: quiet.com, declared only, goes too.
    write_tree(
        site, {"_data/organizations/wsj.com.md": None, "_data/organizations/quiet.com.md": None}
    )
    run([site], db_url, workers=1, source="azure")
    assert provider(db_url, "quiet.com") is None
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "azure")])


def test_sites_keep_their_own_hierarchies_and_names_do_not_depend_on_order(
    db_url: str, tmp_path: Path
) -> None:
    azure = make_site(tmp_path / "azure")
    ai = tmp_path / "ai"
    write_tree(
        ai,
        {
            "_news/x.md": news("x", "pcworld.com", "PC World"),
            "_data/topics/00-ai.yaml": topic_file("AI"),
            "_data/organizations/pcworld.com.md": organization_file(
                "pcworld.com", "PC-World", "/pc.png"
            ),
        },
    )
    run([azure], db_url, workers=1, source="azure")
    run([ai], db_url, workers=1, source="ai")
    assert hierarchy(db_url, "azure")["AI"] == "Azure"
    assert hierarchy(db_url, "ai") == {"AI": None}
    # Sites disagree: the smallest declared name, and every declared logo.
    assert provider(db_url, "pcworld.com") == ("PC-World", "PC World", True)
    assert logos(db_url, "pcworld.com") == ["/assets/pcworld-50.jpg", "/pc.png"]
    assert live_snapshot(db_url) == fresh(tmp_path, [(ai, "ai"), (azure, "azure")])
    # The AI site withdraws it: Azure's declaration remains.
    write_tree(ai, {"_data/organizations/pcworld.com.md": None})
    run([ai], db_url, workers=1, source="ai")
    assert provider(db_url, "pcworld.com") == ("PCWorld", "PC World", True)
    assert live_snapshot(db_url) == fresh(tmp_path, [(ai, "ai"), (azure, "azure")])


def test_a_document_loaded_after_the_declaration_keeps_the_declared_name(
    db_url: str, tmp_path: Path
) -> None:
    site = make_site(tmp_path / "azure")
    run([site], db_url, workers=1, source="azure")
    write_tree(site, {"_news/c.md": news("c", "pcworld.com", "A PC World")})  # a smaller name
    run([site], db_url, workers=1, source="azure")
    assert provider(db_url, "pcworld.com") == ("PCWorld", "A PC World", True)
    assert logos(db_url, "pcworld.com") == ["/assets/pcworld-50.jpg"]
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "azure")])


def test_a_bad_taxonomy_file_is_rejected_alone_until_fixed(db_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "azure")
    write_tree(
        site,
        {
            "_data/topics/05-bad.yaml": b"name: [\n",
            "_data/organizations/x.com.md": b"no front matter\n",
        },
    )
    summary = run([site], db_url, workers=1, source="azure")
    assert summary.status == "partial"
    assert sorted(item.path for item in summary.rejected) == [
        "_data/organizations/x.com.md",
        "_data/topics/05-bad.yaml",
    ]
    assert hierarchy(db_url, "azure") == {"Azure": None, "AI": "Azure"}
    # Rejected again by the next run (the files are read until they are fixed).
    assert run([site], db_url, workers=1, source="azure").documents_rejected == 2
    write_tree(
        site,
        {"_data/topics/05-bad.yaml": topic_file("Bad", "AI"), "_data/organizations/x.com.md": None},
    )
    summary = run([site], db_url, workers=1, source="azure")
    assert (summary.status, summary.documents_rejected) == ("succeeded", 0)
    assert hierarchy(db_url, "azure")["Bad"] == "AI"


def test_the_taxonomy_loaded_beside_the_worker_pool_is_as_in_one_process(
    db_url: str, tmp_path: Path
) -> None:
    """A run large enough for the worker pool writes the taxonomy while the workers
    parse their first files: the rows, the declared names and the rejected file are
    what a run in one process makes of the same site."""
    site = make_site(tmp_path / "azure")
    extra = {f"_news/x{i:03d}.md": news(f"x{i}", "pcworld.com") for i in range(INLINE_BELOW)}
    write_tree(site, {**extra, "_data/topics/05-bad.yaml": b"name: [\n"})
    summary = run([site], db_url, workers=2, source="azure")
    assert (summary.status, summary.articles_inserted) == ("partial", 2 + INLINE_BELOW)
    assert [item.path for item in summary.rejected] == ["_data/topics/05-bad.yaml"]
    assert hierarchy(db_url, "azure") == {"Azure": None, "AI": "Azure"}
    assert provider(db_url, "pcworld.com") == ("PCWorld", "Doc name of pcworld.com", True)
    reference = f"sqlite:///{tmp_path / 'one-process.sqlite3'}"
    run([site], reference, workers=1, source="azure")
    assert live_snapshot(db_url) == live_snapshot(reference)


def test_declared_logo_sizes_do_not_depend_on_order(db_url: str, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    logo = {"url": "/a.png", "width": 10, "height": 10}
    bigger = {"url": "/a.png", "width": 20, "height": 20}
    for root, images_ in ((one, [logo, "/b.png"]), (two, ["/b.png", bigger])):
        data = {"name": "X", "domain": "x.com", "images": images_}
        write_tree(
            root, {"_news/a.md": news(root.name), "_data/organizations/x.com.md": render(data, "")}
        )
    run([one], db_url, workers=1, source="one")
    run([two], db_url, workers=1, source="two")
    size = fetch(db_url, select(images.c.width, images.c.height).where(images.c.url == "/a.png"))
    assert [tuple(row) for row in size] == [(20, 20)]
    assert live_snapshot(db_url) == fresh(tmp_path, [(two, "two"), (one, "one")])


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("_data/topics/99999999999-a.yaml", topic_file("A"), "prefix is over"),
        ("_data/topics/05-long.yaml", topic_file("x" * 300), "name: over 255 characters"),
        ("_data/topics/05-nul.yaml", b'name: "a\\0b"\n', "NUL"),
        ("_data/topics/05-raw.yaml", b"name: A\nparent: B\x00\nkeywords: [x]\n", "NUL"),
        ("_data/topics/05-list.yaml", b"- a\n- b\n", "a topic file must be a mapping"),
        ("_data/organizations/long.md", organization_file("x" * 300 + ".com", "X"), "domain: over"),
        ("_data/organizations/nul.md", b"---\nname: X\x00Y\ndomain: x.com\n---\n", "NUL"),
    ],
)
def test_values_the_database_cannot_hold_reject_the_file(
    sqlite_url: str, tmp_path: Path, name: str, content: bytes, error: str
) -> None:
    site = make_site(tmp_path / "azure")
    write_tree(site, {name: content})
    summary = run([site], sqlite_url, workers=1, source="azure")
    assert [(item.path, error in item.error) for item in summary.rejected] == [(name, True)]
    assert summary.articles_inserted == 2
    assert hierarchy(sqlite_url, "azure") == {"Azure": None, "AI": "Azure"}


def test_a_source_that_stops_being_a_site_has_no_taxonomy(db_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "azure")
    run([site], db_url, workers=1, source="azure")
    (site / "_news").rename(site / "news")  # git drops an empty _news/
    summary = run([site], db_url, workers=1, source="azure")
    assert summary.documents_rejected == 0  # _data/ holds no documents in any tree
    assert hierarchy(db_url, "azure") == {}
    assert fetch(db_url, select(source_providers.c.provider_id)) == []
    assert provider(db_url, "quiet.com") is None  # declared only: gone with its declaration
    assert provider(db_url, "pcworld.com") == ("PC World", "PC World", False)


def test_a_topic_is_named_by_its_own_entry_not_by_a_parent_reference(
    db_url: str, tmp_path: Path
) -> None:
    site = make_site(tmp_path / "azure", ai_parent="AZURE")
    run([site], db_url, workers=1, source="azure")
    assert hierarchy(db_url, "azure") == {"Azure": None, "AI": "Azure"}


def test_taxonomy_files_read_again_unchanged_write_nothing(db_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "azure")
    write_tree(site, {"_data/topics/05-bad.yaml": b"- not a mapping\n"})
    run([site], db_url, workers=1, source="azure")
    before = fetch(db_url, select(providers.c.domain, providers.c.updated_at))
    stamps = fetch(db_url, select(sources.c.taxonomy_stamp))
    (site / "_data/topics/00-azure.yaml").touch()
    again = run([site], db_url, workers=1, source="azure")
    assert again.documents_rejected == 1  # read again, and rejected again
    assert fetch(db_url, select(providers.c.domain, providers.c.updated_at)) == before
    assert fetch(db_url, select(sources.c.taxonomy_stamp)) == stamps


def test_downgrade_and_upgrade_read_the_taxonomy_again(db_url: str, tmp_path: Path) -> None:
    from etl.db import database

    site = make_site(tmp_path / "azure")
    run([site], db_url, workers=1, source="azure")
    engine = database.make_engine(db_url)
    try:
        database.downgrade(engine, "0007")
        assert fetch(db_url, select(source_topics.c.topic_id)) == []
        assert fetch(db_url, select(source_providers.c.provider_id)) == []
        assert fetch(db_url, select(sources.c.taxonomy_stamp)) == [(None,)]
        name = fetch(db_url, select(providers.c.name).where(providers.c.domain == "pcworld.com"))
        assert name == [("PC World",)]
        database.upgrade(engine)
    finally:
        engine.dispose()
    run([site], db_url, workers=1, source="azure")
    assert provider(db_url, "pcworld.com") == ("PCWorld", "PC World", True)
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "azure")])
