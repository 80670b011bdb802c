"""Benchmark news-etl against dlt (and sqlite-utils) on the shared news corpus.

This is a benchmark, not a test: it asserts nothing, it measures and prints.

What it does, in one run:

1. Builds the corpora in a temporary directory: ``1x`` is the shared corpus's site
   root (``_news/*.md`` and the taxonomy in ``_data/``); ``Nx`` is a site root with the
   same ``_data/`` and its documents replicated N times, replica ``r > 0``
   written as ``r<r>-<name>`` with every ``webUrl``, ``originalUrl``,
   ``ampWebUrl`` and ``cdnAmpWebUrl`` value (front matter and ``related``
   entries alike) rewritten by a plain text replacement on the raw file that
   inserts a path segment after the host (``https://host/path`` ->
   ``https://host/r3/path``), so that links stay consistent inside a replica.
2. Runs ``etl run ROOT --database-url URL --json`` as a subprocess, each time into
   a fresh database and on a fresh hard-link copy of the corpus, on PostgreSQL,
   SQLite and MariaDB, for every size; then an unchanged re-run over the same directory and,
   after the titles of 1% of the documents are edited, a third run (by default for
   1x only). With ``--base COMMIT``, the same runs of COMMIT's news-etl (a git
   worktree with its own venv) alternate with this tree's, round by round.
3. When a Python with dlt is given (``--dlt-python``), runs dlt the same way: a
   ``@dlt.resource(write_disposition="merge", primary_key="webUrl")`` yielding
   each document's front matter parsed with PyYAML's ``CSafeLoader``, into
   PostgreSQL (and into SQLite through dlt's ``sqlalchemy`` destination when
   SQLAlchemy is installed beside dlt), full load and unchanged re-run; and
   sqlite-utils (``upsert_all`` and ``extract`` of the providers) into SQLite.
   Tools that are not installed are skipped with a message.
4. Prints one row per run (wall seconds, documents/second, peak PSS and RSS),
   news-etl's own phase timings of each run (``timings`` in its ``--json``:
   start-up, load, finish, parsing CPU, the writer lock waited for and held and its
   statements by kind), the head / base medians with ``--base``, and the ratios:
   comparison tool / news-etl full load, re-run and 1% edit / full load, Nx / 1x
   time and peak RSS, head / base.

Wall time is measured around the whole subprocess (interpreter start-up and
imports included). Peak RSS is sampled every ``--poll-interval`` seconds from
``/proc/<pid>/status`` over the subprocess's whole process tree (news-etl parses
in forked worker processes): the table shows the peak of the tree's summed
VmRSS (which counts pages shared between processes once per process) and the
peak of the largest single process, and the peak of the summed PSS (shared pages
divided among their sharers, from ``smaps_rollup``, every ``--pss-interval``);
``--json`` adds the kernel's ``ru_maxrss`` from ``os.wait4``.
The database server's own memory (PostgreSQL backends) is not included.

Usage (from the repository root)::

    .venv/bin/python bench/run.py                                # etl only
    python3 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install 'dlt[postgres]' sqlalchemy sqlite-utils pyyaml
    .venv/bin/python bench/run.py --dlt-python /tmp/benchvenv/bin/python
    .venv/bin/python bench/run.py --only etl --sizes 1 --json
    .venv/bin/python bench/run.py --only etl --sizes 1 --base main   # this tree vs main

The same file is also the comparison tools' worker (``run.py worker ...``), run
by ``--dlt-python``; only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "azure-news.tar.xz"
DEFAULT_ETL = REPO / ".venv" / "bin" / "etl"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
DB_PREFIX = "bench_"
TOOLS = ("etl", "dlt", "sqlite-utils")
BACKENDS = ("postgresql", "sqlite", "mariadb")
DEFAULT_MARIADB = "mysql+pymysql://root@127.0.0.1:3306"
BASE_TOOL = "news-etl base"  # --base: the base commit's news-etl
MB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# A URL-valued key's line, up to and including the URL's scheme and host.
URL_KEY = re.compile(
    rb"""^([ \t]*(?:-[ \t]+)?(?:webUrl|originalUrl|ampWebUrl|cdnAmpWebUrl):[ \t]*["']?"""
    rb"""[A-Za-z][A-Za-z0-9+.-]*://[^/"'\s?#]+)""",
    re.MULTILINE,
)


# --- corpora ------------------------------------------------------------------------


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


# --- process-tree memory ------------------------------------------------------------


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


# --- measured runs -------------------------------------------------------------------


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


# --- databases ----------------------------------------------------------------------


class Databases:
    """Creates fresh ``bench_*`` PostgreSQL and MariaDB databases and SQLite files."""

    def __init__(self, pg_base: str, sqlite_dir: Path, mariadb_base: str = DEFAULT_MARIADB):
        self.pg_base = pg_base.rstrip("/")
        self.mariadb_base = mariadb_base.rstrip("/")
        self.sqlite_dir = sqlite_dir
        self.created: list[str] = []
        self.created_mariadb: list[str] = []

    def mariadb_admin(self, statement: str) -> None:
        # news-etl's MariaDB driver, so in the venv that runs the bench.
        import pymysql  # type: ignore[import-untyped]

        rest = self.mariadb_base.split("://", 1)[1]
        credentials, _, host = rest.rpartition("@")
        user, _, password = credentials.partition(":")
        hostname, _, port = host.partition(":")
        with (
            pymysql.connect(
                host=hostname, port=int(port or 3306), user=user or "root", password=password
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)

    def admin(self, statement: str) -> None:
        try:
            import psycopg
        except ImportError:
            subprocess.run(
                ["psql", f"{self.pg_base}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", statement],
                check=True,
                capture_output=True,
            )
            return
        with psycopg.connect(f"{self.pg_base}/postgres", autocommit=True) as connection:
            connection.execute(statement)

    def fresh(self, backend: str, name: str) -> str:
        """A URL to an empty database called ``bench_<name>`` (dropped first if present)."""
        name = DB_PREFIX + re.sub(r"\W", "_", name)
        if backend == "postgresql":
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.admin(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            return f"{self.pg_base}/{name}"
        if backend == "mariadb":
            self.mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")
            self.mariadb_admin(f"CREATE DATABASE `{name}`")
            self.created_mariadb.append(name)
            return f"{self.mariadb_base}/{name}"
        path = self.sqlite_dir / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"

    def drop_all(self) -> None:
        for name in self.created:
            try:
                self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as error:  # a benchmark's clean-up must not hide its results
                print(f"could not drop {name}: {error}", file=sys.stderr)
        for name in self.created_mariadb:
            try:
                self.mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")
            except Exception as error:
                print(f"could not drop {name}: {error}", file=sys.stderr)


def mariadb_available(base: str) -> str | None:
    """None when MariaDB answers, else why not."""
    try:
        Databases(DEFAULT_PG, Path("."), base).mariadb_admin("SELECT 1")
    except Exception as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None


def pg_available(pg_base: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        Databases(pg_base, Path(".")).admin("SELECT 1")
    except Exception as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None


# --- comparison tools: probing -------------------------------------------------------

PROBE = """
import importlib, json
found = {}
for name in ("dlt", "yaml", "sqlite_utils", "sqlalchemy", "psycopg2", "pymysql"):
    try:
        module = importlib.import_module(name)
    except Exception as error:
        found[name] = None
    else:
        found[name] = getattr(module, "__version__", "installed")
try:
    import yaml
    found["yaml_libyaml"] = bool(yaml.__with_libyaml__)
except Exception:
    found["yaml_libyaml"] = False
print(json.dumps(found))
"""


def probe_python(python: str | None) -> dict[str, Any]:
    if not python:
        return {}
    try:
        completed = subprocess.run(
            [python, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        print(f"--dlt-python {python} is unusable: {error}", file=sys.stderr)
        return {}
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


COMPILE = """
import compileall, os, sys, etl
sys.exit(0 if compileall.compile_dir(os.path.dirname(etl.__file__), quiet=1) else 1)
"""


def compile_etl(etl: Path) -> str:
    """Byte-compile the ``etl`` package that ``etl`` runs, as a regular install would.

    pip writes the bytecode of what it installs (dlt, sqlite-utils and all of
    news-etl's dependencies), but an editable install leaves the project's own
    modules to be compiled on first import. Where PYTHONDONTWRITEBYTECODE is set
    (this workplace's shells, many container images), that is every start: ~50 ms
    of compiling on a re-run of ~0.6 s, which no installed tool pays. Returns a note.
    """
    try:
        with etl.open("rb") as handle:
            shebang = handle.readline()
    except OSError as error:
        return f"news-etl's bytecode not compiled: {error}"
    if not shebang.startswith(b"#!"):
        return f"news-etl's bytecode not compiled: {etl} has no #! line"
    python = shebang[2:].decode().strip()
    started = time.perf_counter()
    try:
        subprocess.run([python, "-c", COMPILE], capture_output=True, timeout=300, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        return f"news-etl's bytecode not compiled: {error}"
    return f"compiled news-etl's bytecode with {python} ({time.perf_counter() - started:.1f} s)"


# --- comparison tools: the worker (runs under --dlt-python) -------------------------


def front_matter(path: Path, loader: Any) -> dict[str, Any] | None:
    """The YAML front matter of a Jekyll document as a dict, or None."""
    import yaml

    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        data = yaml.load(text[3:end], Loader=loader)  # CSafeLoader (or SafeLoader)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def documents(directory: Path, counts: dict[str, float]) -> Iterator[dict[str, Any]]:
    """Each document's front matter; ``counts`` gets the files, documents, skipped
    files and the seconds spent reading and parsing them."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(directory.rglob("*.md")):
        counts["files"] += 1
        started = time.perf_counter()
        data = front_matter(path, loader)
        counts["read_parse_seconds"] += time.perf_counter() - started
        if data is None or not data.get("webUrl"):
            counts["skipped"] += 1
            continue
        counts["documents"] += 1
        yield data


def worker_dlt(directory: Path, url: str, pipelines_dir: Path, name: str) -> dict[str, Any]:
    import dlt

    counts: dict[str, float] = {"files": 0, "documents": 0, "skipped": 0, "read_parse_seconds": 0.0}

    @dlt.resource(name="news", write_disposition="merge", primary_key="webUrl")
    def news() -> Iterator[dict[str, Any]]:
        yield from documents(directory, counts)

    if url.startswith("postgresql"):
        # dlt insists on a password even where the server trusts the client: give it
        # a dummy one, which a trust-auth server ignores.
        if "@" in url and ":" not in url.split("://", 1)[1].split("@", 1)[0]:
            url = url.replace("@", ":unused@", 1)
        destination = dlt.destinations.postgres(url)
    else:
        destination = dlt.destinations.sqlalchemy(url)
    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=destination,
        dataset_name="news",
        pipelines_dir=str(pipelines_dir),
    )
    phases: dict[str, float] = {}
    started = time.perf_counter()
    pipeline.extract(news())
    phases["extract"] = time.perf_counter() - started
    started = time.perf_counter()
    normalize_info = pipeline.normalize()
    phases["normalize"] = time.perf_counter() - started
    started = time.perf_counter()
    # SQLite takes one writer at a time: dlt's default 20 parallel load jobs end in
    # "database is locked" once a job outlasts the 5 s busy timeout (as at 10x).
    load_info = pipeline.load(workers=1 if url.startswith("sqlite") else 20)
    phases["load"] = time.perf_counter() - started
    load_info.raise_on_failed_jobs()
    return {
        "dlt_version": dlt.__version__,
        **{key: round(value, 3) for key, value in counts.items()},
        "phases": {key: round(value, 3) for key, value in phases.items()},
        "row_counts": dict(normalize_info.row_counts),
    }


def worker_sqlite_utils(directory: Path, url: str) -> dict[str, Any]:
    import sqlite_utils

    counts: dict[str, float] = {"files": 0, "documents": 0, "skipped": 0, "read_parse_seconds": 0.0}
    database = sqlite_utils.Database(url.removeprefix("sqlite:///"))

    def rows() -> Iterator[dict[str, Any]]:
        for data in documents(directory, counts):
            provider = data.pop("provider", None) or {}
            if isinstance(provider, dict):
                data["provider_name"] = provider.get("name")
                data["provider_domain"] = provider.get("domain")
            yield data

    started = time.perf_counter()
    articles = database.table("articles")  # a Table, never a View
    articles.upsert_all(rows(), pk="webUrl", alter=True)
    upserted = time.perf_counter() - started
    started = time.perf_counter()
    # Each run upserts provider_name/provider_domain columns; extract them into the
    # providers lookup table (reusing the rows already there on a re-run).
    columns = articles.columns_dict
    if "provider_name" in columns:
        if "provider_id" in columns:
            providers = database.table("providers")
            for name, domain in database.execute(
                "SELECT DISTINCT provider_name, provider_domain FROM articles"
                " WHERE provider_name IS NOT NULL OR provider_domain IS NOT NULL"
            ).fetchall():
                providers.lookup({"provider_name": name, "provider_domain": domain})
            database.execute(
                "UPDATE articles SET provider_id = (SELECT id FROM providers p"
                " WHERE p.provider_name IS articles.provider_name"
                " AND p.provider_domain IS articles.provider_domain)"
                " WHERE provider_name IS NOT NULL OR provider_domain IS NOT NULL"
            )
            articles.transform(drop={"provider_name", "provider_domain"})
        else:
            articles.extract(
                ["provider_name", "provider_domain"], table="providers", fk_column="provider_id"
            )
    extracted = time.perf_counter() - started
    return {
        **{key: round(value, 3) for key, value in counts.items()},
        "phases": {"upsert_all": round(upserted, 3), "extract": round(extracted, 3)},
        "row_counts": {table: database[table].count for table in database.table_names()},
    }


def worker_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="run.py worker")
    parser.add_argument("tool", choices=("dlt", "sqlite-utils"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pipelines-dir", type=Path)
    parser.add_argument("--pipeline-name", default="bench_news")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.tool == "dlt":
        summary = worker_dlt(
            args.directory, args.database_url, args.pipelines_dir, args.pipeline_name
        )
    else:
        summary = worker_sqlite_utils(args.directory, args.database_url)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(summary, default=str))
    return 0


# --- a base commit to compare with (--base) -----------------------------------------


def prepare_base(commit: str, target: Path) -> tuple[Path, str, float]:
    """A git worktree of ``commit`` at ``target`` with a venv of its own (``pip install
    -e``, so its dependencies are the ones it declares): its ``etl``, the commit's short
    hash, the seconds it took."""
    started = time.perf_counter()

    def call(*command: str) -> str:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"--base {commit}: {' '.join(command)} failed:\n{done.stderr}")
        return done.stdout.strip()

    short = call("git", "-C", str(REPO), "rev-parse", "--short", f"{commit}^{{commit}}")
    call("git", "-C", str(REPO), "worktree", "add", "--detach", str(target), short)
    call(sys.executable, "-m", "venv", str(target / ".venv"))
    call(str(target / ".venv" / "bin" / "pip"), "install", "-q", "-e", str(target))
    return target / ".venv" / "bin" / "etl", short, time.perf_counter() - started


def remove_base(target: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(target)],
        capture_output=True,
        check=False,
    )


# --- the benchmark -------------------------------------------------------------------


@dataclass
class Plan:
    sizes: list[int]
    rerun_sizes: list[int]
    tools: list[str]
    backends: list[str]
    compare_sizes: list[int] | None = None  # sizes for dlt and sqlite-utils; None: all


class Bench:
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
        pipelines = self.workdir / "dlt-pipelines" / f"{backend}-{corpus}"
        shutil.rmtree(pipelines, ignore_errors=True)
        command = [str(self.args.dlt_python), str(Path(__file__).resolve()), "worker", tool]
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
        if "dlt" in tools and not (found.get("dlt") and found.get("yaml")):
            why = (
                "no --dlt-python given"
                if not self.args.dlt_python
                else (f"dlt or PyYAML is not installed in {self.args.dlt_python}")
            )
            self.note(f"dlt skipped: {why} (see bench/README.md)")
            tools.remove("dlt")
        if "dlt" in tools and not found.get("yaml_libyaml"):
            self.note("PyYAML has no libyaml there: dlt's documents are parsed with SafeLoader")
        if "sqlite-utils" in tools and not (found.get("sqlite_utils") and found.get("yaml")):
            why = (
                "no --dlt-python given"
                if not self.args.dlt_python
                else (f"sqlite-utils or PyYAML is not installed in {self.args.dlt_python}")
            )
            self.note(f"sqlite-utils skipped: {why}")
            tools.remove("sqlite-utils")
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

    # report ------------------------------------------------------------------------

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


def csv_ints(text: str) -> list[int]:
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,10, not {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers")
    return sorted(set(values))


def csv_choices(choices: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        values = [item.strip() for item in text.split(",") if item.strip()]
        wrong = [value for value in values if value not in choices]
        if wrong or not values:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return values

    return parse


def default_dlt_python() -> str | None:
    if env := os.environ.get("BENCH_DLT_PYTHON"):
        return env
    candidate = Path("/tmp/benchvenv/bin/python")
    return str(candidate) if candidate.exists() else None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark news-etl (and dlt, sqlite-utils) on the shared news corpus."
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="the corpus .tar.xz (a site root: _news/, _data/), or a directory: a site root, "
        "or a plain directory of *.md [%(default)s]",
    )
    parser.add_argument(
        "--sizes", type=csv_ints, default=[1, 10], help="corpus sizes as replication factors [1,10]"
    )
    parser.add_argument(
        "--compare-sizes",
        type=csv_ints,
        default=None,
        help="sizes at which dlt and sqlite-utils run (dlt needs ~20 min per backend at 10x) "
        "[all of --sizes]",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="news-etl runs per measurement, the median reported: a run of a few seconds "
        "is at the mercy of a checkpoint or autovacuum (dlt and sqlite-utils run once, "
        "over a minute each) [%(default)s]",
    )
    parser.add_argument(
        "--rerun-sizes",
        type=csv_ints,
        default=[1],
        help="sizes that also get an unchanged re-run [1]",
    )
    parser.add_argument(
        "--only",
        type=csv_choices(TOOLS),
        default=list(TOOLS),
        help=f"tools to run, from {','.join(TOOLS)} [all]",
    )
    parser.add_argument(
        "--backends",
        type=csv_choices(BACKENDS),
        default=list(BACKENDS),
        help="postgresql,sqlite,mariadb [all]",
    )
    parser.add_argument(
        "--etl", type=Path, default=DEFAULT_ETL, help="the etl executable [%(default)s]"
    )
    parser.add_argument(
        "--etl-arg",
        action="append",
        default=[],
        help="an extra argument for `etl run` (repeatable), e.g. --workers=1",
    )
    parser.add_argument(
        "--dlt-python",
        default=default_dlt_python(),
        help="a python with dlt[postgres], sqlite-utils, PyYAML (and SQLAlchemy "
        "for dlt on SQLite) [$BENCH_DLT_PYTHON or /tmp/benchvenv/bin/python]",
    )
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG,
        help="PostgreSQL server URL without a database [%(default)s]",
    )
    parser.add_argument(
        "--mariadb-url",
        default=DEFAULT_MARIADB,
        help="MariaDB server URL without a database [%(default)s]",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where corpora and SQLite files go [a new temporary directory]"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--keep-databases",
        action="store_true",
        help="do not drop the bench_* PostgreSQL databases at the end",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.05,
        help="seconds between memory samples [%(default)s]",
    )
    parser.add_argument(
        "--pss-interval",
        type=float,
        default=0.5,
        help="seconds between PSS samples (smaps_rollup costs CPU); 0: none [%(default)s]",
    )
    parser.add_argument(
        "--base",
        metavar="COMMIT",
        help="also run news-etl at COMMIT (a git worktree with its own venv), alternating "
        "with this tree round by round, and report head / base",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    args = parse_args(argv)
    if not args.corpus.exists():
        raise SystemExit(f"corpus not found: {args.corpus}")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="news-etl-bench-", dir=args.workdir))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="news-etl-bench-"))
    plan = Plan(
        args.sizes,
        [s for s in args.rerun_sizes if s in args.sizes],
        args.only,
        args.backends,
        args.compare_sizes,
    )
    bench = Bench(args, workdir)
    print(f"# work directory {workdir}; load average {os.getloadavg()}", file=sys.stderr)
    try:
        bench.run(plan)
    finally:
        bench.close()
        if args.keep:
            print(f"# kept {workdir}", file=sys.stderr)
        elif any(result.error for result in bench.results):
            for child in workdir.iterdir():  # keep the logs of the failed runs
                if child.is_dir() and child.name != "logs":
                    shutil.rmtree(child, ignore_errors=True)
                elif child.is_file():
                    child.unlink()
            print(f"# a run failed: logs kept in {workdir / 'logs'}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report = json.dumps(bench.report(), indent=2, default=str)
    if args.json_out:
        args.json_out.write_text(report + "\n")
    if args.json:
        print(report)
    else:
        print(bench.table())
        for note in bench.notes:
            print(f"note: {note}")
        print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    failed = any(result.error for result in bench.results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
