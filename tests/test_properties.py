"""Property tests: generated and mutated front-matter through extract and transform.

Every input either transforms or raises ``DocumentError``; no other exception escapes
(the pipeline would report it as an "unexpected error", the CLI user would see a bug).
Documents that do transform must also be storable on every backend: no NUL in any
string, JSON columns JSON-serializable, integers within their columns.

Hypothesis runs derandomized (the same examples every run) so CI results are stable.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from etl.extract.extract import extract, parse_yaml
from etl.records import DocumentError, RawDocument, SourceFile, TransformedDocument
from etl.transform.transform import transform
from tests.helpers import SEEDS, dump_yaml

SOURCE = SourceFile(".", "doc.md")
SEED_FRONT_MATTER = parse_yaml(
    (SEEDS / "000_af0cddeac82c129c.md").read_text(encoding="utf-8").split("---\n", 2)[1], 2
)

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

INT32 = 2**31
INT64 = 2**63


# --- checking an outcome ------------------------------------------------------------------


def outcome(run: Callable[[], TransformedDocument]) -> TransformedDocument | DocumentError:
    """``run()``'s result, or the DocumentError it raised; anything else propagates."""
    try:
        return run()
    except DocumentError as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip(), repr(exc)
        assert (exc.line is None) == (exc.column is None), repr(exc)
        if exc.line is not None and exc.column is not None:
            assert exc.line >= 1 and exc.column >= 1, repr(exc)
        return exc


def transform_dict(front_matter: Any, body: str = "") -> TransformedDocument | DocumentError:
    return outcome(lambda: transform(RawDocument(SOURCE, "0" * 64, front_matter, body)))


def transform_bytes(data: bytes) -> TransformedDocument | DocumentError:
    return outcome(lambda: transform(extract(SOURCE, data=data)))


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            s for item in dataclasses.fields(value) for s in strings_in(getattr(value, item.name))
        ]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in strings_in(key) + strings_in(item)]
    if isinstance(value, list | tuple | set | frozenset):
        return [s for item in value for s in strings_in(item)]
    return []


def assert_storable(result: TransformedDocument | DocumentError) -> None:
    """A document that transformed can be written on every backend."""
    if isinstance(result, DocumentError):
        return
    article = result.article
    assert article.url.startswith("https://")
    assert isinstance(article.title, str) and article.title.strip()
    assert not any("\x00" in s for s in strings_in(result)), "a NUL reached the record"
    json.dumps(article.featured_content, allow_nan=False)
    json.dumps(article.extra, allow_nan=False)
    for name in ("quality", "heat"):
        number = getattr(article, name)
        assert number is None or -INT64 <= number < INT64, (name, number)
    images = [image for _, image in article.images] + list(article.provider.images)
    for image in images:
        for size in (image.width, image.height):
            assert size is None or -INT32 <= size < INT32, image


# --- strategies ---------------------------------------------------------------------------

INTERESTING_TEXT = [
    "",
    " ",
    "tuesday",
    "2020-13-45",
    "2023-12-20T05:29:00",
    "2023-12-20T05:29:00+05:30",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "https://",
    "https://www.example.com/a/?utm_source=x&fbclid=1#frag",
    "http://[::1",
    "http://[::1]:80/x",
    "https://a.com:99999/",
    "https://user:pass@a.com/",
    "//host/path",
    "https://\u2100.com/",
    "Provider%00Name",
    "%zz%",
    "1e400",
    "nan",
    "-0",
    "0x10",
    "\uff11\uff12",
    "'); DROP TABLE articles; --",
    "\u202e\u200f\U0001f600",
    "\x00",
    "a\tb\nc",
]

