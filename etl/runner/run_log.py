"""What a run tells with ``-v`` (sources, paths, shard, workers, batches with sizes and
timings, where the run's time went) and ``-vv`` (each file): the log lines of the load
path, in one place.

Every line carries its facts as fields too (``extra=``), which ``--log-format json``
writes as keys of the object (``etl.runner.logs``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from etl.extract.sources import SourceSpec
from etl.records import Outcome, Rejection, Unchanged

log = logging.getLogger("etl")


def describe_plan(
    specs: Sequence[SourceSpec], shard: tuple[int, int] | None, dry: bool
) -> list[str]:
    """Which source each PATH resolved to, and the shard; the names of the sources."""
    for spec in specs:
        scopes = [scope or "(all)" for scope in spec.scopes]
        log.info(
            "source %s: root %s%s, paths %s",
            spec.name,
            spec.root,
            " (a site: its _news/ and _data/)" if spec.site else "",
            ", ".join(scopes),
            extra={"source": spec.name, "root": spec.root, "scopes": list(spec.scopes)},
        )
    if shard is not None:
        log.info("shard %d/%d", *shard, extra={"shard": f"{shard[0]}/{shard[1]}"})
    if dry:
        log.info("dry run: one transaction, rolled back at the end")
    return [spec.name for spec in specs]


def describe_load(seen: int, skipped: int, to_read: int, workers: int, inline: bool) -> None:
    """How many files the run reads, and with how many worker processes."""
    how = "without the worker pool" if inline else f"with {workers} worker processes"
    log.info(
        "%d files found, %d unchanged (skipped, not read), %d to read %s",
        seen,
        skipped,
        to_read,
        how,
        extra={
            "files_seen": seen,
            "files_skipped_unchanged": skipped,
            "files_to_read": to_read,
            "workers": 0 if inline else workers,
        },
    )


def parsed_ahead(files: int, processes: int) -> None:
    """The files were parsed by the parse-ahead processes (etl.runner.parse_ahead)."""
    log.info(
        "%d files parsed by %d parse-ahead processes",
        files,
        processes,
        extra={"files_parsed_ahead": files, "processes": processes},
    )


def batch_written(size: int, seconds: float, rejected: int) -> None:
    """A batch of documents written (in one transaction, or one by one after a failure)."""
    log.info(
        "batch of %d documents written in %.3f s (%d rejected)",
        size,
        seconds,
        rejected,
        extra={"batch_size": size, "seconds": round(seconds, 6), "rejected": rejected},
    )


def file_outcome(path: str, outcome: Outcome) -> None:
    """One file: loaded, unchanged or rejected (-vv)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    if isinstance(outcome, Unchanged):
        what = "unchanged content"
    elif isinstance(outcome, Rejection):
        what = "rejected"
    else:
        what = f"read: {outcome.article.url}"
    log.debug("file %s: %s", path, what, extra={"path": path})


def describe_timings(timings: dict[str, Any]) -> None:
    """Where the run's time went (``timings`` of ``--json``), in one line."""
    kinds = ", ".join(f"{name} {value:.3f}" for name, value in timings["lock_kinds"].items())
    log.info(
        "timings: start-up %.3f s, load %.3f s, finish %.3f s; files read and parsed %.3f "
        "CPU-s; writer lock waited for %.3f s, held %.3f s (%s)",
        timings["startup"],
        timings["load"],
        timings["finish"],
        timings["fill"],
        timings["wait"],
        timings["lock"],
        kinds or "no statements",
        extra={"timings": timings},
    )
