"""The command line's options (``parse_args``) and their defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from databases import BACKENDS, DEFAULT_MARIADB, DEFAULT_PG
from installs import REPO

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "azure-news.tar.xz"
DEFAULT_ETL = REPO / ".venv" / "bin" / "etl"
TOOLS = ("etl", "dlt", "sqlite-utils")


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
    add_size_options(parser)
    add_tool_options(parser)
    add_run_options(parser)
    return parser.parse_args(argv)


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """The corpus, its sizes and how often each is measured."""
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


def add_tool_options(parser: argparse.ArgumentParser) -> None:
    """Which tools run on which backends, and where the tools and servers are."""
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


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The work directory, what is kept, the sampling, --base and the JSON report."""
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
