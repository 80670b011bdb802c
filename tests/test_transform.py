"""Table-driven tests of every rule in etl.transform.transform (and the models behind it).

Each rule is a table of cases; the last part checks the rules against facts measured on
the shared corpus, with the expected counts derived from the raw YAML (not from etl code).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml_rs

from etl.extract.extract import extract
from etl.extract.sources import SourceSpec, discover_source
from etl.records import DocumentError, RawDocument, SourceFile, TransformedDocument, winner_key
from etl.transform import documents
from etl.transform.transform import (
    canonical_url,
    normalize_domain,
    normalize_provider_name,
    topic_slug,
    transform,
)
from tests.helpers import make_doc

URL = "https://example.com/news/a"


def raw(front_matter: dict[str, Any], key: str = "doc.md", body: str = "body\n") -> RawDocument:
    return RawDocument(SourceFile(".", key), "0" * 64, front_matter, body)


def doc(key: str = "doc.md", **fields: Any) -> TransformedDocument:
    """Transform a minimal valid document with ``fields`` added or replaced."""
    front_matter: dict[str, Any] = {"title": "A title", "webUrl": URL}
    front_matter.update(fields)
    return transform(raw(front_matter, key))


def transform_text(text: str, key: str = "doc.md") -> TransformedDocument:
    """Extract + transform a whole file's text, as the pipeline does."""
    return transform(extract(SourceFile(".", key), data=text.encode()))


