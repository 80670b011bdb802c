"""The benchmark itself: which tools and backends can run (``Bench.available``), the
corpora built, and every tool's runs, in order, recorded (``Bench.run``)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from corpus import (
    EDIT_RUN,
    EDIT_SHARE,
    ETL_RUNS,
    build_replicas,
    edit_titles,
    extract_corpus,
    link_tree,
    news_dir,
)
from databases import Databases, mariadb_available, pg_available
from installs import compile_etl, prepare_base, remove_base
from measuring import BASE_TOOL, Measurement, measure, median_of, settle
from report import Report
from workers import DLT_MARIADB_DATABASES, probe_python

# The comparison tools' worker is ``run.py worker ...`` (see workers.py).
ENTRY_POINT = Path(__file__).resolve().with_name("run.py")


@dataclass
class Plan:
    sizes: list[int]
    rerun_sizes: list[int]
    tools: list[str]
    backends: list[str]
    compare_sizes: list[int] | None = None  # sizes for dlt and sqlite-utils; None: all


class Bench(Report):
    """One run of the benchmark: its work directory, databases, measurements and notes."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.databases = Databases(args.pg_url, workdir, args.mariadb_url)
        self.results: list[Measurement] = []
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}
        self.base_etl: Path | None = None  # --base: the base commit's etl executable
        self.base_commit = ""
        self.edited = 0  # documents whose title the "1% edit" run edited

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"# {text}", file=sys.stderr, flush=True)

    def record(self, result: Measurement) -> Measurement:
        self.results.append(result)
        status = result.error or f"{result.wall_seconds:.1f}s"
        print(
            f"  {result.tool:<14} {result.backend:<10} {result.corpus:>4} {result.run:<8} "
            f"{status}  rss(tree)={result.rss_sum_mb:.0f}MB",
            file=sys.stderr,
            flush=True,
        )
        return result

    # etl ---------------------------------------------------------------------------

    def etl(self, backend: str, size: int, directory: Path, count: int, rerun: bool) -> None:
        """news-etl's runs, ``--repeat`` rounds of each; with ``--base``, the base commit's
        ``etl`` and this tree's alternately (which goes first alternates too), each
        round on a fresh database and a fresh hard-link copy of the corpus."""
        corpus = f"{size}x"
        runs = list(ETL_RUNS if rerun else ETL_RUNS[:1])
        variants = [("news-etl", self.args.etl)]
        if self.base_etl is not None:
            variants.insert(0, (BASE_TOOL, self.base_etl))
        tries: dict[tuple[str, str], list[Measurement]] = {}
        for round_ in range(self.args.repeat):
            for tool, etl in variants if round_ % 2 == 0 else variants[::-1]:
                for result in self.etl_round(tool, etl, backend, corpus, directory, count, runs):
                    tries.setdefault((tool, result.run), []).append(result)
                    if result.error:
                        self.record(result)
                        return
        for (_, _), measured in tries.items():
            self.record(median_of(measured))

    def etl_round(
        self,
        tool: str,
        etl: Path,
        backend: str,
        corpus: str,
        directory: Path,
        count: int,
        runs: Sequence[str],
    ) -> Iterator[Measurement]:
        """One fresh load of a copy of ``directory``, then the re-runs in ``runs``."""
        copy = self.workdir / "loaded" / directory.name
        shutil.rmtree(copy.parent, ignore_errors=True)
        link_tree(directory, copy)
        url = self.databases.fresh(backend, f"etl_{backend}_{corpus}_{tool}")
        command = [str(etl), "run", str(copy), "--database-url", url, "--json"]
        command += ["--no-progress", *self.args.etl_arg]
        for run in runs:
            if run == EDIT_RUN:
                edited = edit_titles(news_dir(copy), EDIT_SHARE)
                self.edited = max(self.edited, edited)
            settle(self.databases)
            yield measure(
                command,
                Measurement(tool, backend, corpus, run, count),
                interval=self.args.poll_interval,
                log_dir=self.logs,
                pss_interval=self.args.pss_interval,
            )

    # dlt / sqlite-utils ------------------------------------------------------------

    def worker(
        self, tool: str, backend: str, size: int, directory: Path, count: int, rerun: bool
    ) -> None:
        corpus = f"{size}x"
        url = self.databases.fresh(backend, f"{tool.replace('-', '_')}_{backend}_{corpus}")
        if tool == "dlt" and backend == "mariadb":
            # Left from an earlier run, they made its "full load" a merge into old rows:
            # 382 s where a fresh one took 77 s (2026-12-06).
            self.databases.fresh_beside(DLT_MARIADB_DATABASES)
        pipelines = self.workdir / "dlt-pipelines" / f"{backend}-{corpus}"
        shutil.rmtree(pipelines, ignore_errors=True)
        command = [str(self.args.dlt_python), str(ENTRY_POINT), "worker", tool]
        command += [str(directory), "--database-url", url, "--pipelines-dir", str(pipelines)]
        env = dict(os.environ)
        env.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
        env.setdefault("DLT_DATA_DIR", str(self.workdir / "dlt-data"))
        runs = ["full", "re-run"] if rerun else ["full"]
        for run in runs:
            settle(self.databases)
            result = measure(
                command,
                Measurement(tool, backend, corpus, run, count),
                interval=self.args.poll_interval,
                log_dir=self.logs,
                env=env,
                pss_interval=self.args.pss_interval,
            )
            self.record(result)
            if result.error:
                break

    # the whole run -----------------------------------------------------------------

    def available(self, plan: Plan) -> Plan:
        tools, backends = list(plan.tools), list(plan.backends)
        if "postgresql" in backends and (why := pg_available(self.args.pg_url)):
            self.note(f"PostgreSQL skipped: {why}")
            backends.remove("postgresql")
        if "mariadb" in backends and (why := mariadb_available(self.args.mariadb_url)):
            self.note(f"MariaDB skipped: {why}")
            backends.remove("mariadb")
        if not self.args.etl.exists() and "etl" in tools:
            self.note(f"news-etl skipped: {self.args.etl} does not exist")
            tools.remove("etl")
        if "etl" in tools:
            self.note(compile_etl(self.args.etl))
        if "etl" in tools and self.args.base:
            self.base_etl, self.base_commit, seconds = prepare_base(
                self.args.base, self.workdir / "base"
            )
            self.note(f"base {self.args.base} = {self.base_commit}, installed in {seconds:.0f} s")
            self.note(compile_etl(self.base_etl))
        found = (
            probe_python(self.args.dlt_python)
            if ("dlt" in tools or "sqlite-utils" in tools)
            else {}
        )
        self.probe = found
        for tool, module in (("dlt", "dlt"), ("sqlite-utils", "sqlite_utils")):
            if tool in tools and not (found.get(module) and found.get("yaml")):
                why = (
                    "no --dlt-python given"
                    if not self.args.dlt_python
                    else f"{tool} or PyYAML is not installed in {self.args.dlt_python}"
                )
                self.note(f"{tool} skipped: {why} (see bench/README.md)")
                tools.remove(tool)
        if "dlt" in tools and not found.get("yaml_libyaml"):
            self.note("PyYAML has no libyaml there: dlt's documents are parsed with SafeLoader")
        return Plan(plan.sizes, plan.rerun_sizes, tools, backends, plan.compare_sizes)

    def run(self, plan: Plan) -> None:
        plan = self.available(plan)
        started = time.perf_counter()
        base = extract_corpus(self.args.corpus, self.workdir / "corpus")
        count = sum(1 for _ in news_dir(base).glob("*.md"))
        self.timings["extract corpus"] = time.perf_counter() - started
        corpora: dict[int, tuple[Path, int]] = {}
        for size in plan.sizes:
            if size == 1:
                corpora[size] = (base, count)
                continue
            started = time.perf_counter()
            target = self.workdir / f"corpus-{size}x"
            corpora[size] = (target, build_replicas(base, target, size))
            self.timings[f"build {size}x corpus"] = time.perf_counter() - started
        for tool in plan.tools:
            for backend in plan.backends:
                if tool == "sqlite-utils" and backend != "sqlite":
                    continue
                if tool == "dlt" and backend == "mariadb" and not self.probe.get("pymysql"):
                    self.note("dlt on MariaDB skipped: SQLAlchemy or PyMySQL missing beside dlt")
                    continue
                if tool == "dlt" and backend == "sqlite" and not self.probe.get("sqlalchemy"):
                    self.note("dlt on SQLite skipped: SQLAlchemy is not installed beside dlt")
                    continue
                started = time.perf_counter()
                for size in plan.sizes:
                    if tool != "etl" and plan.compare_sizes and size not in plan.compare_sizes:
                        continue
                    directory, documents_count = corpora[size]
                    rerun = size in plan.rerun_sizes
                    if tool == "etl":
                        self.etl(backend, size, directory, documents_count, rerun)
                    else:
                        # The comparison tools load the documents (dlt has no taxonomy).
                        directory = news_dir(directory)
                        self.worker(tool, backend, size, directory, documents_count, rerun)
                self.timings[f"{tool} {backend}"] = time.perf_counter() - started
        if not self.args.keep_databases:
            self.databases.drop_all()

    def close(self) -> None:
        if self.base_etl is not None and not self.args.keep:
            remove_base(self.workdir / "base")
