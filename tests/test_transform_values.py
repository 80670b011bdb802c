"""Table-driven tests of the values etl.transform.transform reads and rejects.

Dates (always UTC, from Python values and from YAML text on both parsers), the winner
among documents with one URL, lenient coercions of numeric strings, unknown keys kept in
articles.extra, and the values that reject a document.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from etl.extract.extract import extract
from etl.records import DocumentError, SourceFile, TransformedDocument, winner_key
from etl.transform.transform import transform
from tests.transform_cases import URL, doc, entry, raw


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
