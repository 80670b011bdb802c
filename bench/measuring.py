"""One measured run: a tool's command run as a subprocess, timed, its process tree's memory
and CPU sampled, its JSON summary read (``Measurement``, ``measure``); waiting for the
previous run's aftermath to pass (``settle``); the median of repetitions."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from databases import Databases
from process_tree import TreeSampler

BASE_TOOL = "news-etl base"  # --base: the base commit's news-etl


@dataclass
class Measurement:
    tool: str
    backend: str
    corpus: str
    run: str  # "full" or "re-run"
    documents: int
    wall_seconds: float = 0.0
    exit_code: int | None = None
    rss_sum_mb: float = 0.0
    rss_max_mb: float = 0.0
    pss_sum_mb: float = 0.0
    maxrss_wait4_mb: float = 0.0
    cpu_seconds: float = 0.0
    samples: int = 0
    sampler_cpu_seconds: float = 0.0
    processes: int = 0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # Wall seconds of every repetition; the fields above are the median one's.
    repeats: list[float] = field(default_factory=list)

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def outcome(self) -> str:
        """What the tool reported it did, in a few words (to spot a load that went wrong)."""
        s = self.summary
        if "articles_inserted" in s:
            return (
                f"ins {s['articles_inserted']} upd {s['articles_updated']}"
                f" same {s['articles_unchanged']} skip {s['files_skipped_unchanged']}"
                f" rej {s['documents_rejected']}"
            )
        rows = s.get("row_counts", {})
        main = rows.get("news", rows.get("articles"))
        return f"{main} rows, {sum(rows.values())} in {len(rows)} tables" if rows else ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.tool, self.backend)

    @property
    def phases(self) -> dict[str, Any]:
        """news-etl's own ``timings`` (etl run --json): where the run's time went."""
        timings: dict[str, Any] = self.summary.get("timings") or {}
        return timings

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["docs_per_second"] = round(self.docs_per_second, 1)
        data["timings"] = self.phases
        return data


def _cpu_busy_fraction(seconds: float) -> float:
    """How busy all CPUs were over the next ``seconds`` (from /proc/stat; 0 if unknown)."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values), idle

    try:
        total_a, idle_a = read()
        time.sleep(seconds)
        total_b, idle_b = read()
    except (OSError, ValueError, IndexError):
        return 0.0
    total = total_b - total_a
    return 1 - (idle_b - idle_a) / total if total else 0.0


def settle(databases: Databases, timeout: float = 60.0) -> float:
    """Wait for the previous run's aftermath to pass; returns the seconds waited.

    A large load leaves dirty pages for the kernel to write back and PostgreSQL a
    checkpoint and autovacuum to do; on 2 cores that work would be billed to
    whichever run came next. So: sync, CHECKPOINT, then wait (at most ``timeout``)
    until the CPUs are at least 90% idle over half a second.
    """
    started = time.perf_counter()
    os.sync()
    # No PostgreSQL, or not allowed to checkpoint: the idle wait still applies.
    with contextlib.suppress(Exception):
        databases.admin("CHECKPOINT")
    while time.perf_counter() - started < timeout:
        if _cpu_busy_fraction(0.5) < 0.10:
            break
    return time.perf_counter() - started


def median_of(tries: list[Measurement]) -> Measurement:
    """The repetition with the median wall time, carrying every repetition's time."""
    ordered = sorted(tries, key=lambda m: m.wall_seconds)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.repeats = [round(m.wall_seconds, 3) for m in tries]
    return chosen


def measure(
    command: Sequence[str],
    result: Measurement,
    *,
    interval: float,
    log_dir: Path,
    env: dict[str, str] | None = None,
    pss_interval: float = 0.5,
) -> Measurement:
    """Run ``command``, filling ``result`` with its time, memory and JSON stdout."""
    name = f"{result.tool}-{result.backend}-{result.corpus}-{result.run}".replace(" ", "_")
    stdout_path, stderr_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    result.load_average = os.getloadavg()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
        )
        sampler = TreeSampler(process.pid, interval, pss_interval)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        result.wall_seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    peak = sampler.stop()
    result.exit_code = process.returncode
    result.rss_sum_mb = peak.rss_sum_kb / 1024
    result.rss_max_mb = peak.rss_max_kb / 1024
    result.pss_sum_mb = peak.pss_sum_kb / 1024
    result.maxrss_wait4_mb = usage.ru_maxrss / 1024  # KiB on Linux
    result.processes = peak.processes
    result.samples = peak.samples
    result.sampler_cpu_seconds = sampler.cpu_seconds
    # CPU of the tree: the kernel's count for the process and the children it reaped,
    # or the sampled per-process counts when larger (children reaped by someone else).
    reaped = usage.ru_utime + usage.ru_stime
    result.cpu_seconds = max(reaped, peak.cpu_seconds)
    text = stdout_path.read_text(errors="replace").strip()
    try:
        result.summary = json.loads(text.splitlines()[-1]) if text else {}
    except json.JSONDecodeError:
        result.summary = {}
    if result.exit_code not in (0, 1) or not result.summary:
        lines = stderr_path.read_text(errors="replace").strip().splitlines()
        errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
        last = (errors or lines or [""])[-1].strip()
        result.error = f"exit {result.exit_code}: {last[:200]} (see {stderr_path.name})"
    return result
