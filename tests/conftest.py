"""Shared fixtures: the extracted shared corpus, fresh databases on every backend, and
the snapshot of a clean run to compare an interrupted one with; and the check, after
the last test, that no test wrote into the checkout.

Test modules import helpers from ``tests.helpers`` and the helper modules beside it
(``tests.snapshots``, ``tests.sites``, ``tests.analyst_clients``, ``tests.transform_cases``,
``tests.extract_cases``), never from here.

Server URLs come from ETL_TEST_POSTGRES_URL and ETL_TEST_MARIADB_URL (defaults: the
servers on 127.0.0.1). A missing server skips its tests on a laptop; with
ETL_TEST_REQUIRE_SERVERS=1 (set by .ci/run) it fails them instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import etl
from tests.helpers import BACKENDS, ROOT, SEEDS, make_database, run_etl, unavailable
from tests.snapshots import CorpusLoads, LoadedCorpus, ReferenceSnapshot, snapshot

CORPUS_TARBALL = Path(
    os.environ.get("ETL_TEST_CORPUS", ROOT.parent / "shared" / "corpus" / "azure-news.tar.xz")
)


# What tools keep in the checkout as they run (Python's bytecode, pytest's and the
# checkers' caches, Hypothesis's examples, the environment and the editable install).
TOOL_DIRECTORIES = frozenset(
    {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}
)


def checkout_files() -> dict[str, tuple[int, int] | None]:
    """Every file of the checkout, tools' directories aside; the seeds (what tests read,
    and must copy before changing) with their size and modification time."""
    found: dict[str, tuple[int, int] | None] = {}
    for directory, subdirectories, names in os.walk(ROOT):
        subdirectories[:] = [
            name
            for name in subdirectories
            if name not in TOOL_DIRECTORIES and not name.endswith(".egg-info")
        ]
        for name in names:
            path = Path(directory, name)
            stat = path.stat() if path.parent == SEEDS else None
            found[str(path.relative_to(ROOT))] = (stat.st_size, stat.st_mtime_ns) if stat else None
    return found


@pytest.fixture(scope="session", autouse=True)
def checkout_untouched() -> Iterator[None]:
    """Tests write only under temporary directories: after the last test, a file that
    appeared in the checkout, vanished from it or (a seed) changed is an error."""
    before = checkout_files()
    yield
    after = checkout_files()
    changed = sorted({name for name, _ in before.items() ^ after.items()})
    assert not changed, f"the tests changed the checkout {ROOT}: {changed[:20]}"


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared corpus, extracted once per session (``_news/`` and ``_data/``)."""
    if not CORPUS_TARBALL.exists():
        unavailable(f"shared corpus not found at {CORPUS_TARBALL}")
    target = tmp_path_factory.mktemp("corpus")
    if shutil.which("tar"):
        subprocess.run(["tar", "-xJf", str(CORPUS_TARBALL), "-C", str(target)], check=True)
    else:  # pragma: no cover
        with tarfile.open(CORPUS_TARBALL) as archive:
            archive.extractall(target, filter="data")
    return target


@pytest.fixture(scope="session")
def corpus_news(corpus_root: Path) -> Path:
    return corpus_root / "_news"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend (the test is run once per backend)."""
    yield from make_database(request.param, tmp_path)


def _backend_params() -> list[object]:
    return [
        pytest.param(name, marks=() if name == "sqlite" else getattr(pytest.mark, name), id=name)
        for name in BACKENDS
    ]


@pytest.fixture(scope="module", params=_backend_params())
def shared_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One fresh database per backend shared by a whole module.

    For catalogue-style modules whose cases each use their own random tokens: a fresh
    server database per case would cost about a second each.
    """
    databases = make_database(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))
    url = next(databases)
    try:
        yield url
    finally:
        databases.close()


@pytest.fixture(
    params=[pytest.param(name, marks=getattr(pytest.mark, name)) for name in BACKENDS[1:]]
)
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each server (PostgreSQL, MariaDB)."""
    yield from make_database(request.param, tmp_path)


@pytest.fixture(params=["postgresql"])
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database (for tests of PostgreSQL-only behaviour)."""
    yield from make_database("postgresql", tmp_path)


