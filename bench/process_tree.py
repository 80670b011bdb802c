"""Sampling a process and all its descendants from ``/proc``: their summed and largest
RSS, summed PSS and CPU ticks, in a thread, while the process runs."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

MB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(item) for item in handle.read().split())
        except OSError:
            continue
    return found


def _cpu_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def _status_kb(pid: int, key: str, filename: str = "status") -> int:
    try:
        with open(f"/proc/{pid}/{filename}") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class MemoryPeak:
    rss_sum_kb: int = 0
    rss_max_kb: int = 0
    pss_sum_kb: int = 0
    processes: int = 0
    samples: int = 0
    cpu_ticks: dict[int, int] = field(default_factory=dict)  # last seen utime+stime per pid

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_ticks.values()) / CLOCK_TICKS


class TreeSampler(threading.Thread):
    """Samples the memory of a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval: float, pss_interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        # smaps_rollup walks the page tables: ~8 ms for a 600 MB process, too dear
        # to read every 50 ms on a 2-core machine, so PSS is read less often.
        self.pss_interval = pss_interval
        self._last_pss = -float("inf")
        self.peak = MemoryPeak()
        self.cpu_seconds = 0.0  # the sampler's own CPU time
        self._stop_event = threading.Event()

    def tree(self) -> list[int]:
        pids, queue = [], [self.pid]
        while queue:
            pid = queue.pop()
            pids.append(pid)
            queue.extend(_children(pid))
        return pids

    def sample(self) -> None:
        pids = self.tree()
        rss = [_status_kb(pid, "VmRSS:") for pid in pids]
        peak = self.peak
        peak.samples += 1
        peak.rss_sum_kb = max(peak.rss_sum_kb, sum(rss))
        peak.rss_max_kb = max(peak.rss_max_kb, *rss)
        peak.processes = max(peak.processes, sum(1 for value in rss if value))
        for pid in pids:
            if (ticks := _cpu_ticks(pid)) is not None:
                peak.cpu_ticks[pid] = ticks
        now = time.monotonic()
        if self.pss_interval > 0 and now - self._last_pss >= self.pss_interval:
            self._last_pss = now
            pss = sum(_status_kb(pid, "Pss:", "smaps_rollup") for pid in pids)
            peak.pss_sum_kb = max(peak.pss_sum_kb, pss)

    def run(self) -> None:
        started = time.thread_time()
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)
        self.cpu_seconds = time.thread_time() - started

    def stop(self) -> MemoryPeak:
        self._stop_event.set()
        self.join()
        return self.peak