def utc(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


# --- canonical URL -------------------------------------------------------------------

CANONICAL = [
    pytest.param("https://example.com/a", "https://example.com/a", id="already-canonical"),
    pytest.param("  https://example.com/a \n", "https://example.com/a", id="trimmed"),
    pytest.param("\thttps://example.com/a\t", "https://example.com/a", id="trimmed-tabs"),
    pytest.param("HTTPS://example.com/a", "https://example.com/a", id="scheme-lowercased"),
    pytest.param("https://EXAMPLE.COM/a", "https://example.com/a", id="host-lowercased"),
    pytest.param("https://Example.com/Path/CASE", "https://example.com/Path/CASE", id="path-case"),
    pytest.param("http://example.com/a", "https://example.com/a", id="http-to-https"),
    pytest.param("HTTP://Example.com/a", "https://example.com/a", id="HTTP-to-https"),
    pytest.param("https://www.example.com/a", "https://example.com/a", id="www-dropped"),
    pytest.param("https://WWW.Example.com/a", "https://example.com/a", id="WWW-dropped"),
    pytest.param("http://www.example.com/a", "https://example.com/a", id="http-www"),
    pytest.param("https://www2.example.com/a", "https://www2.example.com/a", id="www2-kept"),
    pytest.param("https://wwwexample.com/a", "https://wwwexample.com/a", id="www-no-dot-kept"),
    pytest.param("https://news.www.example.com/a", "https://news.www.example.com/a", id="mid-www"),
    pytest.param("https://example.com:443/a", "https://example.com/a", id="https-port-443"),
    pytest.param("http://example.com:80/a", "https://example.com/a", id="http-port-80"),
    pytest.param("https://example.com:8443/a", "https://example.com:8443/a", id="port-kept"),
    pytest.param("http://example.com:8080/a", "https://example.com:8080/a", id="http-port-kept"),
    pytest.param("https://example.com/a#section", "https://example.com/a", id="fragment"),
    pytest.param("https://example.com/a#", "https://example.com/a", id="empty-fragment"),
    pytest.param("https://example.com/#top", "https://example.com/", id="root-fragment"),
    pytest.param("https://example.com/a?utm_source=x", "https://example.com/a", id="utm-only"),
    pytest.param(
        "https://example.com/a?utm_source=x&utm_medium=y&utm_campaign=z&utm_term=t&utm_content=c",
        "https://example.com/a",
        id="all-utm",
    ),
    pytest.param(
        "https://example.com/a?id=1&utm_source=x&page=2",
        "https://example.com/a?id=1&page=2",
        id="utm-between",
    ),
    pytest.param("https://example.com/a?fbclid=AbC", "https://example.com/a", id="fbclid"),
    pytest.param("https://example.com/a?gclid=AbC&x=1", "https://example.com/a?x=1", id="gclid"),
    pytest.param(
        "https://example.com/a?x=1&fbclid=AbC", "https://example.com/a?x=1", id="fbclid-2"
    ),
    pytest.param("https://example.com/a?z=1&a=2", "https://example.com/a?z=1&a=2", id="order-kept"),
    pytest.param(
        "https://example.com/a?q=A%20B&Name=Val+ue&e=",
        "https://example.com/a?q=A%20B&Name=Val+ue&e=",
        id="exact-text-kept",
    ),
    pytest.param(
        "https://example.com/a?b=2&utm_source=x&a=1&gclid=g&c=%2F",
        "https://example.com/a?b=2&a=1&c=%2F",
        id="mixed",
    ),
    pytest.param(
        "https://example.com/a?utm=1", "https://example.com/a?utm=1", id="utm-no-underscore"
    ),
    pytest.param(
        "https://example.com/a?xutm_source=1", "https://example.com/a?xutm_source=1", id="xutm-kept"
    ),
    pytest.param(
        "https://example.com/a?fbclid_x=1", "https://example.com/a?fbclid_x=1", id="fbclid_x-kept"
    ),
    pytest.param(
        "https://example.com/a?id=utm_x", "https://example.com/a?id=utm_x", id="utm-value"
    ),
    pytest.param("https://example.com/a/", "https://example.com/a", id="trailing-slash"),
    pytest.param("https://example.com/a/b/", "https://example.com/a/b", id="trailing-slash-deep"),
    pytest.param(
        "https://example.com/a/?x=1", "https://example.com/a?x=1", id="slash-before-query"
    ),
    pytest.param("https://example.com/a/#f", "https://example.com/a", id="slash-before-fragment"),
    pytest.param("https://example.com/", "https://example.com/", id="root"),
    pytest.param("https://example.com", "https://example.com/", id="root-empty-path"),
    pytest.param("https://example.com?x=1", "https://example.com/?x=1", id="root-empty-query"),
    pytest.param("https://example.com#frag", "https://example.com/", id="root-empty-fragment"),
    pytest.param("http://www.example.com:80", "https://example.com/", id="root-everything"),
    pytest.param("https://example.com/?utm_source=x", "https://example.com/", id="root-utm"),
    pytest.param("https://example.com/%7Euser/", "https://example.com/%7Euser", id="escapes-kept"),
    pytest.param("https://example.com/a;p", "https://example.com/a;p", id="params-kept"),
    pytest.param(
        "http://WWW.Example.com:80/News/Story/?utm_source=rss&id=7&fbclid=F#comments",
        "https://example.com/News/Story?id=7",
        id="all-rules",
    ),
    pytest.param(
        "https://www.bbc.com/news/technology-48339142",
        "https://bbc.com/news/technology-48339142",
        id="seed",
    ),
]


@pytest.mark.parametrize(("url", "expected"), CANONICAL)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(("url", "expected"), CANONICAL)
def test_canonical_url_is_idempotent(url: str, expected: str) -> None:
    assert canonical_url(canonical_url(url)) == canonical_url(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("JavaScript:void(0)", id="JavaScript"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("file://host/share/a.md", id="file-host"),
        pytest.param("plain text", id="plain-text"),
        pytest.param("example.com/a", id="no-scheme"),
        pytest.param("www.example.com", id="bare-host"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("ftp://example.com/a", id="ftp"),
        pytest.param("mailto:news@example.com", id="mailto"),
        pytest.param("data:text/html,hi", id="data"),
        pytest.param("//example.com/a", id="scheme-relative"),
        pytest.param("https://", id="no-host"),
        pytest.param("https:///a", id="empty-host"),
        pytest.param("http:example.com", id="no-slashes"),
        pytest.param("http://[::1", id="broken-ipv6"),
    ],
)
def test_canonical_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        canonical_url(url)


# --- providers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("www.crn.in", "crn.in"),
        ("WWW.CRN.IN", "crn.in"),
        ("example.com.", "example.com"),
        ("www.example.com.", "example.com"),
        ("Www.Example.Com.", "example.com"),
        ("crn.com.au", "crn.com.au"),
        ("www2.example.com", "www2.example.com"),
        ("wwwexample.com", "wwwexample.com"),
        ("news.www.example.com", "news.www.example.com"),
        (" example.com ", "example.com"),
    ],
)
def test_normalize_domain(domain: str, expected: str) -> None:
    assert normalize_domain(domain) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BBC", "BBC"),
        ("Morningstar%2c Inc.", "Morningstar, Inc."),
        ("Morningstar%2C Inc.", "Morningstar, Inc."),
        ("Morningstar, Inc.", "Morningstar, Inc."),
        ("AT%26T", "AT&T"),
        ("Caf%C3%A9 News", "Café News"),
        ("  BBC   News ", "BBC News"),
        ("BBC\tNews\n", "BBC News"),
        ("A%20%20B", "A B"),
        ("100% Pure", "100% Pure"),
        ("", ""),
    ],
)
def test_normalize_provider_name(name: str, expected: str) -> None:
    assert normalize_provider_name(name) == expected


