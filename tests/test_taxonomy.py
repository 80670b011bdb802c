"""Site taxonomies: `_data/topics` and `_data/organizations` of a Jekyll site root.

The parsing rules are tested with tables of cases; the tables they fill are then
checked on every backend after histories of taxonomy edits, against a fresh load
of the final trees. The shared corpus's taxonomy is checked in test_recipes.py, on the
database that module loads once per backend.
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
    provider_images,
    providers,
    rejected_documents,
    source_providers,
    source_topics,
    sources,
    topics,
)
from etl.records import DocumentError, TaxonomyTopic, TopicRecord
from etl.transform.taxonomy import check_topics, organization_entry, read_taxonomy, topic_entry
from tests.helpers import (
    dump_yaml,
    fetch,
    live_snapshot,
    make_doc,
    render,
    url_for,
    write_tree,
)

# --- rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "file", "expected"),
    [
        (
            {"taxonomy": "topic", "_id": "ai", "name": " AI ", "parent": "Azure", "keywords": "ml"},
            "_data/topics/02-ai.yaml",
            ("ai", "AI", "azure", 2, ("ml",), None),
        ),
        ({"name": "Azure"}, "_data/topics/00-azure.yaml", ("azure", "Azure", None, 0, (), None)),
        (
            {"name": "Web", "color": "red"},
            "_data/topics/web.yaml",
            ("web", "Web", None, None, (), {"color": "red"}),
        ),
        (
            {"name": "Machine  Learning", "parent": ""},
            "_data/topics/3-ml.yaml",
            ("machine-learning", "Machine Learning", None, 3, (), None),
        ),
    ],
)
def test_a_topic_file_becomes_an_entry(
    data: dict[str, Any], file: str, expected: tuple[Any, ...]
) -> None:
    entry = topic_entry(data, file)
    parent = entry.parent.slug if entry.parent else None
    got = (entry.topic.slug, entry.topic.name, parent, entry.position, entry.keywords, entry.extra)
    assert got == expected
    assert entry.file == file


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "name: Field required"),
        ({"name": "  "}, "name: Value error, must not be blank"),
        ({"name": "AI", "parent": "ai"}, "is the topic itself"),
        ({"name": "AI", "keywords": {"a": 1}}, "keywords"),
    ],
)
def test_a_bad_topic_file_says_why(data: dict[str, Any], error: str) -> None:
    with pytest.raises(DocumentError, match=error):
        topic_entry(data, "_data/topics/x.yaml")


@pytest.mark.parametrize(
    ("data", "file", "expected"),
    [
        (
            {"name": "PCWorld", "domain": "www.PCWorld.com"},
            "pcworld.com.md",
            ("pcworld.com", "PCWorld", ()),
        ),
        ({"name": "WSJ"}, "_data/organizations/wsj.com.md", ("wsj.com", "WSJ", ())),
        (
            {
                "name": "A",
                "domain": "a.com",
                "images": [{"url": "/a.png", "width": 50}, "/b.png", {"url": " "}],
            },
            "a.md",
            ("a.com", "A", (("/a.png", 50), ("/b.png", None))),
        ),
        ({"name": "News%2c Inc", "domain": "n.com"}, "n.md", ("n.com", "News, Inc", ())),
    ],
)
def test_an_organization_file_declares_a_provider(
    data: dict[str, Any], file: str, expected: tuple[Any, ...]
) -> None:
    declared = organization_entry(data, file).provider
    logos = tuple((image.url, image.width) for image in declared.images)
    assert (declared.domain, declared.name, logos) == expected


@pytest.mark.parametrize(
    ("data", "error"),
    [({"domain": "a.com"}, "name: Field required"), ({"name": "A", "domain": ""}, "domain")],
)
def test_a_bad_organization_file_says_why(data: dict[str, Any], error: str) -> None:
    with pytest.raises(DocumentError, match=error):
        organization_entry(data, "_data/organizations/.md")


def _entry(name: str, parent: str | None, file: str) -> TaxonomyTopic:
    slug = name.lower()
    return TaxonomyTopic(
        TopicRecord(slug, name, 0),
        TopicRecord(parent.lower(), parent, 0) if parent else None,
        None,
        None,
        None,
        (),
        (),
        (),
        None,
        None,
        file,
    )


@pytest.mark.parametrize(
    ("entries", "kept", "refused"),
    [
        ([("A", None, "a"), ("B", "A", "b")], ["a", "b"], []),
        ([("A", None, "2"), ("a", None, "1")], ["1"], ["2"]),  # defined twice: the first file
        ([("A", "B", "a"), ("B", "A", "b"), ("C", "A", "c")], ["c"], ["a", "b"]),  # a cycle
        ([("A", "Outside", "a")], ["a"], []),  # a parent no file defines is still a topic
    ],
)
def test_check_topics(
    entries: list[tuple[str, str | None, str]], kept: list[str], refused: list[str]
) -> None:
    ok, rejected = check_topics([_entry(*entry) for entry in entries])
    assert [entry.file for entry in ok] == kept
    assert sorted(item.path for item in rejected) == refused


# --- sites -------------------------------------------------------------------------------


def topic_file(name: str, parent: str | None = None, **extra: Any) -> bytes:
    data: dict[str, Any] = {"taxonomy": "topic", "_id": name.lower(), "name": name}
    if parent:
        data["parent"] = parent
    data.update(extra)
    return dump_yaml(data).encode()


def organization_file(domain: str, name: str, *logos: str) -> bytes:
    data: dict[str, Any] = {
        "taxonomy": "organization",
        "_id": domain,
        "name": name,
        "domain": domain,
    }
    if logos:
        data["images"] = [{"url": logo, "width": 50, "height": 50} for logo in logos]
    return render(data, "")


def news(tag: str, provider: str | None = None, provider_name: str | None = None) -> bytes:
    doc = make_doc(tag)
    if provider:
        doc["provider"]["domain"] = provider
        doc["provider"]["name"] = provider_name or f"Doc name of {provider}"
    doc["topics"] = ["AI", f"Topic {tag}"]
    return render(doc)


def make_site(root: Path, *, ai_parent: str | None = "Azure", declare: bool = True) -> Path:
    files: dict[str, bytes | None] = {
        "_news/a.md": news("a", "pcworld.com", "PC World"),
        "_news/b.md": news("b", "wsj.com", "Wall Street Journal"),
        "_data/topics/00-azure.yaml": topic_file("Azure", keywords=["azure"]),
        "_data/topics/02-ai.yaml": topic_file("AI", ai_parent, hashtags=["#ai"]),
    }
    if declare:
        files["_data/organizations/pcworld.com.md"] = organization_file(
            "pcworld.com", "PCWorld", "/assets/pcworld-50.jpg"
        )
        files["_data/organizations/quiet.com.md"] = organization_file("quiet.com", "Quiet")
    write_tree(root, files)
    return root


def fresh(tmp_path: Path, loads: list[tuple[Path, str]]) -> dict[str, Any]:
    reference = f"sqlite:///{tmp_path / f'fresh-{len(list(tmp_path.iterdir()))}.sqlite3'}"
    for path, name in loads:
        run([path], reference, workers=1, source=name)
    return live_snapshot(reference)


def hierarchy(url: str, source: str) -> dict[str, str | None]:
    parent = topics.alias("parent")
    rows = fetch(
        url,
        select(topics.c.name, parent.c.name.label("parent"))
        .select_from(source_topics)
        .join(sources, sources.c.id == source_topics.c.source_id)
        .join(topics, topics.c.id == source_topics.c.topic_id)
        .outerjoin(parent, parent.c.id == source_topics.c.parent_topic_id)
        .where(sources.c.name == source),
    )
    return {row.name: row.parent for row in rows}


def provider(url: str, domain: str) -> tuple[Any, ...] | None:
    rows = fetch(
        url,
        select(providers.c.name, providers.c.document_name, providers.c.named_by_source).where(
            providers.c.domain == domain
        ),
    )
    return (rows[0].name, rows[0].document_name, bool(rows[0].named_by_source)) if rows else None


def logos(url: str, domain: str) -> list[str]:
    rows = fetch(
        url,
        select(images.c.url)
        .select_from(provider_images)
        .join(providers, providers.c.id == provider_images.c.provider_id)
        .join(images, images.c.id == provider_images.c.image_id)
        .where(providers.c.domain == domain)
        .order_by(provider_images.c.position, images.c.url),
    )
    return [row[0] for row in rows]


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


def test_read_taxonomy_of_a_tree_without_data_is_empty(tmp_path: Path) -> None:
    found = read_taxonomy(tmp_path)
    assert (found.topics, found.providers, found.rejected) == ((), (), ())


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
