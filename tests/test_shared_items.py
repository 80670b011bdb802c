"""A front-matter's long sequences parsed item by item (etl.extract.shared_items) give
exactly the whole text's parse, or decline (None) and leave it to the whole parse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml_rs
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.extract import shared_items
from etl.extract.extract import decode, parse_yaml, split_front_matter
from etl.extract.shared_items import parse_by_items
from etl.records import DocumentError


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every sequence is long enough to cut, and no item is cached from another test."""
    monkeypatch.setattr(shared_items, "MIN_BLOCK", 1)
    shared_items._parsed.clear()
    yield
    shared_items._parsed.clear()


def whole(text: str) -> Any:
    return yaml_rs.loads(text)


def outcome(parse: Any, text: str) -> tuple[str, Any]:
    try:
        return "value", parse(text)
    except yaml_rs.YAMLDecodeError:
        return "error", None


def assert_same_as_whole(text: str) -> Any:
    """The pieces' parse equals the whole text's, or the pieces decline or fail where
    the whole fails; returns what ``parse_by_items`` gave."""
    kind, expected = outcome(whole, text)
    got_kind, got = outcome(lambda t: parse_by_items(t, whole), text)
    if got_kind == "value" and got is not None:
        assert kind == "value", f"cut and parsed a text the whole parse refuses: {text!r}"
        assert got == expected
    return got


CUT = [
    # (id, text): texts whose sequences are cut (and must equal the whole parse).
    ("indent-2", "title: t\nrelated:\n  - title: a\n    quality: 1\n  - title: b\nheat: 2\n"),
    ("indent-0", "related:\n- title: a\n  excerpt: x\n- title: b\nheat: 2\n"),
    ("indent-4", "related:\n    - a: 1\n      b: [1, 2]\n    - c\n"),
    ("at-end-no-newline", "x: 1\nrelated:\n  - a: 1\n  - b: 2"),
    ("blank-lines", "related:\n  - a: 1\n\n\n  - b: 2\n\nz: 3\n"),
    ("short-blank-line", "related:\n  - a: |\n      one\n \n      two\n  - b\n"),
    ("comment-inside", "related:\n  - a: 1\n    # a note\n  - b: 2 # trailing\n"),
    ("keep-chomping", "related:\n  - a: |+\n      text\n\n  - b: >-\n      folded\n      line\n"),
    ("indent-indicator", "related:\n  - |2\n      indented\n  - x\n"),
    ("plain-multiline", "related:\n  - title: a long\n      plain title\n  - b\n"),
    ("quoted-multiline", "related:\n  - title: \"a quoted\n      title\"\n  - 'it''s'\n"),
    ("dash-alone", "related:\n  -\n    title: a\n  - - nested\n    - seq\n"),
    ("flow-multiline", "related:\n  - {a: 1,\n     b: 2}\n  - [x,\n     y]\n"),
    ("two-sequences", "a:\n  - 1\n  - 2\nb: x\nc:\n- 3\n- 4\n"),
    ("trailing-spaces-key", "related:   \n  - a\n  - b\nz: 1\n"),
    (
        "dates-and-null",
        "related:\n  - when: 2020-05-11T13:00:00Z\n    n: ~\n  - when: 2020-05-11\n",
    ),
]


@pytest.mark.parametrize("text", [text for _, text in CUT], ids=[name for name, _ in CUT])
def test_cut_sequences_parse_as_the_whole_text(text: str) -> None:
    assert assert_same_as_whole(text) is not None


DECLINED = [
    # A comment line at the sequence's indentation or less, between its items.
    ("comment-at-column-0", "related:\n  - a\n# note\n  - b\n"),
    ("comment-at-the-indentation", "related:\n  - a\n  # note\n  - b\n"),
    # A line less indented than the items that does not start a top-level key.
    ("shallower-line", "related:\n    - a\n  b: 1\n"),
    ("dash-without-space", "related:\n  - a\n  -b\n"),
]


@pytest.mark.parametrize("text", [text for _, text in DECLINED], ids=[n for n, _ in DECLINED])
def test_texts_that_cannot_be_cut_safely_are_left_whole(text: str) -> None:
    assert parse_by_items(text, whole) is None  # declined, not parsed (nor failed)
    kind, expected = outcome(whole, text)
    if kind == "value":
        assert parse_yaml(text) == expected


@pytest.mark.parametrize("text", [text for _, text in DECLINED], ids=[n for n, _ in DECLINED])
def test_items_seen_before_do_not_hide_a_line_that_cannot_be_cut_around(text: str) -> None:
    """Each item of the text seen before, as an item followed by another: the text is
    still declined (the items taken from the cache end before the line in question)."""
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if stripped.startswith("- "):
            pad = " " * (len(line) - len(stripped))
            parse_by_items(f"related:\n{line}\n{pad}- after\n{pad}- last\n", whole)
    assert shared_items._parsed  # the warming texts were cut
    assert parse_by_items(text, whole) is None


