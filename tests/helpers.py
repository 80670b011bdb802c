"""Test helpers shared by the test modules (which never import each other or conftest).

- paths of the repository and its seed documents;
- test databases: a fresh one per backend (``make_database``), a connection to one
  (``connect``, ``fetch``), and its contents as plain, id-free data (``snapshot``;
  ``ReferenceSnapshot`` is the type of conftest's fixture of a clean run's snapshot);
- YAML: ``dump_yaml``, which never writes anchors or aliases (the pipeline refuses them);
- the ``etl`` command and Python snippets in a fresh interpreter, run outside the
  checkout (``run_etl``, ``start_etl``, ``run_python``, ``start_python``);
- documents made from the seed with a unique token, and the checks that one was
  rejected or loaded (``make_doc``, ``render``, ``assert_rejected``, ``assert_loaded``).
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import pytest
import yaml
from sqlalchemy import Column, Connection, Row, Table, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

import etl
from etl.db.database import resolve_url
from etl.db.schema import (
    article_images,
    article_topics,
    articles,
    images,
    metadata,
    provider_images,
    providers,
    rejected_documents,
    related_articles,
    source_files,
    topics,
)
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


def db_text(url: str) -> str:
    """Everything the data tables hold, as one string (to search for a document's token)."""
    return json.dumps(snapshot(url, with_sources=True), default=str, ensure_ascii=False)


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


# --- a database's contents ----------------------------------------------------------------

# The tables that record runs, not what the files say: every other table of etl.db.schema
# is an entity table, and is compared column by column (a table added later too).
LEDGER_TABLES = frozenset(
    {
        "etl_runs",
        "rejected_documents",
        "article_changes",
        "change_feed_state",
    }
)


def compared(table: Table, column: Column[Any], *, with_sources: bool = True) -> bool:
    """Whether two databases that hold the same files must agree on ``column``: all
    but surrogate ids, when and by which run a row was written, the files' stamps
    (sizes, mtimes: not content, and NULL for a file read just after it was written)
    and where a source's checkout lives. The one list of what comparisons ignore.

    ``with_sources=False`` also ignores which source a row came from (the columns that
    refer to sources, and the fingerprint, which hashes the source's name): for the
    same files loaded as differently named sources.
    """
    if column.primary_key and column.name == "id":
        return False
    if column.name in ("created_at", "updated_at", "loaded_at") or column.name.endswith("run_id"):
        return False
    if column.name in ("size", "mtime_ns") or column.name.endswith("_stamp"):
        return False
    if not with_sources:
        target = referenced_table(column)
        if column.name == "fingerprint" or (target is not None and target.name == "sources"):
            return False
    return not (table.name == "sources" and column.name == "root")


def referenced_table(column: Column[Any]) -> Table | None:
    """The entity table a column holds ids of: its foreign key's, else ``X_id`` -> ``Xs``
    (``articles.source_id`` has no foreign key; see etl.db.schema)."""
    for key in column.foreign_keys:
        target: Table = key.column.table
        return target
    if column.name.endswith("_id"):
        return metadata.tables.get(f"{column.name.removesuffix('_id')}s")
    return None


def natural_key(table: Table) -> Column[Any]:
    """The column that identifies an entity: its one unique column (url, domain, slug, name)."""
    (key,) = (column for column in table.columns if column.unique)
    return key


def entity_tables(*, with_sources: bool = True) -> list[Table]:
    return [
        table
        for name, table in sorted(metadata.tables.items())
        if name not in LEDGER_TABLES and (with_sources or not name.startswith("source"))
    ]


def snapshot(url: str, *, with_sources: bool = True) -> dict[str, Any]:
    """Every entity table of etl.db.schema, column by column, with surrogate ids replaced
    by natural keys (article URL, provider domain, topic slug, image URL, source name)
    and rows sorted; ``snapshot["columns"]`` names each table's columns.

    Derived from the schema: a table or column added later is compared without anyone
    listing it. Tables and columns the database's schema revision does not have yet
    are left out: compare an older revision's snapshot with :func:`as_of`.

    Two databases hold the same data exactly when their snapshots are equal,
    whatever order, split or history the files were loaded in.
    """
    with connect(url) as conn:
        inspector = inspect(conn)
        present = {
            table.name: {column["name"] for column in inspector.get_columns(table.name)}
            for table in entity_tables(with_sources=with_sources)
            if inspector.has_table(table.name)
        }
        tables = [metadata.tables[name] for name in sorted(present)]
        keys: dict[str, dict[int, Any]] = {}
        for table in tables:
            if any(column.unique for column in table.columns) and "id" in table.c:
                key = natural_key(table)
                keys[table.name] = {row[0]: row[1] for row in conn.execute(select(table.c.id, key))}
        data: dict[str, Any] = {"columns": {}}
        for table in tables:
            columns = [
                column
                for column in table.columns
                if column.name in present[table.name]
                and compared(table, column, with_sources=with_sources)
            ]
            data["columns"][table.name] = tuple(column.name for column in columns)
            targets = [referenced_table(column) for column in columns]
            rows = []
            for row in conn.execute(select(*columns)):
                rows.append(
                    tuple(
                        keys[target.name].get(value)
                        if target is not None and value is not None
                        else _plain(value)
                        for value, target in zip(row, targets, strict=True)
                    )
                )
            data[table.name] = sorted(rows, key=_row_order)
        return data


class ReferenceSnapshot(Protocol):
    """The type of conftest's ``reference_snapshot`` fixture: the :func:`snapshot` of a
    clean ``etl run ROOT OPTIONS`` into a fresh database on ``backend``."""

    def __call__(self, root: Path, backend: str, *options: str) -> dict[str, Any]: ...


class LoadedCorpus(NamedTuple):
    """The whole shared corpus loaded by one clean ``etl.run`` into a fresh database on
    ``backend`` (conftest's ``corpus_loads`` and ``loaded_corpus``): the run's summary and
    the database's :func:`snapshot` right after it."""

    backend: str
    url: str
    summary: RunSummary
    snapshot: dict[str, Any]


class CorpusLoads(Protocol):
    """The type of conftest's ``corpus_loads`` fixture: the :class:`LoadedCorpus` of
    ``backend``, loaded once per session."""

    def __call__(self, backend: str) -> LoadedCorpus: ...


def records(data: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """A snapshot's rows of ``table`` as column -> value."""
    names = data["columns"][table]
    return [dict(zip(names, row, strict=True)) for row in data[table]]


def _row_order(row: tuple[Any, ...]) -> tuple[tuple[bool, str, str], ...]:
    return tuple((value is None, type(value).__name__, str(value)) for value in row)


def live_snapshot(url: str) -> dict[str, Any]:
    """The snapshot, tombstones aside (removed rows no file describes and nothing links)."""
    data = snapshot(url)
    names = data["columns"]["articles"]
    path_at, removed_at, stub_at = (
        names.index(name) for name in ("source_path", "is_removed", "is_stub")
    )
    data["articles"] = [
        row
        for row in data["articles"]
        if not (row[removed_at] and row[path_at] is None and not row[stub_at])
    ]
    return data


def as_of(data: dict[str, Any], older: dict[str, Any]) -> dict[str, Any]:
    """``data`` restricted to the tables and columns the ``older`` snapshot (an older
    revision) holds."""
    result: dict[str, Any] = {"columns": older["columns"]}
    for table, names in older["columns"].items():
        if table not in data["columns"]:
            continue
        at = [data["columns"][table].index(name) for name in names]
        rows = [tuple(row[i] for i in at) for row in data[table]]
        result[table] = sorted(rows, key=_row_order)
    return result


def counts(url: str) -> dict[str, int]:
    """Row counts of the data tables, plus stubs."""
    with connect(url) as conn:
        result = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                articles,
                providers,
                topics,
                images,
                provider_images,
                article_topics,
                article_images,
                related_articles,
                source_files,
            )
        }
        result["stubs"] = conn.execute(
            select(func.count()).select_from(articles).where(articles.c.is_stub)
        ).scalar_one()
        return result


