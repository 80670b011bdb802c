"""Tests of etl.extract.sources.discover_source on a plain tree, and of extracting what it finds.

Which files are documents (.md and .markdown) under each scope, their keys (relative to
the tree, wherever it is), and directories named like documents.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.extract.extract import extract
from etl.extract.sources import SourceSpec, discover_source
from etl.records import DocumentError

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
