"""Table-driven tests of the normalization rules in etl.transform.transform.

Canonical URLs, provider domains and names, topic slugs, and the images a document
keeps: each rule is a table of cases (the README's "Normalization rules").
"""

from __future__ import annotations

from typing import Any

import pytest

from etl.transform.transform import (
    canonical_url,
    normalize_domain,
    normalize_provider_name,
    topic_slug,
)
from tests.transform_cases import doc

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
