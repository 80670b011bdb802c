"""Site taxonomies, the rules: how a file of `_data/topics` becomes a topic entry and one
of `_data/organizations` a declared provider, why a bad one is refused, and which topics
of a hierarchy are kept (duplicates and cycles refused).

Tested with tables of cases on the pure functions of etl.transform.taxonomy; what the
tables they fill hold after loads is in ``tests/test_taxonomy_sites.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl.records import DocumentError, TaxonomyTopic, TopicRecord
from etl.transform.taxonomy import check_topics, organization_entry, read_taxonomy, topic_entry


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


def test_read_taxonomy_of_a_tree_without_data_is_empty(tmp_path: Path) -> None:
    found = read_taxonomy(tmp_path)
    assert (found.topics, found.providers, found.rejected) == ((), (), ())