@pytest.mark.parametrize(
    ("fields", "domain", "name"),
    [
        pytest.param(
            {"provider": {"name": "BBC", "domain": "bbc.com"}}, "bbc.com", "BBC", id="plain"
        ),
        pytest.param(
            {"provider": {"name": " BBC  News ", "domain": "WWW.BBC.com."}},
            "bbc.com",
            "BBC News",
            id="normalized",
        ),
        pytest.param(
            {"provider": {"name": "Morningstar%2c Inc.", "domain": "morningstar.com"}},
            "morningstar.com",
            "Morningstar, Inc.",
            id="url-encoded-name",
        ),
        pytest.param(
            {"provider": {"name": "CRN", "domain": "www.crn.in"}}, "crn.in", "CRN", id="www-domain"
        ),
        pytest.param(
            {"webUrl": "https://www.Example.com/a", "provider": {"name": "Ex"}},
            "example.com",
            "Ex",
            id="no-domain-key",
        ),
        pytest.param(
            {"webUrl": "https://www.Example.com/a", "provider": {"name": "Ex", "domain": ""}},
            "example.com",
            "Ex",
            id="empty-domain",
        ),
        pytest.param(
            {"webUrl": "https://www.Example.com/a", "provider": {"name": "Ex", "domain": None}},
            "example.com",
            "Ex",
            id="null-domain",
        ),
        pytest.param(
            {"webUrl": "http://News.Example.org:80/a", "provider": {"name": "Ex"}},
            "news.example.org",
            "Ex",
            id="host-of-canonical-url",
        ),
        pytest.param(
            {
                "webUrl": None,
                "originalUrl": "https://www.orig.example/a",
                "provider": {"name": "O"},
            },
            "orig.example",
            "O",
            id="host-of-original-url",
        ),
        pytest.param(
            {"webUrl": "https://www.example.com/a"}, "example.com", None, id="no-provider"
        ),
        pytest.param(
            {"webUrl": "https://www.example.com/a", "provider": None},
            "example.com",
            None,
            id="null-provider",
        ),
    ],
)
def test_document_provider(fields: dict[str, Any], domain: str, name: str | None) -> None:
    provider = doc(**fields).article.provider
    assert provider.domain == domain
    if name is not None:
        assert provider.name == name


