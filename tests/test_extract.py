"""Tests of etl.extract.extract: discovery, limits, decoding, front-matter and safe YAML.

YAML cases run twice where it matters: once as written (the fast yaml_rs path) and once
with an excerpt line that makes etl.extract.extract take its strict PyYAML path, so both parsers
are held to the same rules.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from etl.extract.extract import (
    extract,
    may_use_tags_or_aliases,
    read_bytes,
    split_front_matter,
)
from etl.extract.sources import SourceSpec, discover_source
from etl.records import DocumentError, RawDocument, SourceFile

# A realistic excerpt (" *i" starts a token) that sends a document down the strict path.
STRICT_PATH_LINE = "excerpt: This is *important* news"


def run(data: bytes, tmp_path: Path, max_bytes: int | None = None) -> RawDocument:
    """Extract ``data`` written to a file, as the pipeline does."""
    path = tmp_path / "doc.md"
    path.write_bytes(data)
    source = SourceFile(str(tmp_path), "doc.md")
    return extract(source) if max_bytes is None else extract(source, max_bytes=max_bytes)


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


# --- accepted files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "front_matter", "body"),
    [
        pytest.param(b"---\ntitle: x\n---\nbody\n", {"title": "x"}, "body\n", id="plain"),
        pytest.param(b"---\ntitle: x\n...\nbody\n", {"title": "x"}, "body\n", id="dots-close"),
        pytest.param(b"---\ntitle: x\n---\n", {"title": "x"}, "", id="no-body"),
        pytest.param(b"---\ntitle: x\n---", {"title": "x"}, "", id="no-final-newline"),
        pytest.param(
            b"\xef\xbb\xbf---\ntitle: x\n---\nbody\n", {"title": "x"}, "body\n", id="utf8-bom"
        ),
        pytest.param(b"---\r\ntitle: x\r\n---\r\nbody\r\n", {"title": "x"}, "body\n", id="crlf"),
        pytest.param(
            b"\xef\xbb\xbf---\r\ntitle: x\r\nexcerpt: y\r\n...\r\nbody\r\n",
            {"title": "x", "excerpt": "y"},
            "body\n",
            id="bom-crlf-dots",
        ),
        pytest.param(b"---\ntitle: x\n--- \t\nbody\n", {"title": "x"}, "body\n", id="blanks-after"),
        pytest.param(
            b"---\ntitle: x\n...\nmid\n---\nend\n",
            {"title": "x"},
            "mid\n---\nend\n",
            id="dots-before-dashes",
        ),
        pytest.param(
            b"---\ntitle: x\n---x: 1\n...y: 2\n---\nbody\n",
            {"title": "x", "---x": 1, "...y": 2},
            "body\n",
            id="marker-prefixed-keys",
        ),
        pytest.param(
            b"---\ntitle: x\n---\nbefore\n---\nafter\n...\n",
            {"title": "x"},
            "before\n---\nafter\n...\n",
            id="later-markers-are-body",
        ),
        pytest.param(
            b"---\ntitle: x\nprovider:\n  name: a\n  domain: b\n---\n",
            {"title": "x", "provider": {"name": "a", "domain": "b"}},
            "",
            id="nested",
        ),
        pytest.param(
            b'---\ntitle: "---"\n---\n', {"title": "---"}, "", id="dashes-in-a-quoted-value"
        ),
        pytest.param(
            "---\ntitle: Café \u2013 “quoted”\n---\nNaïve ✓\n".encode(),
            {"title": "Café \u2013 “quoted”"},
            "Naïve ✓\n",
            id="unicode",
        ),
        pytest.param(
            b"---\ntitle: Tom &Jerry\nexcerpt: 5 * 3 and *bold*\n---\n",
            {"title": "Tom &Jerry", "excerpt": "5 * 3 and *bold*"},
            "",
            id="ampersand-and-asterisk-text",
        ),
        pytest.param(
            b"---\ntitle: Q&A!\nexcerpt: wow! really?\n---\n",
            {"title": "Q&A!", "excerpt": "wow! really?"},
            "",
            id="bang-text",
        ),
        pytest.param(
            b"---\ntitle: x\nrelated:\n  - webUrl: https://a\n  - webUrl: https://b\n---\n",
            {"title": "x", "related": [{"webUrl": "https://a"}, {"webUrl": "https://b"}]},
            "",
            id="list-of-mappings",
        ),
    ],
)
def test_accepted(data: bytes, front_matter: dict[str, Any], body: str, tmp_path: Path) -> None:
    result = run(data, tmp_path)
    assert result.front_matter == front_matter
    assert result.body == body
    assert result.source.key == "doc.md"
    assert len(result.content_hash) == 64


def test_content_hash_is_of_the_file_bytes(tmp_path: Path) -> None:
    a = run(b"---\ntitle: x\n---\n", tmp_path).content_hash
    b = run(b"---\r\ntitle: x\r\n---\r\n", tmp_path).content_hash
    c = run(b"---\ntitle: x\n---\n", tmp_path).content_hash
    assert a == c != b


# --- rejected files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"   \n\n\t\n", "empty", id="blank"),
        pytest.param(b"\xef\xbb\xbf", "empty", id="bom-only"),
        pytest.param(b"# Title\n\nBody\n", "front-matter", id="no-front-matter"),
        pytest.param(b"title: x\n---\nbody\n", "front-matter", id="no-opening-line"),
        pytest.param(b"\n---\ntitle: x\n---\n", "front-matter", id="blank-line-first"),
        pytest.param(b"body\n---\ntitle: x\n---\n", "front-matter", id="front-matter-later"),
        pytest.param(b" ---\ntitle: x\n---\n", "front-matter", id="indented-opening"),
        pytest.param(b"----\ntitle: x\n---\n", "front-matter", id="four-dashes"),
        pytest.param(b"...\ntitle: x\n---\n", "front-matter", id="dots-opening"),
        pytest.param(b"---\ntitle: x\n", "closed", id="never-closed"),
        pytest.param(b"---\ntitle: x\nbody\n", "closed", id="never-closed-2"),
        pytest.param(b"---\ntitle: x\n ---\n", "closed", id="indented-closing"),
        pytest.param(b"---\ntitle: x\n----\n", "closed", id="four-dash-closing"),
        pytest.param(b"---", "closed", id="only-opening"),
        pytest.param(b"---\ntitle: caf\xe9\n---\n", "UTF-8", id="latin-1"),
        pytest.param(b"---\ntitle: \xff\xfe\n---\n", "UTF-8", id="invalid-bytes"),
        pytest.param(b"\xff\xfe-\x00-\x00-\x00\n\x00", "UTF-8", id="utf-16"),
        pytest.param(b"---\ntitle: \xed\xa0\x80\n---\n", "UTF-8", id="surrogate"),
        pytest.param(b"---\ntitle: x\xc3\n---\n", "UTF-8", id="truncated-sequence"),
        pytest.param(b"---\n- a\n- b\n---\n", "mapping", id="top-level-list"),
        pytest.param(b"---\n[a, b]\n---\n", "mapping", id="top-level-flow-list"),
        pytest.param(b"---\njust some text\n---\n", "mapping", id="top-level-text"),
        pytest.param(b"---\n42\n---\n", "mapping", id="top-level-number"),
        pytest.param(b"---\n'quoted'\n---\n", "mapping", id="top-level-quoted"),
        pytest.param(b"---\n2021-08-29\n---\n", "mapping", id="top-level-date"),
        pytest.param(b"---\ntrue\n---\n", "mapping", id="top-level-bool"),
    ],
)
def test_rejected(data: bytes, reason: str, tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as info:
        run(data, tmp_path)
    assert reason.lower() in str(info.value).lower()


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


# --- size limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "max_bytes", "accepted"),
    [
        pytest.param(100, 101, True, id="under"),
        pytest.param(100, 100, True, id="exactly"),
        pytest.param(101, 100, False, id="one-over"),
        pytest.param(10_000, 100, False, id="far-over"),
        pytest.param(5 * 1024 * 1024 + 1, None, False, id="default-limit"),
        pytest.param(5 * 1024 * 1024, None, True, id="default-limit-exactly"),
    ],
)
def test_max_bytes(size: int, max_bytes: int | None, accepted: bool, tmp_path: Path) -> None:
    head = b"---\ntitle: x\n---\n"
    data = head + b"b" * (size - len(head))
    assert len(data) == size
    if accepted:
        assert run(data, tmp_path, max_bytes).front_matter == {"title": "x"}
    else:
        with pytest.raises(DocumentError, match=str(max_bytes or 5 * 1024 * 1024)):
            run(data, tmp_path, max_bytes)


@pytest.mark.parametrize(
    ("size", "max_bytes", "accepted"),
    [
        pytest.param(300, 1000, True, id="grew-within-limit"),
        pytest.param(1000, 1000, True, id="grew-to-the-limit"),
        pytest.param(1001, 1000, False, id="grew-past-the-limit"),
    ],
)
def test_file_that_grows_while_read(
    size: int, max_bytes: int, accepted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size seen before reading is 100 bytes; the file holds more by the time it
    is read: all of it is read, up to the limit."""
    import os

    real_fstat = os.fstat

    def fstat_before_growth(fd: int) -> os.stat_result:
        info = list(real_fstat(fd))
        info[6] = 100  # st_size
        return os.stat_result(info)

    head = b"---\ntitle: x\n---\n"
    data = head + b"b" * (size - len(head))
    path = tmp_path / "doc.md"
    path.write_bytes(data)
    monkeypatch.setattr(os, "fstat", fstat_before_growth)
    if accepted:
        assert read_bytes(path, max_bytes) == data
    else:
        with pytest.raises(DocumentError, match="over the limit"):
            read_bytes(path, max_bytes)


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


