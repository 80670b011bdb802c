"""Tests of related links in etl.transform.transform, and of the rules on the corpus.

Related links are a table of cases (canonical targets, self-links and repeats dropped,
broken entries warned about); the last part checks the rules against facts measured on
the shared corpus, with the expected counts derived from the raw YAML (not from etl code).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml_rs

from etl.extract.extract import extract
from etl.extract.sources import SourceSpec, discover_source
from etl.records import DocumentError, TransformedDocument
from etl.transform import documents
from etl.transform.transform import transform
from tests.helpers import make_doc
from tests.transform_cases import URL, doc, entry

# --- related links --------------------------------------------------------------------

SELF = URL  # the document's own canonical URL


@pytest.mark.parametrize(
    ("related", "links", "warned"),
    [
        pytest.param(None, [], [], id="null"),
        pytest.param([], [], [], id="empty"),
        pytest.param(
            [entry("https://b.com/1"), entry("https://c.com/2")],
            [("https://b.com/1", 0), ("https://c.com/2", 1)],
            [],
            id="two",
        ),
        pytest.param(
            [entry("http://www.B.com/1/?utm_source=x#f")],
            [("https://b.com/1", 0)],
            [],
            id="canonical",
        ),
        pytest.param(
            [entry("https://b.com/1"), entry(SELF), entry("https://c.com/2")],
            [("https://b.com/1", 0), ("https://c.com/2", 2)],
            [],
            id="self-link",
        ),
        pytest.param(
            [entry("http://www.example.com/news/a/?utm_medium=rss#top"), entry("https://b.com/1")],
            [("https://b.com/1", 1)],
            [],
            id="self-link-variant",
        ),
        pytest.param(
            [entry("https://b.com/1"), entry("https://c.com/2"), entry("https://b.com/1")],
            [("https://b.com/1", 0), ("https://c.com/2", 1)],
            [],
            id="repeat",
        ),
        pytest.param(
            [entry("https://c.com/2"), entry("https://b.com/1"), entry("https://www.b.com/1/")],
            [("https://c.com/2", 0), ("https://b.com/1", 1)],
            [],
            id="repeat-variant",
        ),
        pytest.param(
            [entry(SELF), entry("https://b.com/1"), entry(SELF), entry("https://b.com/1")],
            [("https://b.com/1", 1)],
            [],
            id="repeated-self-links",
        ),
        pytest.param(
            [entry(originalUrl="https://b.com/1"), entry("https://c.com/2")],
            [("https://b.com/1", 0), ("https://c.com/2", 1)],
            [],
            id="original-url-fallback",
        ),
        pytest.param(
            [entry(title="no url"), entry("https://b.com/1")],
            [("https://b.com/1", 1)],
            [0],
            id="no-url",
        ),
        pytest.param(
            [entry("https://b.com/1"), entry(""), entry("https://c.com/2")],
            [("https://b.com/1", 0), ("https://c.com/2", 2)],
            [1],
            id="empty-url",
        ),
        pytest.param(
            [entry("javascript:alert(1)"), entry("https://b.com/1")],
            [("https://b.com/1", 1)],
            [0],
            id="javascript-url",
        ),
        pytest.param(
            [entry("https://b.com/1"), entry("not a url"), entry("file:///etc/passwd")],
            [("https://b.com/1", 0)],
            [1, 2],
            id="text-and-file-urls",
        ),
        pytest.param(
            [None, entry("https://b.com/1")],
            [("https://b.com/1", 1)],
            [0],
            id="null-entry",
        ),
        pytest.param(
            ["https://c.com/2", entry("https://b.com/1")],
            [("https://b.com/1", 1)],
            [0],
            id="string-entry",
        ),
        pytest.param(
            [
                entry(SELF),
                entry(title="x"),
                entry("https://b.com/1"),
                entry("https://b.com/1/"),
                entry("mailto:a@b.c"),
                entry("https://c.com/2"),
            ],
            [("https://b.com/1", 2), ("https://c.com/2", 5)],
            [1, 4],
            id="everything",
        ),
    ],
)
def test_related_links(related: Any, links: list[tuple[str, int]], warned: list[int]) -> None:
    result = doc(related=related)  # never a rejection
    assert [(link.url, link.position) for link in result.article.links] == links
    assert len(result.warnings) == len(warned), result.warnings
    for position in warned:
        assert any(f"related[{position}]" in warning for warning in result.warnings), (
            position,
            result.warnings,
        )


def test_repeated_related_entry_keeps_first_snippet() -> None:
    result = doc(
        related=[
            entry("https://b.com/1", title="first", provider={"name": "B", "domain": "www.b.com"}),
            entry(
                "https://www.b.com/1/", title="second", provider={"name": "X", "domain": "x.com"}
            ),
        ]
    )
    (link,) = result.article.links
    assert (link.url, link.position, link.title) == ("https://b.com/1", 0, "first")
    assert link.provider is not None
    assert (link.provider.domain, link.provider.name) == ("b.com", "B")


def test_a_related_entry_object_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents that share a parsed entry (etl.extract.shared_items) share its validation;
    an equal entry that is another object is validated on its own, and a broken shared
    entry is dropped from every document that lists it."""
    validate = documents._validate_related_entry
    calls: list[Any] = []

    def counting(entry: Any) -> Any:
        calls.append(entry)
        return validate(entry)

    monkeypatch.setattr(documents, "_validate_related_entry", counting)
    documents._validated.clear()
    entry = make_doc("shared")["related"][0]
    first, second = make_doc("one"), make_doc("two")
    first["related"] = second["related"] = [entry]
    one, _ = documents.validate_document(first)
    two, _ = documents.validate_document(second)
    assert one.related == two.related == [validate(entry)]
    assert calls == [entry]
    third = make_doc("three")
    third["related"] = [dict(entry)]
    documents.validate_document(third)
    assert len(calls) == 2
    broken = {**entry, "publishedDateTime": "not a date"}
    for tag in ("four", "five"):
        doc = make_doc(tag)
        doc["related"] = [broken]
        validated, warnings = documents.validate_document(doc)
        assert validated.related == [None]
        assert warnings and warnings[0].startswith("related[0] dropped:")