# --- topics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("AI", "ai"),
        ("AI", "Ai"),
        ("Machine Learning", "machine learning"),
        ("Machine Learning", "MACHINE LEARNING"),
        ("Machine Learning", "Machine  Learning"),
        ("Machine Learning", " Machine Learning "),
        ("Machine Learning", "Machine\tLearning"),
        ("Machine Learning", "machine\n learning"),
        ("AWS AI", " aws   ai "),
        ("Straße", "STRASSE"),
    ],
)
def test_topic_slug_ignores_case_and_spacing(a: str, b: str) -> None:
    assert topic_slug(a) == topic_slug(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("AI", "AI Ethics"),
        ("AWS AI", "Azure AI"),
        ("Machine Learning", "Deep Learning"),
        ("C#", "C++"),
        ("Computer Vision", "Computer Visions"),
    ],
)
def test_topic_slug_distinguishes_topics(a: str, b: str) -> None:
    assert topic_slug(a) != topic_slug(b)


@pytest.mark.parametrize(
    "name", ["AI", "Machine Learning", " AWS  AI ", "Natural\tLanguage Processing", "C#"]
)
def test_topic_slug_is_a_slug(name: str) -> None:
    slug = topic_slug(name)
    assert slug
    assert not any(char.isspace() for char in slug)
    assert slug == slug.lower()


@pytest.mark.parametrize(
    ("topics", "expected"),
    [
        pytest.param("AI", [("AI", 0)], id="one-string"),
        pytest.param(["AI"], [("AI", 0)], id="one"),
        pytest.param([], [], id="none"),
        pytest.param(None, [], id="null"),
        pytest.param(
            ["AWS AI", "AI", "Computer Vision"],
            [("AWS AI", 0), ("AI", 1), ("Computer Vision", 2)],
            id="seed",
        ),
        pytest.param(["AI", "ai", "Cloud"], [("AI", 0), ("Cloud", 2)], id="case-repeat"),
        pytest.param(
            ["Machine Learning", "MACHINE LEARNING", "machine\tlearning", "Machine  Learning"],
            [("Machine Learning", 0)],
            id="case-and-space-repeats",
        ),
        pytest.param(
            ["Azure", "AWS", "azure", "GCP", "aws"],
            [("Azure", 0), ("AWS", 1), ("GCP", 3)],
            id="first-position-kept",
        ),
        pytest.param(
            ["machine learning", "Machine Learning"],
            [("machine learning", 0)],
            id="first-display-name-kept",
        ),
    ],
)
def test_topics(topics: Any, expected: list[tuple[str, int]]) -> None:
    records = doc(topics=topics).article.topics
    assert [(t.name, t.position) for t in records] == expected
    assert [t.slug for t in records] == [topic_slug(name) for name, _ in expected]


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        pytest.param([], [], id="none"),
        pytest.param([{"url": "https://i/a.jpg"}], [(0, "https://i/a.jpg", None)], id="one"),
        pytest.param(
            [{"url": "https://i/a.jpg", "width": 1}, {"url": "https://i/b.jpg", "width": 2}],
            [(0, "https://i/a.jpg", 1), (1, "https://i/b.jpg", 2)],
            id="two",
        ),
        pytest.param(
            [
                {"url": "https://i/a.jpg", "width": 1},
                {"url": "https://i/b.jpg", "width": 2},
                {"url": "https://i/a.jpg", "width": 3},
                {"url": "https://i/c.jpg", "width": 4},
                {"url": "https://i/b.jpg", "width": 5},
            ],
            [(0, "https://i/a.jpg", 1), (1, "https://i/b.jpg", 2), (3, "https://i/c.jpg", 4)],
            id="repeats-dropped-first-kept",
        ),
        pytest.param(
            [{"url": "https://i/a.jpg", "width": 10}, {"url": "https://i/a.jpg", "width": 99}],
            [(0, "https://i/a.jpg", 10)],
            id="same-url-other-size",
        ),
    ],
)
def test_images(images: list[dict[str, Any]], expected: list[tuple[int, str, int | None]]) -> None:
    records = doc(images=images).article.images
    assert [(position, image.url, image.width) for position, image in records] == expected


# --- related links --------------------------------------------------------------------

SELF = URL  # the document's own canonical URL


def entry(url: str | None = None, **fields: Any) -> dict[str, Any]:
    result = dict(fields)
    if url is not None:
        result["webUrl"] = url
    return result


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


