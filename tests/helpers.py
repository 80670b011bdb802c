"""Test helpers shared by the test modules (which never import each other or conftest).

- paths of the repository and its seed documents;
- test databases: a fresh one per backend (``make_database``), and a connection to one
  (``connect``, ``fetch``); what a database holds, as plain data to compare, is in
  ``tests.snapshots``;
- YAML: ``dump_yaml``, which never writes anchors or aliases (the pipeline refuses them);
- the ``etl`` command and Python snippets in a fresh interpreter, run outside the
  checkout (``run_etl``, ``start_etl``, ``run_python``, ``start_python``);
- documents made from the seed with a unique token, and the checks that one was
  rejected or loaded (``make_doc``, ``render``, ``assert_rejected``, ``assert_loaded``).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from sqlalchemy import Connection, Row, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

import etl
from etl.db.database import resolve_url
from etl.db.schema import articles, rejected_documents
from etl.records import Rejection, RunSummary

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_PATH = SEEDS / "000_af0cddeac82c129c.md"

# --- test databases -------------------------------------------------------------------

POSTGRES_URL = os.environ.get(
    "ETL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MARIADB_URL = os.environ.get("ETL_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")
REQUIRE_SERVERS = os.environ.get("ETL_TEST_REQUIRE_SERVERS") == "1"

BACKENDS = ["sqlite", "postgresql", "mariadb"]


def unavailable(reason: str) -> None:
    """Skip the test (a laptop without the server), or fail it where servers are required."""
    if REQUIRE_SERVERS:
        pytest.fail(f"{reason} (ETL_TEST_REQUIRE_SERVERS=1: servers are required)")
    pytest.skip(reason)


def _server_database(admin_url: str, backend: str) -> Generator[str]:
    """Create a uniquely named database on a server, yield its URL, drop it afterwards."""
    admin = resolve_url(admin_url)
    name = f"etl_test_{uuid.uuid4().hex[:12]}"
    options = {"isolation_level": "AUTOCOMMIT"} if backend == "postgresql" else {}
    try:
        engine = create_engine(admin, **options)
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        unavailable(f"{backend} server at {admin.render_as_string()} unavailable: {exc}")
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


def make_database(backend: str, tmp_path: Path) -> Generator[str]:
    """A fresh, empty database on ``backend``: ``next()`` gives its URL, ``close()``
    drops it (a SQLite file lives in ``tmp_path``)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    elif backend == "postgresql":
        yield from _server_database(POSTGRES_URL, backend)
    else:
        yield from _server_database(MARIADB_URL, backend)


@contextmanager
def connect(url: str, **engine_options: Any) -> Iterator[Connection]:
    """A connection to the database at ``url``; its engine is disposed of afterwards."""
    engine = create_engine(resolve_url(url), **engine_options)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def fetch(url: str, query: Executable) -> list[Row[Any]]:
    """Every row ``query`` returns from the database at ``url``."""
    with connect(url) as conn:
        return list(conn.execute(query))


