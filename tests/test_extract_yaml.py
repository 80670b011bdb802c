"""Tests of etl.extract.extract's safe YAML: errors, duplicates, tags, aliases, NUL.

Syntax errors give their line and column in the file; duplicate keys, python tags (never
executed), aliases (billion laughs) and NUL characters are rejected.

YAML cases run twice where it matters: once as written (the fast yaml_rs path) and once
with an excerpt line that makes etl.extract.extract take its strict PyYAML path, so both parsers
are held to the same rules.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from etl.extract.extract import _nesting_hint, may_use_tags_or_aliases, split_front_matter
from etl.records import DocumentError
from tests.extract_cases import run

# A realistic excerpt (" *i" starts a token) that sends a document down the strict path.
STRICT_PATH_LINE = "excerpt: This is *important* news"


def lines_to_bytes(lines: list[str], strict: bool) -> tuple[bytes, int]:
    """The file for ``lines`` (opening --- first); with ``strict``, one extra line after it.

    Returns the bytes and how far line numbers moved.
    """
    if strict:
        lines = [lines[0], STRICT_PATH_LINE, *lines[1:]]
    data = ("\n".join(lines) + "\n").encode()
    front_matter = split_front_matter(data.decode())[0]
    assert may_use_tags_or_aliases(front_matter) == strict, "the case does not take its path"
    return data, int(strict)


PATHS = [pytest.param(False, id="fast"), pytest.param(True, id="strict")]


# --- YAML syntax errors: line and column, counted in the file ----------------------------


@pytest.mark.parametrize("strict", PATHS)
@pytest.mark.parametrize(
    ("lines", "first", "last"),
    [
        pytest.param(["---", "title: x", "provider:", "\tname: y", "---"], 4, 4, id="tab-indent"),
        pytest.param(["---", "title: x", "topics:", "\t- AI", "---"], 4, 4, id="tab-list"),
        pytest.param(["---", "\ttitle: x", "---"], 2, 2, id="tab-first-line"),
        pytest.param(
            ["---", "title: x", 'excerpt: "abc', "quality: 1", "---"], 3, 5, id="unclosed-quote"
        ),
        pytest.param(["---", 'title: "abc', "---", "body"], 2, 3, id="unclosed-quote-last"),
        pytest.param(["---", "title: 'abc", "---"], 2, 3, id="unclosed-single-quote"),
        pytest.param(["---", "title: x", "topics: [a, b", "---"], 3, 4, id="unclosed-bracket"),
        pytest.param(["---", "title: x", "excerpt: a: b", "---"], 3, 3, id="mapping-in-value"),
        pytest.param(
            ["---", "title: x", "provider:", "  name: a", " domain: b", "---"],
            5,
            5,
            id="bad-indent",
        ),
    ],
)
def test_yaml_error_position(
    lines: list[str], first: int, last: int, strict: bool, tmp_path: Path
) -> None:
    data, shift = lines_to_bytes(lines, strict)
    with pytest.raises(DocumentError) as info:
        run(data, tmp_path)
    error = info.value
    assert error.reason.startswith("YAML")
    assert error.line is not None and first + shift <= error.line <= last + shift, str(error)
    assert isinstance(error.column, int)
    assert 1 <= error.column <= len(data.decode().split("\n")[error.line - 1]) + 1, str(error)
    assert f"line {error.line}" in str(error)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"---\r\ntitle: x\r\nprovider:\r\n\tname: y\r\n---\r\n", id="crlf"),
        pytest.param(b"\xef\xbb\xbf---\ntitle: x\nprovider:\n\tname: y\n---\n", id="bom"),
    ],
)
def test_yaml_error_line_with_bom_or_crlf(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as info:
        run(data, tmp_path)
    assert info.value.line == 4


# --- duplicate keys ---------------------------------------------------------------------


@pytest.mark.parametrize("strict", PATHS)
@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(["---", "title: a", "title: b", "---"], id="top-level"),
        pytest.param(["---", "title: a", "webUrl: x", "title: a", "---"], id="same-value"),
        pytest.param(
            ["---", "title: a", "provider:", "  name: a", "  name: b", "---"], id="nested"
        ),
        pytest.param(
            ["---", "title: a", "related:", "  - webUrl: x", "    webUrl: y", "---"],
            id="in-list-item",
        ),
        pytest.param(["---", "title: a", "provider: {name: a, name: b}", "---"], id="flow"),
    ],
)
def test_duplicate_keys_rejected(lines: list[str], strict: bool, tmp_path: Path) -> None:
    data, _ = lines_to_bytes(lines, strict)
    with pytest.raises(DocumentError, match=r"(?i)duplicate"):
        run(data, tmp_path)


# --- python tags: rejected, and never executed -------------------------------------------

TAGGED = [
    pytest.param("title: !!python/object/apply:os.system [{cmd}]", id="apply"),
    pytest.param("title: !!python/object/new:os.system [{cmd}]", id="new"),
    pytest.param(
        'title: !!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
        id="subprocess",
    ),
    pytest.param("title: !!python/name:os.system", id="name"),
    pytest.param("title: !!python/module:os", id="module"),
    pytest.param("title: x\ntopics:\n  - !!python/object/apply:os.system [{cmd}]", id="in-list"),
    pytest.param("title: x\ntopics: [!!python/object/apply:os.system [{cmd}]]", id="in-flow-list"),
    pytest.param("!!python/object/apply:os.system [{cmd}]", id="whole-document"),
    pytest.param(
        "title: x\nprovider:\n  name: !!python/object/apply:os.system [{cmd}]", id="nested"
    ),
    pytest.param(
        "title: x\nprovider: {{name: !!python/object/apply:os.system [{cmd}]}}", id="in-flow-map"
    ),
    # YAML 1.2 lets a value follow ':' directly after a quoted key in a flow mapping.
    pytest.param('{{"title":!!python/object/apply:os.system [{cmd}]}}', id="json-style"),
    pytest.param(
        'title: x\nprovider: {{"name":!!python/object/apply:os.system [{cmd}]}}',
        id="json-style-nested",
    ),
]


@pytest.mark.parametrize("yaml_text", TAGGED)
def test_python_tags_rejected(yaml_text: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    text = yaml_text.format(cmd=f'"touch {marker}"', marker=marker)
    with pytest.raises(DocumentError):
        run(f"---\n{text}\n---\n".encode(), tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("yaml_text", TAGGED)
def test_python_tags_never_run(yaml_text: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    text = yaml_text.format(cmd=f'"touch {marker}"', marker=marker)
    with contextlib.suppress(DocumentError):
        run(f"---\n{text}\n---\n".encode(), tmp_path)
    assert not marker.exists()


# --- anchors and aliases ----------------------------------------------------------------


@pytest.mark.parametrize(
    "yaml_text",
    [
        pytest.param("title: &t x\nexcerpt: *t", id="scalar-alias"),
        pytest.param("title: x\na: &l [1, 2]\nb: *l", id="list-alias"),
        pytest.param("title: x\nbase: &b {k: 1}\nother:\n  <<: *b", id="merge-key"),
        pytest.param("title: x\nrelated:\n  - &r {webUrl: a}\n  - *r", id="in-list"),
        pytest.param('{"title":"x","a":&a ["lol"],"b":{"k":*a}}', id="json-style"),
        pytest.param('title: x\na: {"k":&x 1}\nb: {"k":*x}', id="json-style-nested"),
    ],
)
def test_aliases_and_anchors_rejected(yaml_text: str, tmp_path: Path) -> None:
    with pytest.raises(DocumentError):
        run(f"---\n{yaml_text}\n---\n".encode(), tmp_path)


def test_anchor_without_alias_is_harmless(tmp_path: Path) -> None:
    # An anchor alone expands nothing; only aliases are refused.
    assert run(b"---\ntitle: &t x\n---\n", tmp_path).front_matter == {"title": "x"}


def _billion_laughs_block() -> str:
    lines = ["title: x", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines)


def _billion_laughs_flow() -> str:
    parts = ['"title":"x"', '"a":&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        inner = ",".join(f'"k{j}":*{prev}' for j in range(9))
        parts.append(f'"{name}":&{name} {{{inner}}}')
    return "{" + ",".join(parts) + "}"


@pytest.mark.parametrize(
    "yaml_text",
    [
        pytest.param(_billion_laughs_block(), id="block"),
        pytest.param(_billion_laughs_flow(), id="json-style-flow"),
    ],
)
def test_billion_laughs_rejected_fast(yaml_text: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(DocumentError):
        run(f"---\n{yaml_text}\n---\n".encode(), tmp_path)
    assert time.perf_counter() - started < 1.0


# --- NUL characters -----------------------------------------------------------------------


@pytest.mark.parametrize("strict", PATHS)
@pytest.mark.parametrize(
    "line",
    [
        pytest.param('title: "a\\0b"', id="escape-0"),
        pytest.param('title: "a\\x00b"', id="escape-x00"),
        pytest.param('title: "a\\u0000b"', id="escape-u0000"),
        pytest.param('title: "a\\U00000000b"', id="escape-U00000000"),
        pytest.param('title: "\\0"', id="only-nul"),
        pytest.param('title: x\n"k\\0": v', id="in-key"),
        pytest.param('title: x\ntopics: [ok, "a\\0"]', id="in-list"),
        pytest.param('title: x\nprovider:\n  name: "a\\0"', id="nested"),
        pytest.param('title: x\nrelated:\n  - title: "a\\x00"', id="in-related"),
        pytest.param('title: "a\\\n  \\0b"', id="after-line-continuation"),
        pytest.param("title: a\x00b", id="raw-in-plain-value"),
        pytest.param("title: a\x00b\nexcerpt: c\nwebUrl: https://example.com/", id="raw-then-more"),
        pytest.param("title: 'a\x00b'", id="raw-in-single-quotes"),
        pytest.param('title: "a\x00b"', id="raw-in-double-quotes"),
        pytest.param("title: x\nexcerpt: \x00", id="raw-alone"),
    ],
)
def test_nul_rejected(line: str, strict: bool, tmp_path: Path) -> None:
    data, _ = lines_to_bytes(["---", line, "---", "body"], strict)
    with pytest.raises(DocumentError):
        run(data, tmp_path)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"---\ntitle: x\n---\nbo\x00dy\n", id="in-body"),
        pytest.param(b"---\ntitle: x\n---\n\x00", id="body-is-nul"),
    ],
)
def test_nul_in_body_rejected(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(DocumentError):
        run(data, tmp_path)


@pytest.mark.parametrize(
    ("line", "value"),
    [
        pytest.param('title: "a\\\\0b"', "a\\0b", id="escaped-backslash-zero"),
        pytest.param("title: a\\0b", "a\\0b", id="plain-backslash-zero"),
        pytest.param("title: 'a\\x00b'", "a\\x00b", id="single-quoted-escape-text"),
        pytest.param('title: "a\\tb"', "a\tb", id="other-escape"),
    ],
)
def test_nul_lookalikes_accepted(line: str, value: str, tmp_path: Path) -> None:
    assert run(f"---\n{line}\n---\n".encode(), tmp_path).front_matter == {"title": value}


# --- the nesting hint ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        pytest.param("title: a - b\nrelated:\n  - x: 1\n  - y\n", 0, id="no-pair"),
        pytest.param("a:\n- - - x\n", 3, id="three-single-spaces"),
        pytest.param("a:\n  -  - x\n", 2, id="two-spaces"),
        pytest.param("a:\n-\t- x\n", 2, id="tab"),
        pytest.param("a:\n- \t - x\n", 2, id="space-then-tab"),
        pytest.param("a:\n-\t\t-\t- x\n", 3, id="tabs"),
        pytest.param("a: x -  y\nb:\n- - z\n", 2, id="a-pair-elsewhere"),
        pytest.param("a: [[[1]]]\n", 0, id="few-brackets"),
        pytest.param("a: " + "[" * 70 + "]" * 70 + "\n", 70, id="many-brackets"),
    ],
)
def test_nesting_hint_counts_nested_dashes_and_brackets(text: str, depth: int) -> None:
    assert _nesting_hint(text) == depth