# --- dates ------------------------------------------------------------------------------

DATES = [
    pytest.param("2021-08-29T10:00:00Z", utc(2021, 8, 29, 10), id="z-string"),
    pytest.param("2021-08-29T10:00:00+00:00", utc(2021, 8, 29, 10), id="utc-offset-string"),
    pytest.param("2021-08-29T12:00:00+02:00", utc(2021, 8, 29, 10), id="plus-offset-string"),
    pytest.param("2021-08-29T05:00:00-05:00", utc(2021, 8, 29, 10), id="minus-offset-string"),
    pytest.param("2021-08-29T10:00:00", utc(2021, 8, 29, 10), id="zoneless-string"),
    pytest.param("2021-08-29 10:00:00", utc(2021, 8, 29, 10), id="zoneless-space-string"),
    pytest.param("2021-08-29T10:00:00.5Z", utc(2021, 8, 29, 10, 0, 0, 500000), id="fraction"),
    pytest.param("2021-08-29", utc(2021, 8, 29), id="date-string"),
    pytest.param(" 2021-08-29T10:00:00Z ", utc(2021, 8, 29, 10), id="padded-string"),
    pytest.param(date(2021, 8, 29), utc(2021, 8, 29), id="date"),
    pytest.param(datetime(2021, 8, 29, 10), utc(2021, 8, 29, 10), id="naive-datetime"),
    pytest.param(utc(2021, 8, 29, 10), utc(2021, 8, 29, 10), id="utc-datetime"),
    pytest.param(
        datetime(2021, 8, 29, 12, tzinfo=timezone(timedelta(hours=2))),
        utc(2021, 8, 29, 10),
        id="offset-datetime",
    ),
    pytest.param(
        datetime(2021, 1, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        utc(2020, 12, 31, 19, 30),
        id="offset-crosses-year",
    ),
]


def assert_utc(value: datetime | None, expected: datetime) -> None:
    assert isinstance(value, datetime)
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    assert value == expected


@pytest.mark.parametrize(("value", "expected"), DATES)
def test_published_at(value: Any, expected: datetime) -> None:
    assert_utc(doc(publishedDateTime=value).article.published_at, expected)


@pytest.mark.parametrize(("value", "expected"), DATES)
def test_related_published_at(value: Any, expected: datetime) -> None:
    (link,) = doc(related=[entry("https://b.com/1", publishedDateTime=value)]).article.links
    assert_utc(link.published_at, expected)


# The same dates as YAML text, through extract + transform. Each also runs with an
# excerpt that makes etl.extract.extract take its strict (PyYAML) path instead of yaml_rs.
STRICT_PATH_LINE = "excerpt: This is *important* news\n"
PATHS = [pytest.param("", id="fast"), pytest.param(STRICT_PATH_LINE, id="strict")]


def document_text(lines: str, extra: str = "") -> str:
    return f"---\n{extra}title: A title\nwebUrl: {URL}\n{lines}---\nbody\n"


@pytest.mark.parametrize("extra", PATHS)
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("publishedDateTime: 2021-08-29T10:00:00Z", utc(2021, 8, 29, 10), id="z"),
        pytest.param(
            "publishedDateTime: 2021-08-29T12:00:00+02:00", utc(2021, 8, 29, 10), id="off"
        ),
        pytest.param("publishedDateTime: 2021-08-29 10:00:00", utc(2021, 8, 29, 10), id="zoneless"),
        pytest.param(
            "publishedDateTime: 2021-08-29T10:00:00", utc(2021, 8, 29, 10), id="zoneless-T"
        ),
        pytest.param("publishedDateTime: 2021-08-29", utc(2021, 8, 29), id="date"),
        pytest.param('publishedDateTime: "2021-08-29"', utc(2021, 8, 29), id="quoted-date"),
        pytest.param(
            'publishedDateTime: "2021-08-29T10:00:00"', utc(2021, 8, 29, 10), id="quoted-zoneless"
        ),
    ],
)
def test_published_at_from_yaml(line: str, expected: datetime, extra: str) -> None:
    assert_utc(transform_text(document_text(line + "\n", extra)).article.published_at, expected)