def kill_other_connections(url: str, timeout: float = 60) -> int:
    """Kill, from a connection of its own, every other connection to the database at
    ``url``, as an operator or a failover would, and wait until the server has closed
    them; how many it killed."""
    postgresql = make_url(url).get_backend_name() == "postgresql"
    if postgresql:
        others = text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        kill = "SELECT pg_terminate_backend({})"
    else:
        others = text(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
        kill = "KILL {}"
    with connect(url, poolclass=NullPool, isolation_level="AUTOCOMMIT") as conn:
        killed = set()
        for session in conn.execute(others).scalars():
            with contextlib.suppress(DBAPIError):  # it ended meanwhile
                conn.execute(text(kill.format(int(session))))
                killed.add(session)
        deadline = time.monotonic() + timeout
        while killed & set(conn.execute(others).scalars()):
            assert time.monotonic() < deadline, f"connections {killed} still open"
            time.sleep(0.01)
    return len(killed)


# --- YAML -------------------------------------------------------------------------------

if TYPE_CHECKING:
    _SafeDumper = yaml.SafeDumper
else:  # libyaml's dumper where PyYAML has it
    _SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class NoAliasDumper(_SafeDumper):
    """Never writes anchors/aliases (the pipeline rightly refuses them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any, **options: Any) -> str:
    """``data`` as block YAML in key order, with text as is and no anchors or aliases."""
    text: str = yaml.dump(
        data, Dumper=NoAliasDumper, sort_keys=False, allow_unicode=True, **options
    )
    return text


# --- fresh interpreters: the etl command, and Python snippets -----------------------------

CLI_TIMEOUT = 180
# For a command that builds and installs a wheel or loads the whole shared corpus.
SLOW_CLI_TIMEOUT = 300

_scratch: Path | None = None


def scratch_dir() -> Path:
    """A new empty directory outside the checkout, removed when the tests end: where a
    fresh interpreter runs unless the test gives ``cwd``, so that whatever it writes to
    a relative path (the default ``etl.sqlite3``, say) lands there, and a database left
    in the checkout by hand is never what a test finds."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="etl-tests-"))
        atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=_scratch))


def etl_argv(*args: str, exe: list[str] | None = None) -> list[str]:
    """``python -m etl ARGS`` with this interpreter (or ``exe ARGS``: an installed ``etl``)."""
    return [*(exe or [sys.executable, "-m", "etl"]), *args]


def etl_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without the user's ``ETL_*`` settings (the tests' own
    ``ETL_TEST_*`` stay), plus ``env``."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ETL_") or key.startswith("ETL_TEST_")
    }
    return {**clean, **(env or {})}


