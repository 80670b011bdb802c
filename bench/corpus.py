"""The corpora the bench loads: the shared corpus extracted, its replicas (``Nx``, every
URL moved into a replica's own path), hard-link copies of them, and the titles a
``1% edit`` run edits."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
from pathlib import Path

# A URL-valued key's line, up to and including the URL's scheme and host.
URL_KEY = re.compile(
    rb"""^([ \t]*(?:-[ \t]+)?(?:webUrl|originalUrl|ampWebUrl|cdnAmpWebUrl):[ \t]*["']?"""
    rb"""[A-Za-z][A-Za-z0-9+.-]*://[^/"'\s?#]+)""",
    re.MULTILINE,
)


def rewrite_urls(raw: bytes, replica: int) -> bytes:
    """Insert ``/r<replica>`` after the host of every URL-valued key in ``raw``."""
    segment = b"/r%d" % replica
    return URL_KEY.sub(lambda match: match.group(1) + segment, raw)


def extract_corpus(source: Path, target: Path) -> Path:
    """The corpus's site root (the directory with ``_news/`` and ``_data/``) extracted
    under ``target``; a directory given as ``source`` is used as it is (a site root, or
    a plain directory of ``*.md`` documents)."""
    if source.is_dir():
        return source
    with tarfile.open(source) as archive:
        if sys.version_info >= (3, 12):
            archive.extractall(target, filter="data")
        else:
            archive.extractall(target)  # our own shared corpus
    candidates = [target / "_news", *sorted(target.glob("*/_news"))]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.parent
    raise SystemExit(f"no _news/ directory in {source}")


def news_dir(root: Path) -> Path:
    """Where a corpus's documents are: a site root's ``_news/``, else the directory."""
    return root / "_news" if (root / "_news").is_dir() else root


def link_tree(source: Path, target: Path) -> None:
    """A copy of ``source`` made of hard links (``cp -al``): instant, and every file
    keeps its mtime, so news-etl sees the copy's files as unchanged on a re-run."""
    shutil.copytree(source, target, copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system (a --corpus directory elsewhere)
        shutil.copy2(source, target)  # keeps the mtime too


def build_replicas(root: Path, target: Path, copies: int) -> int:
    """Write ``copies`` replicas of the documents of corpus ``root`` into the site root
    ``target`` (its taxonomy linked as it is); the file count."""
    base = news_dir(root)
    for name in ("_data", "_config.yml"):
        if (root / name).is_dir():
            link_tree(root / name, target / name)
        elif (root / name).is_file():
            target.mkdir(parents=True, exist_ok=True)
            _link_or_copy(str(root / name), str(target / name))
    target = target / "_news"
    target.mkdir(parents=True)
    count = 0
    for path in sorted(base.glob("*.md")):
        os.link(path, target / path.name)  # replica 0: the documents as they are
        raw = path.read_bytes()
        for replica in range(1, copies):
            (target / f"r{replica}-{path.name}").write_bytes(rewrite_urls(raw, replica))
        count += copies
    return count


ETL_RUNS = ("full", "re-run", "1% edit")
EDIT_RUN = ETL_RUNS[2]
EDIT_SHARE = 0.01
TITLE_LINE = re.compile(rb"^(title:[ \t]*)([\"']?)", re.MULTILINE)


def edit_titles(directory: Path, share: float) -> int:
    """Edit the title of ``share`` of the documents in ``directory`` (every 1/share-th,
    in name order); returns how many. Each file is replaced, not written in place:
    the corpus copies are hard links to the extracted files."""
    paths = sorted(directory.glob("*.md"))
    step = max(1, round(1 / share))
    edited = 0
    for path in paths[::step]:
        raw = path.read_bytes()
        new = TITLE_LINE.sub(rb"\1\2edited ", raw, count=1)
        if new == raw:
            continue
        path.unlink()
        path.write_bytes(new)
        edited += 1
    return edited