@pytest.mark.parametrize("extra", PATHS)
@pytest.mark.parametrize(
    "line",
    [
        pytest.param("publishedDateTime: tuesday", id="tuesday"),
        pytest.param('publishedDateTime: "tuesday"', id="quoted-tuesday"),
        pytest.param("publishedDateTime: 2020-13-45", id="month-13"),
        pytest.param('publishedDateTime: "2020-13-45"', id="quoted-month-13"),
        pytest.param("publishedDateTime: 2021-02-30", id="feb-30"),
        pytest.param("publishedDateTime: 2021-08-29T25:00:00Z", id="hour-25"),
    ],
)
def test_unparseable_date_from_yaml_is_rejected(line: str, extra: str) -> None:
    with pytest.raises(DocumentError, match="publishedDateTime"):
        transform_text(document_text(line + "\n", extra))


# --- winner -----------------------------------------------------------------------------

TWO_DOCS = [
    pytest.param(utc(2021, 8, 2), "a.md", utc(2021, 8, 1), "z.md", "a.md", id="later-date-wins"),
    pytest.param(utc(2021, 8, 1), "z.md", utc(2021, 8, 2), "a.md", "a.md", id="later-date-wins-2"),
    pytest.param(utc(2021, 8, 1), "a.md", utc(2021, 8, 1), "b.md", "b.md", id="tie-greater-path"),
    pytest.param(
        utc(2021, 8, 1), "2021/x.md", utc(2021, 8, 1), "2020/x.md", "2021/x.md", id="tie-dirs"
    ),
    pytest.param(
        datetime(2021, 8, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        "b.md",
        utc(2021, 8, 1, 10),
        "a.md",
        "b.md",
        id="same-instant-other-zone-tie",
    ),
    pytest.param(
        datetime(2021, 8, 1, 11, tzinfo=timezone(timedelta(hours=2))),
        "z.md",
        utc(2021, 8, 1, 9, 30),
        "a.md",
        "a.md",
        id="offset-is-earlier",
    ),
    pytest.param(
        utc(2021, 8, 1, 0, 0, 1), "a.md", utc(2021, 8, 1), "b.md", "a.md", id="one-second-later"
    ),
]


@pytest.mark.parametrize(("date_a", "key_a", "date_b", "key_b", "winner"), TWO_DOCS)
def test_winner_key(
    date_a: datetime, key_a: str, date_b: datetime, key_b: str, winner: str
) -> None:
    best = max([(date_a, key_a), (date_b, key_b)], key=lambda pair: winner_key(*pair))
    assert best[1] == winner
    assert winner_key(date_a, key_a) != winner_key(date_b, key_b)


@pytest.mark.parametrize(("date_a", "key_a", "date_b", "key_b", "winner"), TWO_DOCS)
def test_winner_of_transformed_documents(
    date_a: datetime, key_a: str, date_b: datetime, key_b: str, winner: str
) -> None:
    a = doc(key_a, publishedDateTime=date_a.isoformat())
    b = doc(key_b, publishedDateTime=date_b.isoformat())
    assert a.article.url == b.article.url
    assert max([a, b], key=lambda d: d.winner_key).source_key == winner


def test_winner_plain_date_is_midnight_utc() -> None:
    plain = doc("z.md", publishedDateTime=date(2021, 8, 29))
    later = doc("a.md", publishedDateTime="2021-08-29T00:00:01Z")
    same = doc("a.md", publishedDateTime="2021-08-29T00:00:00Z")
    assert max([plain, later], key=lambda d: d.winner_key) is later
    assert max([plain, same], key=lambda d: d.winner_key) is plain  # tie: greater path


# --- lenient coercions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        pytest.param({"quality": "91"}, "quality", 91, id="quality-string"),
        pytest.param({"quality": "-3"}, "quality", -3, id="quality-negative-string"),
        pytest.param({"quality": "0"}, "quality", 0, id="quality-zero-string"),
        pytest.param({"quality": 91}, "quality", 91, id="quality-int"),
        pytest.param({"heat": "-1"}, "heat", -1, id="heat-string"),
        pytest.param({"heat": "12"}, "heat", 12, id="heat-positive-string"),
        pytest.param({"heat": 5}, "heat", 5, id="heat-int"),
    ],
)
def test_numeric_strings(fields: dict[str, Any], attribute: str, expected: int) -> None:
    value = getattr(doc(**fields).article, attribute)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize(
    ("image", "width", "height"),
    [
        pytest.param({"width": "1024", "height": "576"}, 1024, 576, id="strings"),
        pytest.param({"width": 1024, "height": "576"}, 1024, 576, id="mixed"),
        pytest.param({"width": "50"}, 50, None, id="width-only"),
    ],
)
def test_numeric_image_sizes(image: dict[str, Any], width: int, height: int | None) -> None:
    article = doc(
        images=[{"url": "https://i/a.jpg", **image}],
        provider={"name": "P", "domain": "p.com", "images": [{"url": "https://i/p.jpg", **image}]},
    ).article
    ((_, record),) = article.images
    assert (record.width, record.height) == (width, height)
    (logo,) = article.provider.images
    assert (logo.width, logo.height) == (width, height)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param("topics: AI\n", ["AI"], id="plain-string"),
        pytest.param('topics: "Machine Learning"\n', ["Machine Learning"], id="quoted-string"),
        pytest.param("topics:\n  - AI\n", ["AI"], id="list"),
        pytest.param("topics: [AI, Cloud]\n", ["AI", "Cloud"], id="flow-list"),
    ],
)
def test_topics_from_yaml(text: str, names: list[str]) -> None:
    topics = transform_text(document_text(text)).article.topics
    assert [t.name for t in topics] == names


