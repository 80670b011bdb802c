"""What a run does before it writes news: its sources, files, shard, prune and skips.

Owns the run's checked arguments (:class:`Options`) and the plan (:func:`plan_work`):
the sources' rows, the files found, those ``--prune`` forgets (refusing before anything
is written when that is too many), and those whose size and mtime are as recorded, not
read again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from etl.db.database import ConfigurationError
from etl.extract.extract import file_stamp
from etl.extract.sources import (
    SourceError,
    SourceSpec,
    Surveyed,
    discover_source,
    in_scope,
    in_shard,
    plan_sources,
)
from etl.ledger.files import known_files
from etl.ledger.sources import SourceRow, ensure_sources, known_source_roots
from etl.records import FileKey, FileStamp, RunSummary, SourceFile, Stored
from etl.runner.run_log import describe_plan


@dataclass(frozen=True)
class Options:
    """What a run was asked to do (the arguments of ``etl.runner.pipeline.run``)."""

    paths: list[Path]
    source: str | None
    full_refresh: bool
    prune: bool
    max_prune: float
    shard: tuple[int, int] | None
    workers: int | None
    batch_size: int
    max_file_bytes: int
    progress: Callable[[int, int], None] | None
    dry_run: bool

    def check(self) -> None:
        """Raise ``ConfigurationError`` for what no run can do, before connecting."""
        if not 0 <= self.max_prune <= 1:
            raise ConfigurationError(
                f"--max-prune must be a share from 0 to 1, not {self.max_prune}"
            )
        missing = [str(p) for p in self.paths if not p.exists()]
        if missing:
            raise ConfigurationError(f"{missing[0]}: no such file or directory")

    def arguments(self) -> dict[str, Any]:
        """What the run's row records of them (``etl_runs.arguments``)."""
        return {
            "paths": [str(p) for p in self.paths],
            "source": self.source,
            "full_refresh": self.full_refresh,
            "prune": self.prune,
            "max_prune": self.max_prune,
            "shard": "/".join(map(str, self.shard)) if self.shard else None,
        }


@dataclass(frozen=True)
class Work:
    """What a run found to do, before it writes any news."""

    specs: list[SourceSpec]
    rows: dict[str, SourceRow]  # the sources' rows, by name
    source_ids: dict[str, int]
    files: list[SourceFile]  # every file found (in the shard)
    gone: list[FileKey]  # what --prune forgets
    todo: Sequence[SourceFile]  # the files to read
    known_hashes: dict[FileKey, str]  # the stored content of those an earlier run loaded
    skipped: int  # files not read: same size and mtime as recorded


def plan_work(
    conn: Connection,
    options: Options,
    summary: RunSummary,
    arguments: dict[str, Any],
    surveyed: Callable[[], Sequence[Surveyed] | None] = lambda: None,
) -> Work:
    """Find the run's sources (named in ``summary`` and ``arguments``) and files, what
    ``--prune`` forgets and which files to read; writes only the sources' rows.

    ``surveyed`` gives what a parse-ahead process found on disk meanwhile (``etl.runner
    .parse_ahead``), if anything: the sources it has right are not walked again."""
    specs = _plan_sources(conn, options.paths, options.source)
    summary.sources = arguments["sources"] = describe_plan(specs, options.shard, options.dry_run)
    rows = ensure_sources(conn, specs)
    source_ids = {name: row.id for name, row in rows.items()}
    known = known_files(conn, sorted(source_ids.values()))
    files, stamps = found_files(specs, options.shard, surveyed())  # as late as can be
    gone = (
        _prune_plan(specs, source_ids, known, files, options.shard, options.max_prune)
        if options.prune
        else []
    )
    todo, known_hashes, skipped = _changed_files(
        files, stamps, known, source_ids, options.full_refresh
    )
    return Work(specs, rows, source_ids, files, gone, todo, known_hashes, skipped)


