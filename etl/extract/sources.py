"""Sources: which named tree each PATH of a run belongs to, and which files it holds.

A *source* is a named tree of documents with a root directory: a Jekyll site
checkout (a directory with ``_news/``, whose ``_data/`` holds its taxonomy) or any
directory of Markdown files. A file is keyed by its path relative to its source's
root, so a run over a subdirectory finds the same keys as a run over the whole
tree, and a checkout that moves (same name, new root) keeps its state.

Pure planning over the file system, no database: :func:`plan_sources` turns the
run's PATHs (and the sources the database already knows) into :class:`SourceSpec`
values; :func:`discover_source` lists a source's documents (:func:`discover_keys`
their keys); :func:`in_scope` says whether a recorded key lies under what this run
looked at (what ``--prune`` may consider), :func:`in_shard` whether it falls in the
run's shard (:func:`parse_shard` reads ``--shard K/N``); :func:`survey` does all of it
and stamps the files, for a parse-ahead process to do while the run starts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from etl.extract.extract import file_stamps, scan
from etl.records import ConfigurationError, FileStamp, SourceFile

NEWS_DIR = "_news"
DATA_DIR = "_data"
NAME_LIMIT = 255  # sources.name is VARCHAR(255)
LEGACY = "legacy"  # the source migration 0005 gives state recorded before sources existed


class SourceError(ValueError):
    """PATHs that cannot form the sources asked for (a usage error)."""


@dataclass(frozen=True)
class SourceSpec:
    """One source of a run: its name, its root, and the parts of it the run covers."""

    name: str
    root: str
    site: bool  # a Jekyll site root: only _news/ holds documents
    # Keys under these prefixes (relative to the root) are what the run looks at: ""
    # (everything), "dir/" (a directory), or a file's own key.
    scopes: tuple[str, ...]


def is_site_root(path: Path) -> bool:
    return (path / NEWS_DIR).is_dir()


def root_of(path: Path) -> Path:
    """The root of the tree ``path`` belongs to: the nearest directory at or above it
    that is a Jekyll site root, else ``path`` itself (a directory) or its folder."""
    resolved = path.resolve()
    start = resolved if resolved.is_dir() else resolved.parent
    for candidate in (start, *start.parents):
        if is_site_root(candidate):
            return candidate
    return start


def default_name(root: str) -> str:
    """The name of a source given without ``--source``: its resolved root path, so two
    different roots are never the same source (shortened past 255 characters)."""
    if len(root) <= NAME_LIMIT:
        return root
    digest = hashlib.sha256(root.encode()).hexdigest()[:16]
    return f"{root[: NAME_LIMIT - 20]}...{digest}"


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _scope(path: Path, root: Path) -> str:
    if path == root:
        return ""
    relative = path.relative_to(root).as_posix()
    return relative + "/" if path.is_dir() else relative


def plan_sources(
    paths: Sequence[Path], name: str | None, known: Mapping[str, str]
) -> list[SourceSpec]:
    """The sources a run covers.

    ``known`` maps the names of the sources the database has to their roots. With
    ``name`` (``--source``) every PATH belongs to that source: its recorded root when
    they all lie under it, else the one root they share (the source moved). Without
    it, each PATH belongs to the source of its root: the known source with that root,
    else a new one named by :func:`default_name`. Raises ``FileNotFoundError`` for a
    missing PATH and :class:`SourceError` for PATHs that do not share a root.
    """
    resolved = []
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        resolved.append(path.resolve())
    groups: dict[Path, list[Path]] = {}
    if name is not None:
        if not name.strip() or len(name) > NAME_LIMIT:
            raise SourceError(f"--source must be 1 to {NAME_LIMIT} characters, not {name!r}")
        stored = known.get(name)
        if stored and all(_under(p, Path(stored)) for p in resolved):
            root = Path(stored)
        else:
            roots = {root_of(p) for p in resolved}
            if len(roots) > 1:
                listed = ", ".join(sorted(map(str, roots)))
                raise SourceError(
                    f"the PATHs of source {name!r} lie in different trees ({listed}): "
                    "run each tree as its own source"
                )
            root = roots.pop()
        groups[root] = resolved
        names = {root: name}
    else:
        for path in resolved:
            groups.setdefault(root_of(path), []).append(path)
        by_root: dict[str, list[str]] = {}
        for known_name, known_root in known.items():
            by_root.setdefault(known_root, []).append(known_name)
        names = {}
        for root in groups:
            same = sorted(by_root.get(str(root), []))
            names[root] = same[0] if same else default_name(str(root))
    specs = []
    for root, members in groups.items():
        site = is_site_root(root)
        scopes = {_scope(p, root) for p in members}
        if "" in scopes:
            scopes = {""}
        specs.append(SourceSpec(names[root], str(root), site, tuple(sorted(scopes))))
    return sorted(specs, key=lambda spec: spec.name)


def in_scope(key: str, spec: SourceSpec) -> bool:
    """Whether ``key`` lies in what the run looked at of ``spec`` (and can be a document)."""
    if spec.site and not key.startswith(NEWS_DIR + "/"):
        return False
    if key.startswith(DATA_DIR + "/"):  # Jekyll's data files, in any tree: never a document
        return False
    for scope in spec.scopes:  # a loop, not any(): called for every file of a tree
        if scope == "" or key == scope or (scope.endswith("/") and key.startswith(scope)):
            return True
    return False


def discover_source(spec: SourceSpec) -> list[SourceFile]:
    """The documents under the run's scopes of ``spec``, sorted by key, each once."""
    return [SourceFile(spec.root, key, spec.name) for key in discover_keys(spec)]