def test_documents_sharing_entries_get_their_own_positions_extras_and_warnings() -> None:
    """An entry object listed by several documents (etl.extract.shared_items) is turned
    into a link, and looked into for unknown keys, once: each document still gets its
    own positions, its own ``related[i].`` paths in ``extra``, and its own warnings."""
    unknown = entry("https://b.com/1", title="B", note="x", provider={"domain": "b.com", "k": 1})
    broken = entry(None, title="no URL")
    plain = entry("https://c.com/2", title="C")
    first = doc("one.md", related=[unknown, broken, plain])
    second = doc("two.md", related=[plain, plain, broken, unknown])
    fresh = doc("three.md", related=[dict(plain), dict(broken), dict(unknown)])
    assert [(link.url, link.position) for link in first.article.links] == [
        ("https://b.com/1", 0),
        ("https://c.com/2", 2),
    ]
    assert [(link.url, link.position) for link in second.article.links] == [
        ("https://c.com/2", 0),
        ("https://b.com/1", 3),
    ]
    assert first.article.extra == {"related[0].note": "x", "related[0].provider.k": 1}
    assert second.article.extra == {"related[3].note": "x", "related[3].provider.k": 1}
    assert fresh.article.extra == {"related[2].note": "x", "related[2].provider.k": 1}
    assert first.warnings == ("related[1] dropped: no webUrl or originalUrl",)
    assert second.warnings == ("related[2] dropped: no webUrl or originalUrl",)
    assert [link[2:] for link in first.article.links] == [
        link[2:] for link in fresh.article.links[::-1]
    ]


def test_a_provider_that_cannot_be_had_refuses_only_documents_that_keep_its_link() -> None:
    """A snippet provider's name with a NUL refuses the document that keeps the link;
    as a self-link or a repeat the entry is dropped first, with nothing refused, also
    when another document made the same entry into a link before."""
    bad = entry("https://b.com/1", title="B", provider={"name": "bad%00name", "domain": ""})
    as_self = entry(URL, title="self", provider={"name": "bad%00name", "domain": ""})
    for _ in range(2):  # the second time from the caches
        with pytest.raises(DocumentError, match="NUL"):
            doc("kept.md", related=[entry("https://c.com/2"), bad])
        dropped = doc("dropped.md", related=[as_self, entry("https://b.com/1"), bad])
        assert [link.url for link in dropped.article.links] == ["https://b.com/1"]


# --- the corpus -------------------------------------------------------------------------


def _independent_url(url: str) -> str:
    """A minimal URL normalization, enough for the corpus (https only, no tracking
    parameters, no ports: the test asserts that much of the raw data)."""
    scheme, _, rest = url.strip().partition("://")
    assert scheme == "https", url
    rest = rest.partition("#")[0]
    rest, mark, query = rest.partition("?")
    assert not any(
        name.split("=")[0].startswith("utm_") or name.split("=")[0] in ("fbclid", "gclid")
        for name in query.split("&")
    ), url
    host, _, path = rest.partition("/")
    assert ":" not in host, url
    path = "/" + path
    if len(path) > 1:
        path = path.removesuffix("/")
    return f"https://{host.lower().removeprefix('www.')}{path}{mark}{query}"


@pytest.fixture(scope="module")
def corpus_raw(corpus_news: Path) -> dict[str, dict[str, Any]]:
    """Every document's front-matter, split by hand and parsed by yaml_rs directly."""
    result: dict[str, dict[str, Any]] = {}
    for path in sorted(corpus_news.glob("*.md")):
        text = path.read_text("utf-8")
        assert text.startswith("---\n"), path
        front_matter = yaml_rs.loads(text[4:].split("\n---\n", 1)[0])
        assert isinstance(front_matter, dict), path
        result[path.name] = front_matter
    return result