def test_numeric_strings_from_yaml() -> None:
    article = transform_text(
        document_text(
            'quality: "91"\nheat: "-1"\nimages:\n  - url: https://i/a.jpg\n'
            '    width: "1024"\n    height: "576"\n'
        )
    ).article
    assert (article.quality, article.heat) == (91, -1)
    assert [(i.width, i.height) for _, i in article.images] == [(1024, 576)]


# --- unknown keys -> articles.extra -----------------------------------------------------------

UNKNOWN_KEYS = [
    pytest.param({}, None, id="none"),
    pytest.param({"customField": 1}, {"customField": 1}, id="top-level"),
    pytest.param(
        {"provider": {"name": "P", "domain": "p.com", "logo": "x"}},
        {"provider.logo": "x"},
        id="provider",
    ),
    pytest.param(
        {"provider": {"domain": "p.com", "images": [{"url": "https://i/p", "alt": "a"}]}},
        {"provider.images[0].alt": "a"},
        id="provider-image",
    ),
    pytest.param(
        {"images": [{"url": "https://i/1"}, {"url": "https://i/2", "alt": "b"}]},
        {"images[1].alt": "b"},
        id="image",
    ),
    pytest.param(
        {
            "related": [
                {"webUrl": "https://e.com/1"},
                {
                    "webUrl": "https://e.com/2",
                    "score": 3,
                    "provider": {"domain": "e.com", "rank": 1, "images": [{"url": "u", "w": 2}]},
                    "images": [{"url": "https://i/r", "caption": "c"}],
                },
            ]
        },
        {
            "related[1].score": 3,
            "related[1].provider.rank": 1,
            "related[1].provider.images[0].w": 2,
            "related[1].images[0].caption": "c",
        },
        id="related-entry",
    ),
    pytest.param(
        {"related": [{"webUrl": "https://e.com/1", "quality": "high", "note": "n"}]},
        None,
        id="dropped-related-entry-keeps-nothing",
    ),
    pytest.param(
        {"featuredContent": {"anything": 1}, "secured": "s", "heat": 3},
        None,
        id="known-keys-with-any-content",
    ),
    pytest.param(
        {"when": date(2020, 1, 2), "nested": {"k": [datetime(2020, 1, 2, tzinfo=UTC)]}},
        {"when": "2020-01-02", "nested": {"k": ["2020-01-02T00:00:00+00:00"]}},
        id="values-made-json",
    ),
]


