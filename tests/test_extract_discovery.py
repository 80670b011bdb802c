"""Tests of etl.extract.sources.discover_source on a plain tree, and of extracting what it finds.

Which files are documents (.md and .markdown) under each scope, their keys (relative to
the tree, wherever it is), and directories named like documents. Then the survey a
parse-ahead process makes of a run's PATHs (``etl.extract.sources.survey``), and what
the run takes from it (``etl.runner.planning.found_files``).
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from etl.extract.extract import extract, file_stamp, file_stamps, is_document_name, prefetch
from etl.extract.sources import SourceSpec, discover_source, in_shard, survey
from etl.extract.sources import plan_sources as plan
from etl.records import DocumentError, FileStamp
from etl.runner import planning
from tests.helpers import write_tree

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


# --- the survey ---------------------------------------------------------------------------


def _tree(root: Path, *files: str) -> Path:
    write_tree(root, dict.fromkeys(files, b"---\ntitle: x\n---\n"))
    return root


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return _tree(tmp_path / "site", "_news/2021/a.md", "_news/b.md", "_news/c.md", "README.md")


def _settled(root: Path) -> Path:
    """Every file under ``root`` modified a minute ago: stamped, not too fresh to trust."""
    for path in root.rglob("*"):
        os.utime(path, (time.time() - 60, time.time() - 60))
    return root


@pytest.mark.parametrize("shard", [None, (0, 2), (1, 2)])
def test_a_survey_finds_and_stamps_what_the_run_would(
    site: Path, shard: tuple[int, int] | None
) -> None:
    _tree(_settled(site), "_news/fresh.md")  # just written: no stamp to trust
    [found] = survey([str(site)], None, shard) or []
    [spec] = plan([site], None, {})
    assert found.spec == spec
    assert found.keys == [f.key for f in discover_source(spec) if in_shard(f.key, shard)]
    assert found.stamps == [file_stamp(site / key) for key in found.keys]
    stamped = dict(zip(found.keys, found.stamps, strict=True))
    assert stamped.pop("_news/fresh.md", None) is None
    assert all(stamp is not None for stamp in stamped.values())


@pytest.mark.parametrize(
    ("name", "document"),
    [
        ("a.md", True),
        ("a.markdown", True),
        ("A.MD", True),
        ("a.Markdown", True),
        ("a.b.md", True),
        ("a.md.bak", False),
        ("a.mdx", False),
        ("amd", False),
        ("md", False),
        (".md", False),  # a dot file: os.path.splitext gives it no suffix
        ("..md", False),
        (".a.md", True),
        ("a.txt", False),
    ],
)
def test_which_names_are_documents(name: str, document: bool) -> None:
    assert is_document_name(name) is document
    assert document is (os.path.splitext(name)[1].lower() in (".md", ".markdown"))


def test_stamps_of_many_files_are_each_file_s_stamp(site: Path) -> None:
    _tree(_settled(site), "_news/fresh.md")
    keys = ["_news/b.md", "_news/gone.md", "_news/fresh.md", "_news/2021/a.md"]
    stamps = file_stamps(str(site), keys)
    assert stamps == [file_stamp(site / key) for key in keys]
    assert [stamp is None for stamp in stamps] == [False, True, True, False]


def test_a_survey_reaches_the_run_whole_through_a_pipe(site: Path) -> None:
    """What a parse-ahead process sends (pickled): the same keys and stamps, as stamps."""
    _tree(_settled(site), "_news/fresh.md")
    found = survey([str(site)], None, None) or []
    again = pickle.loads(pickle.dumps(found, pickle.HIGHEST_PROTOCOL))
    assert again == found
    stamps = again[0].stamps
    assert None in stamps
    assert all(isinstance(stamp, FileStamp) for stamp in stamps if stamp is not None)


def test_paths_that_make_no_sources_survey_as_none(site: Path, tmp_path: Path) -> None:
    assert survey([str(tmp_path / "missing")], None, None) is None
    other = _tree(tmp_path / "other", "x.md")
    assert survey([str(site), str(other)], "one", None) is None  # two trees, one name


def test_surveyed_files_are_taken_under_the_database_s_name(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = survey([str(_settled(site))], None, None)
    [spec] = plan([site], None, {"azure": str(site.resolve())})
    monkeypatch.setattr(planning, "discover_source", _refused)
    monkeypatch.setattr(planning, "file_stamp", _refused)
    files, stamps = planning.found_files([spec], None, found)
    assert found is not None
    assert [(f.root, f.key, f.source) for f in files] == [
        (spec.root, key, "azure") for key in found[0].keys
    ]
    assert stamps == found[0].stamps


def test_a_source_the_survey_saw_elsewhere_is_walked_and_stamped(tmp_path: Path) -> None:
    """``--source plain`` over plain/sub, recorded with root plain: the survey, which
    knows no sources, took plain/sub as the root."""
    plain = _settled(_tree(tmp_path / "plain", "a.md", "sub/b.md", "sub/c.md"))
    found = survey([str(plain / "sub")], "plain", None)
    [spec] = plan([plain / "sub"], "plain", {"plain": str(plain.resolve())})
    assert found is not None and found[0].spec.root != spec.root
    files, stamps = planning.found_files([spec], None, found)
    assert [f.key for f in files] == ["sub/b.md", "sub/c.md"]
    assert stamps == [file_stamp(f.path) for f in files]
    assert None not in stamps


def test_without_a_survey_the_stamps_wait(site: Path) -> None:
    [spec] = plan([site], None, {})
    files, stamps = planning.found_files([spec], (0, 1), None)
    assert [f.key for f in files] == ["_news/2021/a.md", "_news/b.md", "_news/c.md"]
    assert stamps is None


def _refused(*args: Any) -> Any:
    raise AssertionError("walked or stamped again in the main process")


def _resident(paths: list[Path]) -> int:
    """Bytes of ``paths`` in the page cache, as util-linux's ``fincore`` counts them."""
    result = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(int(line) for line in result.stdout.split())


def test_prefetch_reads_files_ahead_and_opens_nothing_but_files(tmp_path: Path) -> None:
    """Files the page cache had dropped are read into it; a FIFO, a directory and a
    missing path are passed over without blocking or raising."""
    if shutil.which("fincore") is None or not hasattr(os, "posix_fadvise"):
        pytest.skip("needs util-linux's fincore and posix_fadvise (Linux)")
    files = [tmp_path / f"doc-{i}.md" for i in range(20)]
    for path in files:
        path.write_bytes(os.urandom(64 * 1024))
    os.sync()
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    if _resident(files):
        pytest.skip(f"{tmp_path}'s filesystem keeps its files in memory (tmpfs?)")
    os.mkfifo(tmp_path / "pipe.md")  # opened for reading, it would wait for a writer
    (tmp_path / "dir.md").mkdir()
    paths = [*files, tmp_path / "pipe.md", tmp_path / "dir.md", tmp_path / "missing.md"]
    worker = threading.Thread(target=prefetch, args=(paths,), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "prefetch blocked"
    wanted = 20 * 64 * 1024
    deadline = time.monotonic() + 30  # the reads it started finish in the background
    while _resident(files) < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _resident(files) == wanted
