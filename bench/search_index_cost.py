"""What the full-text search index (migration 0009) costs a full load, per backend.

A benchmark, not a test: it asserts nothing. For each backend, each round loads the
corpus (its site root, taxonomy included) into two fresh databases with ``etl run DIR
--json --no-progress`` (a subprocess, as in bench/run.py): one at head, one at head
with the search index's writers dropped (:func:`drop_search_index`: PostgreSQL's GIN
index, MariaDB's FULLTEXT indexes, SQLite's triggers that fill ``articles_fts``). The
schema stays at head, so the run neither migrates nor misses a column of a later
migration. The two alternate, so drift hits both, after one load per backend that is not
counted (the first load after a pause ran 20-40% slower here). Then an unchanged
re-run of each. Reported: the median of the rounds, the overhead of the index from
those medians, and the median of the rounds' own ratios.

Usage (from the repository root)::

    .venv/bin/python bench/search_index_cost.py                      # 3 rounds, all backends
    .venv/bin/python bench/search_index_cost.py --backends sqlite --rounds 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Connection, create_engine, text

from etl.db import database
from etl.db.schema.search import SEARCH_INDEXES, SEARCH_TRIGGERS

ROOT = Path(__file__).resolve().parent.parent
ETL = ROOT / ".venv" / "bin" / "etl"
SERVERS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mysql://root@127.0.0.1:3306/test",
}


def corpus_dir(path: Path, work: Path) -> Path:
    """The corpus's site root (``_news/`` and ``_data/``), extracted into ``work``."""
    if path.is_dir():
        return path
    with tarfile.open(path) as archive:
        archive.extractall(work, filter="data")
    return work


def _admin(backend: str, statement: str) -> None:
    admin = database.resolve_url(SERVERS[backend])
    options = {"isolation_level": "AUTOCOMMIT"} if backend == "postgresql" else {}
    engine = create_engine(admin, **options)
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def fresh_database(backend: str, work: Path) -> str:
    name = f"bench_search_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        return f"sqlite:///{work / (name + '.sqlite3')}"
    _admin(backend, f"CREATE DATABASE {name}")
    admin = database.resolve_url(SERVERS[backend])
    return admin.set(database=name).render_as_string(hide_password=False)


def drop_database(backend: str, url: str) -> None:
    if backend != "sqlite":
        _admin(backend, f"DROP DATABASE IF EXISTS {database.resolve_url(url).database}")


def drop_search_index(conn: Connection) -> None:
    """What writes the search index on ``conn``'s backend, dropped (etl.db.schema.search
    names it). MariaDB keeps the generated columns the FULLTEXT indexes are on, and
    SQLite its (then empty) FTS5 table: the analyst views read them."""
    backend = conn.dialect.name
    if backend == "postgresql":
        drops = [f"DROP INDEX {name}" for name in sorted(SEARCH_INDEXES) if name.startswith("ix_")]
    elif backend in ("mysql", "mariadb"):
        indexes = sorted(name for name in SEARCH_INDEXES if name.startswith("ft_"))
        drops = ["ALTER TABLE articles " + ", ".join(f"DROP INDEX {name}" for name in indexes)]
    else:
        drops = [f"DROP TRIGGER {name}" for name in sorted(SEARCH_TRIGGERS)]
    for statement in drops:
        conn.execute(text(statement))


def prepare(url: str, with_index: bool) -> None:
    """A schema at head; without the index, :func:`drop_search_index`."""
    engine = database.make_engine(url)
    try:
        database.upgrade(engine)
        if not with_index:
            with engine.begin() as conn:
                drop_search_index(conn)
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(text("CHECKPOINT"))
    finally:
        engine.dispose()


def load(url: str, news: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [str(ETL), "run", str(news), "--database-url", url, "--json", "--no-progress"],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"etl run failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "azure-news.tar.xz"
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    report: dict[str, dict[str, list[float]]] = {}
    try:
        news = corpus_dir(args.corpus, work)
        for backend in args.backends.split(","):
            times: dict[str, list[float]] = {
                "full_with": [],
                "full_without": [],
                "rerun_with": [],
                "rerun_without": [],
            }
            warm_up = fresh_database(backend, work)
            try:
                prepare(warm_up, True)
                load(warm_up, news)
            finally:
                drop_database(backend, warm_up)
            for round_ in range(args.rounds):
                order = [True, False] if round_ % 2 == 0 else [False, True]
                for with_index in order:
                    which = "with" if with_index else "without"
                    url = fresh_database(backend, work)
                    try:
                        prepare(url, with_index)
                        time.sleep(2)
                        times[f"full_{which}"].append(load(url, news))
                        time.sleep(2)
                        times[f"rerun_{which}"].append(load(url, news))
                    finally:
                        drop_database(backend, url)
                    print(backend, which, {k: [round(x, 2) for x in v] for k, v in times.items()})
            report[backend] = times
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        "| backend | full load, no index | full load, with index | overhead | "
        "overhead, median of rounds | re-run, no index | re-run, with index |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for backend, times in report.items():
        m = {key: statistics.median(values) for key, values in times.items()}
        overhead = (m["full_with"] / m["full_without"] - 1) * 100
        pairs = zip(times["full_with"], times["full_without"], strict=True)
        paired = statistics.median((w / wo - 1) * 100 for w, wo in pairs)
        print(
            f"| {backend} | {m['full_without']:.2f} s | {m['full_with']:.2f} s | "
            f"{overhead:+.1f}% | {paired:+.1f}% | {m['rerun_without']:.2f} s | "
            f"{m['rerun_with']:.2f} s |"
        )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