@pytest.mark.parametrize(("fields", "extra"), UNKNOWN_KEYS)
def test_unknown_keys_land_in_extra(fields: dict[str, Any], extra: dict[str, Any] | None) -> None:
    assert doc(**fields).article.extra == extra


# --- rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("front_matter", "reason"),
    [
        pytest.param({"webUrl": URL}, "title", id="missing-title"),
        pytest.param({"title": None, "webUrl": URL}, "title", id="null-title"),
        pytest.param({"title": "", "webUrl": URL}, "title", id="empty-title"),
        pytest.param({"title": "   ", "webUrl": URL}, "title", id="blank-title"),
        pytest.param({"title": "\n\t ", "webUrl": URL}, "title", id="whitespace-title"),
        pytest.param({"title": "T"}, "webUrl", id="no-url"),
        pytest.param({"title": "T", "webUrl": None, "originalUrl": None}, "webUrl", id="null-urls"),
        pytest.param({"title": "T", "webUrl": "", "originalUrl": ""}, "webUrl", id="empty-urls"),
        pytest.param({"title": "T", "webUrl": "javascript:alert(1)"}, "webUrl", id="javascript"),
        pytest.param({"title": "T", "webUrl": "file:///etc/passwd"}, "webUrl", id="file"),
        pytest.param({"title": "T", "webUrl": "just some text"}, "webUrl", id="text"),
        pytest.param({"title": "T", "webUrl": "ftp://example.com/a"}, "webUrl", id="ftp"),
        pytest.param(
            {"title": "T", "webUrl": "javascript:x", "originalUrl": URL},
            "webUrl",
            id="bad-web-url-good-original",
        ),
        pytest.param(
            {"title": "T", "originalUrl": "file:///etc/passwd"}, "originalUrl", id="bad-original"
        ),
        pytest.param(
            {"title": "T", "webUrl": URL, "publishedDateTime": "tuesday"},
            "publishedDateTime",
            id="date-tuesday",
        ),
        pytest.param(
            {"title": "T", "webUrl": URL, "publishedDateTime": "2020-13-45"},
            "publishedDateTime",
            id="date-month-13",
        ),
        pytest.param(
            {"title": "T", "webUrl": URL, "publishedDateTime": "2021-02-30"},
            "publishedDateTime",
            id="date-feb-30",
        ),
        pytest.param(
            {"title": "T", "webUrl": URL, "publishedDateTime": "29/08/2021"},
            "publishedDateTime",
            id="date-dmy",
        ),
        pytest.param({"title": "T", "webUrl": URL, "quality": "high"}, "quality", id="quality"),
        pytest.param({"title": "T", "webUrl": URL, "quality": "12abc"}, "quality", id="quality-2"),
        pytest.param({"title": "T", "webUrl": URL, "quality": "9 1"}, "quality", id="quality-3"),
        pytest.param(
            {"title": "T", "webUrl": URL, "images": [{"url": "https://i/a.jpg", "width": "wide"}]},
            "width",
            id="image-width",
        ),
        pytest.param(
            {"title": "T", "webUrl": URL, "images": [{"url": "https://i/a.jpg", "width": "100px"}]},
            "width",
            id="image-width-px",
        ),
        pytest.param(
            {
                "title": "T",
                "webUrl": URL,
                "provider": {"name": "P", "images": [{"url": "https://i/p.jpg", "width": "x"}]},
            },
            "width",
            id="provider-image-width",
        ),
    ],
)
def test_rejections(front_matter: dict[str, Any], reason: str) -> None:
    with pytest.raises(DocumentError) as info:
        transform(raw(front_matter))
    assert reason in str(info.value)


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