BROKEN = [
    ("open-quote", 'related:\n  - title: "open\n  - b\n'),
    ("bad-indent", "related:\n  - a: 1\n     b: 2\n"),
    ("duplicate-key", "related:\n  - a\nrelated:\n  - b\n"),
    ("duplicate-in-item", "related:\n  - a: 1\n    a: 2\n"),
    # A key line inside a quoted scalar: yaml-rs refuses the under-indented line.
    ("key-in-a-scalar", 'title: "x\nrelated:\n  - y"\n'),
    ("flow-over-the-key", "{a: 1,\nrelated:\n  - x, b: 2}\n"),
]


@pytest.mark.parametrize("text", [text for _, text in BROKEN], ids=[n for n, _ in BROKEN])
def test_texts_the_whole_parse_refuses_are_never_given_a_value(text: str) -> None:
    assert outcome(whole, text)[0] == "error"
    kind, value = outcome(lambda t: parse_by_items(t, whole), text)
    assert kind == "error" or value is None
    # parse_yaml reports the whole text's error, with its position.
    with pytest.raises(DocumentError):
        parse_yaml(text)


def test_items_seen_before_come_from_the_cache() -> None:
    text = "related:\n  - title: a\n  - title: b\n"
    first = parse_by_items(text, whole)
    calls: list[str] = []

    def counting(piece: str) -> Any:
        calls.append(piece)
        return whole(piece)

    assert parse_by_items(text, counting) == first
    assert calls == ["related: []\n"]  # only the rest of the text was parsed again


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_items, "CACHE_ITEMS", 10)
    for index in range(50):
        parse_by_items(f"related:\n  - {index}\n  - x{index}\n", whole)
        assert sum(len(cached) for cached in shared_items._parsed.values()) <= 10


# Generated sequences: items from pieces that stress the cutting (blank and comment
# lines, block scalars, multi-line scalars, nested sequences, flow collections).
PIECES = [
    "title: plain",
    'title: "a \\"quoted\\" - title"',
    "excerpt: |\n  line one\n\n  - not an item\n",
    "excerpt: >+\n  folded\n\n",
    "excerpt: a plain\n  continued line",
    'excerpt: "quoted\n  over lines"',
    "# a comment\ntitle: x",
    "nested:\n- a\n- b",
    "flow: {a: 1,\n  b: [2, 3]}",
    "when: 2021-01-02T03:04:05Z",
    "n: 12",
    "empty:",
]


@st.composite
def documents(draw: st.DrawFn) -> str:
    indent = draw(st.sampled_from([0, 1, 2, 4]))
    pad = " " * indent
    lines = ["title: head"]
    for key in draw(st.lists(st.sampled_from(["related", "images", "other"]), min_size=1)):
        lines.append(f"{key}:")
        for _ in range(draw(st.integers(1, 4))):
            body = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=3))
            text = "\n".join(body)
            item_lines = text.split("\n")
            first, rest = item_lines[0], item_lines[1:]
            lines.append(f"{pad}- {first}")
            lines.extend(f"{pad}  {line}" if line else "" for line in rest)
            if draw(st.booleans()):
                lines.append(draw(st.sampled_from(["", "   ", "# between", f"{pad}# between"])))
        if draw(st.booleans()):
            lines.append("heat: 1")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(max_examples=300, deadline=None)
@given(documents())
def test_generated_sequences_parse_as_the_whole_text(text: str) -> None:
    shared_items._parsed.clear()
    assert_same_as_whole(text)
    assert_same_as_whole(text)  # again, from the cache


@settings(max_examples=300, deadline=None)
@given(st.lists(documents(), min_size=2, max_size=4))
def test_generated_sequences_parse_as_the_whole_text_after_others(texts: list[str]) -> None:
    """Items seen in other documents (the cache), then cut from this one: still exactly
    the whole text's parse."""
    shared_items._parsed.clear()
    for text in texts:
        assert_same_as_whole(text)


@pytest.mark.corpus
def test_corpus_front_matter_parses_as_the_whole_text(
    corpus_news: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the shared corpus with the real threshold: parse_yaml (items cut, cached) gives
    exactly yaml_rs's parse of each whole front-matter, and most documents are cut."""
    monkeypatch.setattr(shared_items, "MIN_BLOCK", 2048)  # the product's own threshold
    cut = 0
    for path in sorted(corpus_news.glob("*.md")):
        front_matter, _, _ = split_front_matter(decode(path.read_bytes()))
        if parse_by_items(front_matter, whole) is not None:
            cut += 1
        assert parse_yaml(front_matter) == whole(front_matter), path.name
    assert cut > 3000