def _run(
    argv: list[str], cwd: Path | None, env: dict[str, str] | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``argv`` in a fresh interpreter (a crash or hang cannot take pytest with it); one
    that does not finish within ``timeout`` seconds fails the test."""
    try:
        return subprocess.run(
            argv,
            cwd=cwd or scratch_dir(),
            env=etl_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(argv)[:300]} did not finish within {timeout}s (hangs): {exc}")


def run_etl(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
    exe: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``etl ARGS`` in a fresh interpreter, in ``cwd`` (default: a :func:`scratch_dir`)."""
    return _run(etl_argv(*args, exe=exe), cwd, env, timeout)


def start_etl(*args: str, cwd: Path | None = None, **popen: Any) -> subprocess.Popen[Any]:
    """``etl ARGS`` started in a fresh interpreter, for a test that interrupts it or runs
    several at once; ``popen`` are ``subprocess.Popen`` options (output, session)."""
    return subprocess.Popen(etl_argv(*args), cwd=cwd or scratch_dir(), env=etl_env(), **popen)


def run_python(
    code: str, *args: str, cwd: Path | None = None, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Python ``code`` in a fresh interpreter, ``args`` in its ``sys.argv[1:]``: for what
    must run in a process of its own (signals, peak memory, a clean import state)."""
    return _run([sys.executable, "-c", code, *args], cwd, None, timeout)


def start_python(code: str, *args: str, **popen: Any) -> subprocess.Popen[Any]:
    """Python ``code`` started in a fresh interpreter (see :func:`run_python`)."""
    argv = [sys.executable, "-c", code, *args]
    return subprocess.Popen(argv, cwd=scratch_dir(), env=etl_env(), **popen)


# --- documents --------------------------------------------------------------------------


def token() -> str:
    """A random tag for one test's URLs, titles and file names."""
    return uuid.uuid4().hex[:12]


def url_for(tag: str, path: str = "story/1") -> str:
    return f"https://{tag}.example.com/{path}"


def seed_front_matter() -> dict[str, Any]:
    """The seed document's front-matter, parsed independently of the code under test."""
    text = SEED_PATH.read_text(encoding="utf-8")
    front_matter: dict[str, Any] = yaml.safe_load(text.split("---\n", 2)[1])
    return front_matter


def make_doc(tag: str) -> dict[str, Any]:
    """The seed, with ``tag`` in every identity and text (URLs, title, topics, provider...)."""
    doc = copy.deepcopy(seed_front_matter())
    doc["title"] = f"Title {tag}"
    doc["excerpt"] = f"Excerpt {tag}"
    doc["webUrl"] = doc["originalUrl"] = url_for(tag)
    doc["ampWebUrl"] = url_for(tag, "story/1.amp")
    doc.pop("cdnAmpWebUrl")
    doc["provider"]["name"] = f"Provider {tag}"
    doc["provider"]["domain"] = f"{tag}.example.com"
    doc["provider"]["images"][0]["url"] = url_for(tag, "logo.png")
    doc["topics"] = [f"Topic {tag}", "AI"]
    doc["images"][0]["url"] = url_for(tag, "image.jpg")
    doc["related"][0]["webUrl"] = url_for(f"rel-{tag}")
    doc["related"][0].pop("ampWebUrl")
    doc["related"][0].pop("cdnAmpWebUrl")
    doc["related"][0]["title"] = f"Related {tag}"
    doc["related"][0]["images"][0]["url"] = url_for(f"rel-{tag}", "image.jpg")
    return doc


def render(front_matter: Any, body: str = "Body text.\n") -> bytes:
    """A document file: ``front_matter`` as YAML between ``---`` lines, then ``body``."""
    return f"---\n{dump_yaml(front_matter, width=1 << 30)}---\n{body}".encode()


def write_tree(root: Path, files: Mapping[str, bytes | None]) -> None:
    """Write (or, for None, delete) files under ``root``."""
    for name, data in files.items():
        path = root / name
        if data is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def run_files(url: str, root: Path, files: dict[str, bytes], **options: Any) -> RunSummary:
    """Write ``files`` (name -> content) into ``root`` and run the pipeline over it."""
    root.mkdir(parents=True, exist_ok=True)
    write_tree(root, files)
    return etl.run([root], url, **options)


def rejected_rows(url: str, run_id: int | None) -> list[dict[str, Any]]:
    query = select(rejected_documents).where(rejected_documents.c.run_id == run_id)
    return [dict(row._mapping) for row in fetch(url, query)]


def article_row(url: str, article_url: str) -> dict[str, Any] | None:
    rows = fetch(url, select(articles).where(articles.c.url == article_url))
    return dict(rows[0]._mapping) if rows else None


def assert_rejected(
    url: str, summary: RunSummary, key: str, pattern: str, *, position: bool = False
) -> Rejection:
    """``key`` is rejected once, its reason matches ``pattern``, the table agrees."""
    found = [item for item in summary.rejected if item.path == key]
    assert len(found) == 1, f"{key} not rejected exactly once: {summary.rejected}"
    rejection = found[0]
    assert re.search(pattern, rejection.error, re.IGNORECASE), (
        f"{key}: reason {rejection.error!r} does not match {pattern!r}"
    )
    if position:
        assert isinstance(rejection.line, int) and rejection.line >= 1, (
            f"{key}: a YAML error must give its line: {rejection!r}"
        )
        assert isinstance(rejection.column, int) and rejection.column >= 1, (
            f"{key}: a YAML error must give its column: {rejection!r}"
        )
    assert summary.status == "partial"
    rows = [row for row in rejected_rows(url, summary.run_id) if row["source_path"] == key]
    assert len(rows) == 1, rows
    assert (rows[0]["error"], rows[0]["line"], rows[0]["column"]) == (
        rejection.error,
        rejection.line,
        rejection.column,
    )
    return rejection


def assert_loaded(url: str, summary: RunSummary, key: str, tag: str) -> dict[str, Any]:
    """The good document ``key`` (made by ``make_doc(tag)``) is in the database."""
    assert key not in {item.path for item in summary.rejected}, summary.rejected
    row = article_row(url, url_for(tag))
    assert row is not None, f"{key}: article {url_for(tag)} not loaded"
    assert not row["is_stub"]
    assert row["title"] == f"Title {tag}"
    assert row["source_path"] == key
    return row