def discover_keys(spec: SourceSpec) -> list[str]:
    """The keys of :func:`discover_source`'s documents, in its order.

    At a site root only ``_news/`` holds documents; nothing under a root's ``_data/``
    (a site's taxonomy) ever is one, in a site or not.
    """
    found: set[str] = set()
    for scope in spec.scopes:
        if spec.site and scope == "":
            directory, prefix = os.path.join(spec.root, NEWS_DIR), NEWS_DIR + "/"
        elif scope == "" or scope.endswith("/"):
            directory, prefix = os.path.join(spec.root, scope), scope
        else:  # a file given directly, whatever its suffix
            if in_scope(scope, spec) or not spec.site:
                found.add(scope)
            continue
        if os.path.isdir(directory):
            scan(directory, prefix, found)
    return [key for key in sorted(found) if in_scope(key, spec)]


def discover_all(specs: Iterable[SourceSpec]) -> list[SourceFile]:
    """Every source's documents, sorted by (source, key)."""
    return [file for spec in specs for file in discover_source(spec)]


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``key`` falls in shard K of N (``--shard K/N``; None: every key).

    Stable across machines and Python versions: sha256 of the relative path.
    """
    if shard is None:
        return True
    k, n = shard
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n == k


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` (``--shard``) as (K, N), with 0 <= K < N; else ``ConfigurationError``."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ConfigurationError(
            f"--shard must look like K/N (for example 0/4), not {text!r}"
        ) from None
    if n < 1 or not 0 <= k < n:
        raise ConfigurationError(f"--shard {text}: K must be in 0..N-1 and N at least 1")
    return k, n


class Surveyed(NamedTuple):
    """One source's documents as :func:`survey` found them: their keys, in
    :func:`discover_source`'s order, and each one's stamp (``file_stamp``)."""

    spec: SourceSpec
    keys: list[str]
    stamps: list[FileStamp | None]

    def __reduce__(self) -> tuple[Any, ...]:
        # A parse-ahead process pickles it at every run's start. A FileStamp pickles
        # through Python code of its own: 5,000 of them took 16 ms, as plain tuples 4.
        plain = [None if stamp is None else tuple(stamp) for stamp in self.stamps]
        return (_unpickle_surveyed, (self.spec, self.keys, plain))


def _unpickle_surveyed(
    spec: SourceSpec, keys: list[str], plain: list[tuple[int, int] | None]
) -> Surveyed:
    stamps = [None if stamp is None else FileStamp(*stamp) for stamp in plain]
    return Surveyed(spec, keys, stamps)


def survey(
    paths: Sequence[str], name: str | None, shard: tuple[int, int] | None
) -> list[Surveyed] | None:
    """What a run over ``paths`` finds on disk, before it asks the database anything:
    the sources :func:`plan_sources` makes of them when the database knows none, and
    the documents of each in ``shard``, stamped. None if the paths make no sources (the
    run will say why).

    A source the database knows under another root (``--source`` naming a source
    whose recorded root holds the paths) comes out here with a different root: the
    run finds that source's files itself.
    """
    try:
        specs = plan_sources([Path(path) for path in paths], name, {})
    except (OSError, SourceError):
        return None
    found = []
    for spec in specs:
        keys = [key for key in discover_keys(spec) if in_shard(key, shard)]
        found.append(Surveyed(spec, keys, file_stamps(spec.root, keys)))
    return found
