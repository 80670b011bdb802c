"""The report of a bench: the table of runs, news-etl's phases, head / base and the
ratios as text (``Report.table``), everything as JSON (``Report.report``)."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

from corpus import ETL_RUNS
from databases import BACKENDS
from measuring import BASE_TOOL, Measurement


class Report:
    """What ``Bench`` has measured, reported; ``Bench`` fills these in."""

    args: argparse.Namespace
    results: list[Measurement]
    notes: list[str]
    timings: dict[str, float]
    base_etl: Path | None
    base_commit: str
    edited: int
    probe: dict[str, Any]

    def find(self, tool: str, backend: str, corpus: str, run: str) -> Measurement | None:
        for result in self.results:
            if (result.tool, result.backend, result.corpus, result.run) == (
                tool,
                backend,
                corpus,
                run,
            ) and not result.error:
                return result
        return None

    def ratios(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        corpora = sorted({r.corpus for r in self.results}, key=lambda c: int(c[:-1]))
        pairs = list(dict.fromkeys(r.key for r in self.results))
        for other in ("dlt", "sqlite-utils"):
            for backend in BACKENDS:
                for corpus in corpora:
                    mine = self.find("news-etl", backend, corpus, "full")
                    theirs = self.find(other, backend, corpus, "full")
                    if mine and theirs:
                        out.append(
                            (
                                f"{other} / news-etl full-load time, {backend} {corpus}",
                                theirs.wall_seconds / mine.wall_seconds,
                            )
                        )
        for tool, backend in pairs:
            for corpus in corpora:
                full = self.find(tool, backend, corpus, "full")
                for run in ETL_RUNS[1:]:
                    again = self.find(tool, backend, corpus, run)
                    if full and again:
                        out.append(
                            (
                                f"{tool} {backend} {corpus}: {run} / full-load time",
                                again.wall_seconds / full.wall_seconds,
                            )
                        )
        out += self.head_base()
        for tool, backend in pairs:
            small = self.find(tool, backend, corpora[0], "full") if corpora else None
            for corpus in corpora[1:]:
                large = self.find(tool, backend, corpus, "full")
                if small and large:
                    out.append(
                        (
                            f"{tool} {backend}: {corpus} / {small.corpus} time",
                            large.wall_seconds / small.wall_seconds,
                        )
                    )
                    out.append(
                        (
                            f"{tool} {backend}: {corpus} / {small.corpus} peak RSS (tree sum)",
                            large.rss_sum_mb / small.rss_sum_mb if small.rss_sum_mb else 0.0,
                        )
                    )
        return out

    def head_base(self) -> list[tuple[str, float]]:
        """--base: this tree's median time over the base commit's, per run."""
        out: list[tuple[str, float]] = []
        for base in self.results:
            if base.tool != BASE_TOOL or base.error:
                continue
            head = self.find("news-etl", base.backend, base.corpus, base.run)
            if head and base.wall_seconds:
                out.append(
                    (
                        f"news-etl head / base {self.base_commit} time, {base.backend} "
                        f"{base.corpus} {base.run}",
                        head.wall_seconds / base.wall_seconds,
                    )
                )
        return out

    def head_base_lines(self) -> list[str]:
        """--base: the medians side by side, with every round's time."""
        lines = []
        for base in self.results:
            head = self.find("news-etl", base.backend, base.corpus, base.run)
            if base.tool != BASE_TOOL or base.error or not head or not base.wall_seconds:
                continue
            lines.append(
                f"  {base.backend:<11}{base.corpus:>4} {base.run:<9}{base.wall_seconds:>8.2f}"
                f"{head.wall_seconds:>8.2f}{head.wall_seconds / base.wall_seconds:>8.2f}"
                f"  base {base.repeats}, head {head.repeats}"
            )
        if not lines:
            return []
        return [
            "",
            f"head / base {self.base_commit} (median wall s of {self.args.repeat} alternating "
            "rounds):",
            f"  {'backend':<11}{'size':>4} {'run':<9}{'base':>8}{'head':>8}{'ratio':>8}"
            "  every round",
            *lines,
        ]

    def phase_lines(self) -> list[str]:
        """news-etl's own timings of each median run: where its time went."""
        lines: list[str] = []
        for r in self.results:
            t = r.phases
            if not t or r.error:
                continue
            kinds = t.get("lock_kinds", {})
            outside = t.get("lock", 0.0) - sum(kinds.values())
            top = ", ".join(f"{name} {value:.2f}" for name, value in list(kinds.items())[:6])
            lines.append(
                f"  {r.tool:<14}{r.backend:<11}{r.corpus:>4} {r.run:<8}"
                f"{t.get('startup', 0):>8.2f}{t.get('load', 0):>7.2f}{t.get('finish', 0):>7.2f}"
                f"{t.get('fill', 0):>7.2f}{t.get('wait', 0):>7.2f}{t.get('lock', 0):>7.2f}"
                f"  {top}; not in statements {outside:.2f}"
            )
        if not lines:
            return []
        header = (
            f"  {'tool':<14}{'backend':<11}{'size':>4} {'run':<8}{'startup':>8}{'load':>7}"
            f"{'finish':>7}{'fill':>7}{'wait':>7}{'lock':>7}  lock by statement kind"
        )
        return [
            "",
            "phases (s; fill: CPU-s, wait and lock: summed over the processes):",
            header,
            *lines,
        ]

    def table(self) -> str:
        header = (
            f"{'tool':<15}{'backend':<11}{'corpus':>6} {'run':<9}{'documents':>10}"
            f"{'wall s':>9}{'docs/s':>9}{'CPU s':>8}{'PSS MB':>8}{'RSS tree MB':>13}"
            f"{'RSS 1-proc MB':>15}"
            f"{'load1':>7}  outcome"
        )
        lines = [header, "-" * (len(header) + 40)]
        for r in self.results:
            if r.error:
                lines.append(
                    f"{r.tool:<15}{r.backend:<11}{r.corpus:>6} {r.run:<9}{r.documents:>10}"
                    f"  FAILED: {r.error}"
                )
                continue
            lines.append(
                f"{r.tool:<15}{r.backend:<11}{r.corpus:>6} {r.run:<9}{r.documents:>10}"
                f"{r.wall_seconds:>9.1f}{r.docs_per_second:>9.0f}{r.cpu_seconds:>8.1f}"
                f"{r.pss_sum_mb:>8.0f}{r.rss_sum_mb:>13.0f}"
                f"{r.rss_max_mb:>15.0f}{r.load_average[0]:>7.2f}  {r.outcome}"
            )
        lines += self.phase_lines()
        lines += self.head_base_lines()
        ratios = self.ratios()
        if ratios:
            lines += ["", "ratios:"]
            width = max(len(name) for name, _ in ratios)
            lines += [f"  {name:<{width}}  {value:6.2f}" for name, value in ratios]
        if self.timings:
            lines += [
                "",
                "time per part (s): "
                + ", ".join(f"{name} {seconds:.0f}" for name, seconds in self.timings.items()),
            ]
        return "\n".join(lines)

    def report(self) -> dict[str, Any]:
        return {
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "load_average_end": os.getloadavg(),
            },
            "comparison_python": {"path": self.args.dlt_python, **getattr(self, "probe", {})},
            "notes": self.notes,
            "base": {"commit": self.base_commit} if self.base_etl else None,
            "edited_documents": self.edited,
            "timings": {name: round(value, 2) for name, value in self.timings.items()},
            "results": [result.to_dict() for result in self.results],
            "ratios": {name: round(value, 3) for name, value in self.ratios()},
        }
