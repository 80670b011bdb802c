"""Shared fixtures: the extracted shared corpus and fresh databases on every backend.

Server URLs come from ETL_TEST_POSTGRES_URL and ETL_TEST_MARIADB_URL (defaults: the
servers on 127.0.0.1). A missing server skips its tests on a laptop; with
ETL_TEST_REQUIRE_SERVERS=1 (set by .ci/run) it fails them instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from etl.database import resolve_url

ROOT = Path(__file__).resolve().parent.parent
CORPUS_TARBALL = Path(
    os.environ.get("ETL_TEST_CORPUS", ROOT.parent / "shared" / "corpus" / "azure-news.tar.xz")
)
SEEDS = ROOT / "seeds"

POSTGRES_URL = os.environ.get(
    "ETL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MARIADB_URL = os.environ.get("ETL_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")
REQUIRE_SERVERS = os.environ.get("ETL_TEST_REQUIRE_SERVERS") == "1"

BACKENDS = ["sqlite", "postgresql", "mariadb"]


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVERS:
        pytest.fail(f"{reason} (ETL_TEST_REQUIRE_SERVERS=1: servers are required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared corpus, extracted once per session (``_news/`` and ``_data/``)."""
    if not CORPUS_TARBALL.exists():
        _unavailable(f"shared corpus not found at {CORPUS_TARBALL}")
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


def _server_database(admin_url: str, backend: str) -> Iterator[str]:
    """Create a uniquely named database on a server, yield its URL, drop it afterwards."""
    admin = resolve_url(admin_url)
    name = f"etl_test_{uuid.uuid4().hex[:12]}"
    options = {"isolation_level": "AUTOCOMMIT"} if backend == "postgresql" else {}
    try:
        engine = create_engine(admin, **options)
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        _unavailable(f"{backend} server at {admin.render_as_string()} unavailable: {exc}")
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()


def make_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    elif backend == "postgresql":
        yield from _server_database(POSTGRES_URL, backend)
    else:
        yield from _server_database(MARIADB_URL, backend)


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