def found_files(
    specs: Sequence[SourceSpec],
    shard: tuple[int, int] | None,
    surveyed: Sequence[Surveyed] | None,
) -> tuple[list[SourceFile], list[FileStamp | None] | None]:
    """The documents of ``specs`` in ``shard``, and each one's stamp when ``surveyed``
    (else None: taken as they are needed).

    A source is taken from ``surveyed`` when it found the same tree (root, site, scopes;
    its name may differ, as it did not know the database's), else walked and stamped now.
    """
    if surveyed is None:
        return [file for spec in specs for file in _walk(spec, shard)], None
    by_tree = {(s.spec.root, s.spec.site, s.spec.scopes): s for s in surveyed}
    files: list[SourceFile] = []
    stamps: list[FileStamp | None] = []
    for spec in specs:
        hit = by_tree.get((spec.root, spec.site, spec.scopes))
        if hit is None:
            walked = _walk(spec, shard)
            files.extend(walked)
            stamps.extend(file_stamp(file.path) for file in walked)
        else:
            files.extend(SourceFile(spec.root, key, spec.name) for key in hit.keys)
            stamps.extend(hit.stamps)
    return files, stamps


def _walk(spec: SourceSpec, shard: tuple[int, int] | None) -> list[SourceFile]:
    return [file for file in discover_source(spec) if in_shard(file.key, shard)]


def _plan_sources(conn: Connection, paths: Sequence[Path], source: str | None) -> list[SourceSpec]:
    try:
        return plan_sources(paths, source, known_source_roots(conn))
    except (FileNotFoundError, SourceError) as exc:
        raise ConfigurationError(str(exc)) from None


def _prune_plan(
    specs: Sequence[SourceSpec],
    source_ids: Mapping[str, int],
    known: Mapping[FileKey, Stored],
    files: Sequence[SourceFile],
    shard: tuple[int, int] | None,
    max_prune: float,
) -> list[FileKey]:
    """The recorded files ``--prune`` forgets: of this run's sources, under this run's
    PATHs (and shard), and not found. Refuses (``ConfigurationError``) to forget every
    file of a source, or more than ``max_prune`` of them, before anything is written."""
    seen = {FileKey(source_ids[f.source], f.key) for f in files}
    gone: list[FileKey] = []
    for spec in specs:
        source_id = source_ids[spec.name]
        recorded = [key for sid, key in known if sid == source_id]
        lost = sorted(
            key
            for key in recorded
            if FileKey(source_id, key) not in seen and in_scope(key, spec) and in_shard(key, shard)
        )
        if not lost:
            continue
        if len(lost) == len(recorded):
            raise ConfigurationError(
                f"--prune would forget every file of source {spec.name!r} ({len(lost)} files): "
                f"is {spec.root} the right tree, and is it checked out? Nothing was changed"
            )
        if len(lost) > max_prune * len(recorded):
            raise ConfigurationError(
                f"--prune would forget {len(lost)} of the {len(recorded)} files of source "
                f"{spec.name!r} ({len(lost) / len(recorded):.0%}), more than --max-prune "
                f"{max_prune:g} allows; nothing was changed (pass a larger --max-prune if "
                "that is intended)"
            )
        gone.extend(FileKey(source_id, key) for key in lost)
    return gone


def _changed_files(
    files: Sequence[SourceFile],
    stamps: Sequence[FileStamp | None] | None,
    known: Mapping[FileKey, Stored],
    source_ids: Mapping[str, int],
    full_refresh: bool,
) -> tuple[Sequence[SourceFile], dict[FileKey, str], int]:
    """The files to read, the stored content hash of those an earlier run loaded, and
    how many are skipped: a file whose size and mtime equal the stored ones is not read.
    ``stamps``, when given, are the files' (in their order), else they are taken now.
    """
    if full_refresh:
        return files, {}, 0
    todo: list[SourceFile] = []
    known_hashes: dict[FileKey, str] = {}
    for index, file in enumerate(files):
        key = FileKey(source_ids[file.source], file.key)
        stored = known.get(key)
        if stored is None:
            todo.append(file)
        elif not stored.stamped(file_stamp(file.path) if stamps is None else stamps[index]):
            todo.append(file)
            known_hashes[key] = stored.content_hash
    return todo, known_hashes, len(files) - len(todo)