texts = st.one_of(st.text(max_size=40), st.sampled_from(INTERESTING_TEXT))
# What YAML gives without tags: offsets are whole minutes; sets and bytes need !!set/!!binary.
offsets = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5)), timezone(-timedelta(hours=9, minutes=30))]
)
INTERESTING_VALUES = [
    2**31,
    2**63,
    -(2**63) - 1,
    float("nan"),
    float("inf"),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=5))),
    date(1, 1, 1),
]
scalars = st.one_of(
    st.sampled_from(INTERESTING_VALUES),
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    texts,
    st.datetimes(timezones=offsets),
    st.dates(),
)
keys = st.one_of(
    texts,
    st.sampled_from(["title", "webUrl", "originalUrl", "provider", "topics", "related"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
odd_keys = st.one_of(st.integers(), st.none(), st.booleans(), st.dates(), st.tuples(st.text()))


KNOWN_FIELDS = {
    *((name,) for name in ("title", "webUrl", "originalUrl", "publishedDateTime", "quality")),
    *((name,) for name in ("heat", "topics", "featuredContent", "published", "removed")),
    ("provider", "name"),
    ("provider", "domain"),
    ("provider", "images", 0, "width"),
    ("images", 0, "url"),
    ("images", 0, "width"),
    ("images", 0, "height"),
    ("related", 0, "webUrl"),
    ("related", 0, "publishedDateTime"),
    ("related", 0, "provider", "name"),
    ("related", 0, "provider", "domain"),
    ("related", 0, "quality"),
}


def all_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*prefix, key))
            found.extend(all_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*prefix, index))
            found.extend(all_paths(item, (*prefix, index)))
    return found


def container(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@st.composite
def mutated_front_matter(draw: st.DrawFn, *, yaml_safe: bool = False) -> dict[str, Any]:
    """The seed's front-matter with 1-6 random edits (replace, delete, inject, add, retype,
    or an edge-case value for a field the model knows)."""
    doc = copy.deepcopy(SEED_FRONT_MATTER)
    value_strategy = values
    operations = ["replace", "delete", "inject", "add", "stringify", "odd_key", "field"]
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        paths = all_paths(doc)
        op = draw(st.sampled_from(operations))
        if not paths:
            op = "add"
        if op == "field":
            known = [path for path in paths if path in KNOWN_FIELDS]
            if known:
                path = draw(st.sampled_from(known))
                edge = st.sampled_from(INTERESTING_VALUES + INTERESTING_VALUES + INTERESTING_TEXT)
                container(doc, path[:-1])[path[-1]] = draw(edge)
                continue
            op = "replace"
        path = draw(st.sampled_from(paths)) if paths else ()
        parent: Any = container(doc, path[:-1]) if path else doc
        key: Any = path[-1] if path else None
        if op == "replace":
            parent[key] = draw(value_strategy)
        elif op == "delete":
            del parent[key]
        elif op == "inject":
            current = parent[key]
            text = current if isinstance(current, str) else str(current)
            at = draw(st.integers(min_value=0, max_value=len(text)))
            parent[key] = text[:at] + draw(texts) + text[at:]
        elif op == "stringify":
            parent[key] = str(parent[key])
        elif op == "odd_key" and not yaml_safe and isinstance(parent, dict):
            parent[draw(odd_keys)] = draw(value_strategy)
        else:
            target = parent if isinstance(parent, dict) else doc
            target[draw(keys)] = draw(value_strategy)
    return doc


# --- the properties -----------------------------------------------------------------------


def test_seed_transforms() -> None:
    """The starting point of every mutation is itself a valid document."""
    result = transform_dict(copy.deepcopy(SEED_FRONT_MATTER))
    assert isinstance(result, TransformedDocument), result
    assert_storable(result)


@PROPERTY_SETTINGS
@given(front_matter=mutated_front_matter(), body=st.text(max_size=20))
def test_mutated_front_matter_transforms_or_is_rejected(
    front_matter: dict[str, Any], body: str
) -> None:
    transform_dict(front_matter, body)


@PROPERTY_SETTINGS
@given(front_matter=mutated_front_matter(), body=st.text(max_size=20))
def test_transformed_documents_are_storable(front_matter: dict[str, Any], body: str) -> None:
    # A NUL given to transform is extract's to refuse (tested there); one that transform
    # makes itself (e.g. by URL-decoding "%00") is not.
    assume("\x00" not in body and not any("\x00" in s for s in strings_in(front_matter)))
    assert_storable(transform_dict(front_matter, body))


@PROPERTY_SETTINGS
@given(
    front_matter=mutated_front_matter(yaml_safe=True),
    injections=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1),
            texts | st.sampled_from(list(":-[]{}&*!|>'\"#%@`\t")),
        ),
        max_size=4,
    ),
    body=st.text(max_size=40),
)
def test_mutated_files_extract_and_transform_or_are_rejected(
    front_matter: dict[str, Any], injections: list[tuple[float, str]], body: str
) -> None:
    """Serialized to YAML, then random text injected anywhere in the front-matter."""
    text = dump_yaml(front_matter)
    for where, piece in injections:
        at = int(where * len(text))
        text = text[:at] + piece + text[at:]
    transform_bytes(f"---\n{text}---\n{body}".encode("utf-8", "surrogatepass"))


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(front_matter=mutated_front_matter(yaml_safe=True), body=st.text(max_size=20))
def test_transformed_files_are_storable(front_matter: dict[str, Any], body: str) -> None:
    """Through the whole of extract: whatever it lets through can be written everywhere."""
    assume("\x00" not in body)
    assert_storable(
        transform_bytes(
            f"---\n{dump_yaml(front_matter)}---\n{body}".encode("utf-8", "surrogatepass")
        )
    )