# --- discovery ----------------------------------------------------------------------------

TREE = [
    "b.md",
    "a.markdown",
    "notes.txt",
    "readme",
    "x.md.bak",
    "sub/c.md",
    "sub/deeper/d.markdown",
    "sub/deeper/e.yaml",
    "other/f.md",
    "empty/.keep",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for name in TREE:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"---\ntitle: {name}\n---\n")
    return root


def _plain(root: Path, *scopes: str) -> SourceSpec:
    """A plain tree (no site root) the run covers at ``scopes``."""
    return SourceSpec("tree", str(root), site=False, scopes=scopes)


@pytest.mark.parametrize(
    ("scopes", "keys"),
    [
        pytest.param(
            [""],
            ["a.markdown", "b.md", "other/f.md", "sub/c.md", "sub/deeper/d.markdown"],
            id="root",
        ),
        pytest.param(["sub/"], ["sub/c.md", "sub/deeper/d.markdown"], id="subdirectory"),
        pytest.param(["sub/deeper/"], ["sub/deeper/d.markdown"], id="deeper"),
        pytest.param(["sub/c.md"], ["sub/c.md"], id="file"),
        pytest.param(["sub/deeper/d.markdown"], ["sub/deeper/d.markdown"], id="markdown-file"),
        pytest.param(
            ["b.md", "sub/"], ["b.md", "sub/c.md", "sub/deeper/d.markdown"], id="file-and-dir"
        ),
        pytest.param(["sub/", "b.md"], ["b.md", "sub/c.md", "sub/deeper/d.markdown"], id="sorted"),
        pytest.param(["b.md", "b.md"], ["b.md"], id="same-file-twice"),
        pytest.param(["empty/"], [], id="no-documents"),
        pytest.param(["missing/"], [], id="missing-directory"),
        pytest.param([], [], id="nothing"),
    ],
)
def test_discover_source(scopes: list[str], keys: list[str], tree: Path) -> None:
    found = discover_source(_plain(tree, *scopes))
    assert [source.key for source in found] == keys
    for source in found:
        assert Path(source.path).is_file()  # TREE has no directory named like a document
        assert Path(source.path) == tree / source.key


def test_discover_keys_do_not_depend_on_where_the_tree_is(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "mounted"
    copy.parent.mkdir()
    tree.rename(copy)
    assert [s.key for s in discover_source(_plain(copy, ""))] == [
        "a.markdown",
        "b.md",
        "other/f.md",
        "sub/c.md",
        "sub/deeper/d.markdown",
    ]


def test_discover_lists_directories_named_like_documents(tree: Path) -> None:
    # Issue 4: a directory among the inputs is reported (rejected by name), and its
    # documents are still found.
    (tree / "folder.md").mkdir()
    (tree / "folder.md" / "g.md").write_text("---\ntitle: g\n---\n")
    found = discover_source(_plain(tree, ""))
    keys = [source.key for source in found]
    assert "folder.md" in keys
    assert "folder.md/g.md" in keys
    folder = next(s for s in found if s.key == "folder.md")
    with pytest.raises(DocumentError, match="directory"):
        extract(folder)


def test_discovered_files_extract(tree: Path) -> None:
    for source in discover_source(_plain(tree, "")):
        assert extract(source).front_matter == {"title": source.key}