@pytest.fixture(scope="module")
def corpus_transformed(corpus_news: Path) -> dict[str, TransformedDocument]:
    result: dict[str, TransformedDocument] = {}
    rejected = {}
    for source in discover_source(SourceSpec("corpus", str(corpus_news), False, ("",))):
        try:
            result[source.key] = transform(extract(source))
        except DocumentError as exc:
            rejected[source.key] = str(exc)
    assert not rejected, list(rejected.items())[:10]
    return result


@pytest.mark.corpus
def test_corpus_every_document_transforms(
    corpus_raw: dict[str, dict[str, Any]], corpus_transformed: dict[str, TransformedDocument]
) -> None:
    assert len(corpus_raw) == 4958
    assert sorted(corpus_transformed) == sorted(corpus_raw)
    warned = {key: t.warnings for key, t in corpus_transformed.items() if t.warnings}
    assert not warned, list(warned.items())[:5]  # every related entry has a usable URL


@pytest.mark.corpus
def test_corpus_distinct_canonical_urls(
    corpus_raw: dict[str, dict[str, Any]], corpus_transformed: dict[str, TransformedDocument]
) -> None:
    raw_urls = [front_matter["webUrl"] for front_matter in corpus_raw.values()]
    assert len(set(raw_urls)) == 4944  # 13 URLs in several files: 12 in two, one in three
    expected = {_independent_url(url) for url in raw_urls}
    assert len(expected) == 4943  # one more pair differs by a leading www.
    urls = {t.article.url for t in corpus_transformed.values()}
    assert len(urls) == 4943
    assert urls == expected


@pytest.mark.corpus
def test_corpus_related_links(
    corpus_raw: dict[str, dict[str, Any]], corpus_transformed: dict[str, TransformedDocument]
) -> None:
    total = self_links = repeated_docs = expected_links = 0
    for key, front_matter in corpus_raw.items():
        related = [entry["webUrl"] for entry in front_matter.get("related") or []]
        total += len(related)
        self_links += sum(url == front_matter["webUrl"] for url in related)
        repeated_docs += len(set(related)) < len(related)
        own = _independent_url(front_matter["webUrl"])
        targets = [_independent_url(url) for url in related]
        first: dict[str, int] = {}
        for position, url in enumerate(targets):
            if url != own:
                first.setdefault(url, position)
        links = corpus_transformed[key].article.links
        assert [(link.url, link.position) for link in links] == list(first.items()), key
        expected_links += len(first)
    assert total == 161_223
    assert self_links == 16
    assert repeated_docs == 380
    assert sum(len(t.article.links) for t in corpus_transformed.values()) == expected_links


@pytest.mark.corpus
def test_corpus_links_dropped(corpus_transformed: dict[str, TransformedDocument]) -> None:
    assert any(t.article.links for t in corpus_transformed.values())
    for t in corpus_transformed.values():
        urls = [link.url for link in t.article.links]
        assert t.article.url not in urls, t.source_key
        assert len(urls) == len(set(urls)), t.source_key
        positions = [link.position for link in t.article.links]
        assert positions == sorted(positions), t.source_key


@pytest.mark.corpus
def test_corpus_related_urls_are_documents(
    corpus_transformed: dict[str, TransformedDocument],
) -> None:
    documents = {t.article.url for t in corpus_transformed.values()}
    dangling = {
        link.url
        for t in corpus_transformed.values()
        for link in t.article.links
        if link.url not in documents
    }
    assert not dangling, sorted(dangling)[:10]


@pytest.mark.corpus
def test_corpus_providers(
    corpus_raw: dict[str, dict[str, Any]], corpus_transformed: dict[str, TransformedDocument]
) -> None:
    by_raw: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key, front_matter in corpus_raw.items():
        raw_provider = (front_matter["provider"]["name"], front_matter["provider"]["domain"])
        provider = corpus_transformed[key].article.provider
        by_raw.setdefault(raw_provider, set()).add((provider.domain, provider.name))
    assert all(len(records) == 1 for records in by_raw.values())
    encoded = by_raw[("Morningstar%2c Inc.", "morningstar.com")]
    plain = by_raw[("Morningstar, Inc.", "morningstar.com")]
    assert encoded == plain == {("morningstar.com", "Morningstar, Inc.")}
    assert by_raw[("CRN", "www.crn.in")] == {("crn.in", "CRN")}
    domains = {domain for records in by_raw.values() for domain, _ in records}
    assert "www.crn.in" not in domains
    assert not any(d.startswith("www.") or d.endswith(".") or d != d.lower() for d in domains)


@pytest.mark.corpus
def test_corpus_dates_are_utc(corpus_transformed: dict[str, TransformedDocument]) -> None:
    for t in corpus_transformed.values():
        values = [t.article.published_at, *(link.published_at for link in t.article.links)]
        for value in values:
            if value is not None:
                assert value.utcoffset() == timedelta(0), t.source_key
