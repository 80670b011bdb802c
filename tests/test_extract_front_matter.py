"""Tests of etl.extract.extract on whole files: the front-matter block and the size limit.

Accepted and rejected files (opening and closing lines, BOM, CRLF, decoding, a mapping
at the top), the content hash, and the byte limit (also for a file that grows while read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl.extract.extract import read_bytes
from etl.records import DocumentError
from tests.extract_cases import run

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