@pytest.fixture(params=["mariadb"])
def mariadb_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh MariaDB database (for tests of MariaDB-only behaviour)."""
    yield from make_database("mariadb", tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'etl.sqlite3'}"


@pytest.fixture(scope="module")
def reference_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceSnapshot]:
    """``reference_snapshot(root, backend, *options)``: the snapshot (sources included)
    of one clean, uninterrupted ``etl run ROOT OPTIONS`` into a fresh database on
    ``backend``; made once per module, its databases dropped after the module."""
    cache: dict[tuple[Path, str, tuple[str, ...]], dict[str, Any]] = {}
    databases: list[Generator[str]] = []

    def get(root: Path, backend: str, *options: str) -> dict[str, Any]:
        key = (root, backend, options)
        if key not in cache:
            place = tmp_path_factory.mktemp(f"reference-{backend}")
            databases.append(make_database(backend, place))
            url = next(databases[-1])
            result = run_etl("run", str(root), "--database-url", url, *options, cwd=place)
            assert result.returncode == 0, result.stderr[-2000:]
            cache[key] = snapshot(url, with_sources=True)
        return cache[key]

    yield get
    for database in databases:
        database.close()


@pytest.fixture(scope="session")
def corpus_loads(
    corpus_news: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CorpusLoads]:
    """``corpus_loads(backend)``: the whole corpus loaded by one clean ``etl.run`` into a
    fresh database on ``backend``, with the run's summary and the snapshot right after it.

    A corpus load is the slowest step of the suite, and several modules need the same
    one (as the database they query, or as the uninterrupted run they compare with): it is
    made once per session, on first use, and dropped at the end. Shared, so a test may
    only read it, or re-run the unchanged files (which adds a run row and leaves the
    snapshot as it is: test_pipeline checks that it does).
    """
    loads: dict[str, LoadedCorpus] = {}
    databases: list[Generator[str]] = []

    def get(backend: str) -> LoadedCorpus:
        if backend not in loads:
            databases.append(make_database(backend, tmp_path_factory.mktemp(f"corpus-{backend}")))
            url = next(databases[-1])
            summary = etl.run([corpus_news], url)
            loads[backend] = LoadedCorpus(backend, url, summary, snapshot(url))
        return loads[backend]

    yield get
    for database in databases:
        database.close()


@pytest.fixture(scope="module", params=_backend_params())
def loaded_corpus(request: pytest.FixtureRequest, corpus_loads: CorpusLoads) -> LoadedCorpus:
    """The session's corpus load (``corpus_loads``) on each backend: the test is run once
    per backend. Read it only."""
    return corpus_loads(request.param)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("db_url") if callspec else None
        if backend in ("postgresql", "mariadb"):
            item.add_marker(getattr(pytest.mark, backend))
        fixtures = getattr(item, "fixturenames", ())
        if "pg_url" in fixtures:
            item.add_marker(pytest.mark.postgresql)
        if "mariadb_url" in fixtures:
            item.add_marker(pytest.mark.mariadb)


def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """A short account of two database snapshots that differ.

    pytest's own diff of two corpus snapshots (hundreds of thousands of rows) runs
    difflib over their whole text and can take hours; this names the differing
    tables and a few rows on each side instead.
    """
    if op != "==" or not isinstance(left, dict) or not isinstance(right, dict):
        return None
    if "articles" not in left or "articles" not in right:
        return None
    lines = ["snapshots differ:"]
    for table in sorted(left.keys() | right.keys()):
        if table not in left or table not in right:
            lines.append(f"  {table}: only on the {'left' if table in left else 'right'}")
            continue
        if left[table] == right[table]:
            continue
        try:
            only_left = sorted(set(left[table]) - set(right[table]), key=repr)
            only_right = sorted(set(right[table]) - set(left[table]), key=repr)
        except TypeError:  # unhashable rows: count them only
            lines.append(f"  {table}: {len(left[table])} rows vs {len(right[table])}")
            continue
        lines.append(f"  {table}: {len(only_left)} rows only left, {len(only_right)} only right")
        for side, rows in (("-", only_left), ("+", only_right)):
            lines.extend(f"    {side} {repr(row)[:300]}" for row in rows[:3])
    return lines