@PROPERTY_SETTINGS
@given(
    head=st.sampled_from([b"", b"---\n", b"\xef\xbb\xbf---\r\n", b"---\ntitle: x\n"]),
    payload=st.binary(max_size=200),
    tail=st.sampled_from([b"", b"\n---\n", b"\n...\nbody"]),
)
def test_arbitrary_bytes_are_rejected_or_transform(
    head: bytes, payload: bytes, tail: bytes
) -> None:
    transform_bytes(head + payload + tail)


@PROPERTY_SETTINGS
@given(front_matter=st.dictionaries(keys | odd_keys, values, max_size=8))
def test_arbitrary_mappings_transform_or_are_rejected(front_matter: dict[Any, Any]) -> None:
    transform_dict(front_matter)


@PROPERTY_SETTINGS
@given(top=values)
def test_arbitrary_yaml_documents_parse_or_are_rejected(top: Any) -> None:
    try:
        text = dump_yaml(top)
    except yaml.YAMLError:
        return
    transform_bytes(f"---\n{text}---\n".encode("utf-8", "surrogatepass"))


# --- inputs found to escape, kept as fixed regression examples ------------------------------
# Each once raised something other than DocumentError (or made an unstorable record).
# Some are now rejected, the others now load; each case says which, and what comes out.

HEAD = "title: T\nwebUrl: https://a.example.com/x\n"


def transform_text(front_matter: str) -> TransformedDocument | DocumentError:
    return transform_bytes(f"---\n{front_matter}---\n".encode())


@pytest.mark.parametrize(
    ("front_matter", "reason"),
    [
        pytest.param(
            HEAD + "publishedDateTime: 9999-12-31T23:59:59-05:00\n",
            r"^publishedDateTime: .*out of range in UTC",
            id="date-overflows-utc-max",
        ),
        pytest.param(
            HEAD + "publishedDateTime: '0001-01-01T00:00:00+05:00'\n",
            r"^publishedDateTime: .*out of range in UTC",
            id="date-underflows-utc-min",
        ),
        pytest.param(
            HEAD + "nested:\n" + "- " * 600 + "1\n",
            r"nested deeper than 64 levels",
            id="nested-600-deep",
        ),
        pytest.param(
            HEAD + "nested:\n" + "-  " * 600 + "1\n",
            r"nested deeper than 64 levels",
            id="nested-600-deep-two-spaces",
        ),
    ],
)
def test_known_escapes_raise_document_error(front_matter: str, reason: str) -> None:
    result = transform_text(front_matter)
    assert isinstance(result, DocumentError), result
    assert re.search(reason, result.reason), result.reason


def test_known_escape_bad_ipv6_provider_domain_falls_back_to_the_article_host() -> None:
    """``http://[::1`` is no usable domain: the provider takes the article's host."""
    result = transform_text(HEAD + "provider:\n  domain: 'http://[::1'\n")
    assert isinstance(result, TransformedDocument), result
    assert result.article.provider.domain == "a.example.com"
    assert_storable(result)