class Held(NamedTuple):
    """What run counts add up to: full articles (tombstones aside), stubs, links."""

    articles: int
    stubs: int
    links: int


def held(url: str) -> Held:
    """The full articles, stubs and links the database holds now."""
    with connect(url) as conn:

        def number(query: Any) -> int:
            found: int = conn.execute(query).scalar_one()
            return found

        return Held(
            number(
                select(func.count())
                .select_from(articles)
                .where(~articles.c.is_stub, articles.c.source_path.is_not(None))
            ),
            number(select(func.count()).select_from(articles).where(articles.c.is_stub)),
            number(select(func.count()).select_from(related_articles)),
        )


def net_change(runs: Iterable[Mapping[str, Any] | RunSummary]) -> Held:
    """What the counts of ``runs`` (summaries or ``etl_runs`` rows) add up to: articles
    inserted minus removed, stubs created minus deleted, links added minus removed."""
    total = Held(0, 0, 0)
    for item in runs:
        row = item.counts() if isinstance(item, RunSummary) else item
        total = Held(
            total.articles + row["articles_inserted"] - row["articles_removed"],
            total.stubs + row["stubs_created"] - row["stubs_deleted"],
            total.links + row["links_added"] - row["links_removed"],
        )
    return total


def _plain(value: Any) -> Any:
    """Datetimes as ISO text; JSON as sorted text (dicts are not hashable)."""
    if isinstance(value, bool | None):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def loaded_articles(url: str) -> int | None:
    """Full (non-stub) articles committed so far; None while the schema does not exist."""
    backend = make_url(url).get_backend_name()
    try:
        if backend == "sqlite":
            path = make_url(url).database
            if not path or not Path(path).exists():
                return None
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                found: int = conn.execute(
                    "SELECT count(*) FROM articles WHERE NOT is_stub"
                ).fetchone()[0]
                return found
        with connect(url, poolclass=NullPool) as db:
            query = select(func.count()).select_from(articles).where(~articles.c.is_stub)
            count: int = db.execute(query).scalar_one()
            return count
    except (sqlite3.OperationalError, DBAPIError):
        return None