def test_known_escape_bad_ipv6_snippet_provider_domain_falls_back_to_the_link_host() -> None:
    result = transform_text(
        HEAD + "related:\n  - webUrl: https://b.example.com/\n    provider: {domain: 'http://[x'}\n"
    )
    assert isinstance(result, TransformedDocument), result
    [link] = result.article.links
    assert link.url == "https://b.example.com/"
    assert link.provider is not None and link.provider.domain == "b.example.com"
    assert_storable(result)


def test_known_escape_related_date_out_of_range_drops_the_entry_with_a_warning() -> None:
    result = transform_text(
        HEAD + "related:\n  - webUrl: https://b.example.com/\n"
        "    publishedDateTime: 0001-01-01T00:00:00+05:00\n"
    )
    assert isinstance(result, TransformedDocument), result
    assert result.article.links == ()
    assert len(result.warnings) == 1
    assert re.search(
        r"^related\[0\] dropped: publishedDateTime: .*out of range", result.warnings[0]
    )
    assert_storable(result)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not a date", id="timestamp-tag-on-text"),
        pytest.param("1930-01-01 00:00:00+02:06:28", id="timestamp-tag-offset-with-seconds"),
    ],
)
def test_known_escape_timestamp_tag_that_is_no_date_stays_text(value: str) -> None:
    """``!!timestamp`` on text no date can hold: kept as the text, as without the tag."""
    result = transform_text(f"{HEAD}when: !!timestamp '{value}'\n")
    assert isinstance(result, TransformedDocument), result
    assert result.article.extra == {"when": value}
    assert_storable(result)


@pytest.mark.parametrize(
    ("front_matter", "reason"),
    [
        pytest.param(HEAD + "provider:\n  name: P%00Q\n", r"NUL", id="percent-nul"),
        pytest.param(
            HEAD + "related:\n  - webUrl: https://b.example.com/\n    provider: {name: 'R%00'}\n",
            r"NUL",
            id="percent-nul-in-snippet-provider",
        ),
        pytest.param(HEAD + "featuredContent: !!set {a, b}\n", r"tag.*set", id="set"),
        pytest.param(
            HEAD + "quality: 99999999999999999999\n",
            r"^quality: .*9223372036854775807",
            id="bigint",
        ),
        pytest.param(
            HEAD + "images:\n  - url: https://i.example.com/a.jpg\n    width: 4294967296\n",
            r"^images\.0\.width: .*2147483647",
            id="int32",
        ),
    ],
)
def test_known_unstorable_records_are_rejected(front_matter: str, reason: str) -> None:
    result = transform_text(front_matter)
    assert isinstance(result, DocumentError), result
    assert re.search(reason, result.reason), result.reason


@pytest.mark.parametrize(
    "text",
    [
        HEAD + "excerpt: E \x00 end\n---\n",
        HEAD + "# note \x00\nexcerpt: E\n---\n",
        HEAD + "---\nbody \x00\n",
    ],
    ids=["in-value", "in-comment", "in-body"],
)
def test_raw_nul_is_rejected_not_truncated(text: str) -> None:
    result = transform_bytes(f"---\n{text}".encode())
    assert isinstance(result, DocumentError), result
    assert "NUL" in result.reason


def test_nan_and_infinity_in_json_fields() -> None:
    result = transform_bytes(
        f"---\n{HEAD}featuredContent: [.nan, .inf, -.inf]\ncustom: .nan\n---\n".encode()
    )
    assert_storable(result)
    assert isinstance(result, TransformedDocument)
    assert result.article.featured_content == [None, None, None]


def test_strings_in_walks_records() -> None:
    """Guard for the checker itself: it does find a NUL buried in a record."""
    result = transform_dict(copy.deepcopy(SEED_FRONT_MATTER))
    assert isinstance(result, TransformedDocument)
    poisoned = dataclasses.replace(
        result,
        article=dataclasses.replace(result.article, extra={"k": ["a", {"b": "\x00"}]}),
    )
    assert any("\x00" in s for s in strings_in(poisoned))
