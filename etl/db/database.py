"""Database connections and migrations: URLs, engines, Alembic.

Owns how a database URL becomes a working engine on each backend (driver choice,
SQLite pragmas, utf8mb4 on MariaDB and one TLS context per process for PyMySQL,
connect timeouts, lost connections discarded (``disconnects``); the locks are
``etl.db.locks``'),
whose engine a caller uses and who disposes of it (:func:`engine_for`), password
redaction, SQLite files (never created by a command that only reads, removed when a
failed run leaves one empty), whether a database holds the schema at all, and the
Alembic calls behind ``etl db ...`` and the automatic upgrade of ``etl run``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from etl.db import disconnects, head_schema, locks
from etl.db.defaults import DEFAULT_CONNECT_TIMEOUT as DEFAULT_CONNECT_TIMEOUT
from etl.db.defaults import DEFAULT_DATABASE_URL as DEFAULT_DATABASE_URL
from etl.db.defaults import ENV_VAR as ENV_VAR
from etl.db.load_data import LOCAL_FILES
from etl.db.schema import SCHEMA_REVISION
from etl.records import ConfigurationError as ConfigurationError
from etl.records import DatabaseUnavailable as DatabaseUnavailable

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: a run against an up-to-date database
# never needs it, and importing it is a third of the start-up time of a re-run.

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Shipped inside the package, so a wheel install can create and upgrade the schema.
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


class NotAnEtlDatabase(ConfigurationError):
    """The database exists (or not) but holds no news-etl schema (exit code 2)."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where} is not an etl database: run `etl db upgrade`")


def resolve_url(url: str | URL | None = None) -> URL:
    """The URL to use: the argument, else ``$ETL_DATABASE_URL``, else the SQLite default.

    ``postgresql://`` and ``mysql://``/``mariadb://`` without a driver get the
    drivers this project ships (psycopg 3, PyMySQL with utf8mb4).
    """
    raw = url or os.environ.get(ENV_VAR) or DEFAULT_DATABASE_URL
    try:
        parsed = make_url(raw)
        parsed.port  # noqa: B018 - a non-numeric port raises here, not at connect time
    except (ArgumentError, ValueError) as exc:
        # The message names the problem, never the URL (it may hold a password).
        raise ConfigurationError(
            f"not a valid database URL ({type(exc).__name__}); "
            "expected for example postgresql://user@host:5432/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def redact(url: URL | str) -> str:
    """The URL as it may appear in logs: never with its password."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<unparseable database URL>"
    return url.render_as_string(hide_password=True)


def describe_error(exc: BaseException) -> str:
    """One line for an error, without the SQL parameters (data) SQLAlchemy appends."""
    if isinstance(exc, KeyboardInterrupt) and str(exc):  # RunInterrupted: "interrupted by ..."
        return str(exc)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        message = str(exc.orig).strip()
        first = message.splitlines()[0] if message else ""
        return f"{type(exc.orig).__name__}: {first}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def make_engine(
    url: str | URL | None = None,
    *,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    read_only: bool = False,
) -> Engine:
    """An engine for ``url``; ``connect_timeout`` seconds (None: no limit) for a server
    to accept a connection. SQLite has none: it waits up to 300 s for a write lock.
    ``read_only``: for readers such as the change feed; on SQLite their transactions are
    not ``BEGIN IMMEDIATE``, so they never wait for the writer lock."""
    resolved = resolve_url(url)
    backend = resolved.get_backend_name()
    options: dict[str, Any] = {"pool_pre_ping": True}
    if connect_timeout is not None and connect_timeout <= 0:
        raise ConfigurationError(f"the connect timeout must be positive, not {connect_timeout}")
    if backend == "sqlite":
        options["connect_args"] = {"timeout": 300}
    elif backend in ("mysql", "mariadb"):
        options["pool_recycle"] = 3600
        options["connect_args"] = {}
        if not {"local_infile", "client_flag"} & resolved.query.keys():
            # The capability for LOAD DATA LOCAL, without PyMySQL's permission to send
            # files (local_infile=True would give both): etl.db.load_data grants that
            # for its own file, during its own statement.
            options["connect_args"]["client_flag"] = LOCAL_FILES
        if connect_timeout is not None and "connect_timeout" not in resolved.query:
            # PyMySQL's connect_timeout covers the TCP connect only; the server's greeting
            # is read under read_timeout, which _configure_mysql lifts once connected.
            seconds = max(1, round(connect_timeout))
            options["connect_args"].update(connect_timeout=seconds, read_timeout=seconds)
    elif (
        backend == "postgresql"
        and connect_timeout is not None
        and "connect_timeout" not in resolved.query
    ):
        # libpq counts whole seconds (and treats 1 as 2).
        options["connect_args"] = {"connect_timeout": max(2, round(connect_timeout))}
    if backend == "postgresql" and resolved.get_driver_name() in ("psycopg", "psycopg2"):
        # No column is an hstore: without this, an engine's first connection (each
        # run's) asks the server for the type (a savepoint, a catalog query, a release).
        options["use_native_hstore"] = False
    if backend != "sqlite":
        # The pool's rollback of a returned connection is done by
        # disconnects.roll_back_on_return, registered below, which discards a lost one.
        options["pool_reset_on_return"] = None
    try:
        engine = create_engine(resolved, **options)
    except ArgumentError as exc:
        raise ConfigurationError(f"cannot use database URL {redact(resolved)}: {exc}") from None
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"no driver for {redact(resolved)}: {exc.name} is not installed"
        ) from None
    if backend == "sqlite":
        _configure_sqlite(engine, writer=not read_only)
    else:
        disconnects.roll_back_on_return(engine)
        if engine.dialect.driver == "psycopg":
            disconnects.count_lost_connections(engine)
    if backend in ("mysql", "mariadb"):
        if engine.dialect.driver == "pymysql":
            _share_tls_context(engine)
        if "read_timeout" in options["connect_args"]:
            _configure_mysql(engine)
    return engine


@contextmanager
def engine_for(
    url: str | URL | None = None,
    engine: Engine | None = None,
    *,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    read_only: bool = False,
    existing: bool = False,
) -> Iterator[Engine]:
    """The caller's ``engine``, left as it is, or else a new one for ``url`` (see
    :func:`make_engine`), disposed of when the block ends. ``existing``: for a command
    that only reads, a missing SQLite file is ``NotAnEtlDatabase``, never created."""
    if engine is not None:
        yield engine
        return
    if existing:
        require_existing_file(url)
    created = make_engine(url, connect_timeout=connect_timeout, read_only=read_only)
    try:
        yield created
    finally:
        created.dispose()


def _share_tls_context(engine: Engine) -> None:
    """PyMySQL connections that share one TLS context where they were given no TLS
    options (:func:`_shared_tls_connection_class`)."""

    @event.listens_for(engine, "do_connect")
    def _on_do_connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return _shared_tls_connection_class()(*cargs, **cparams)


@functools.cache  # one class, and so one shared context, per process
def _shared_tls_connection_class() -> Any:
    """A PyMySQL connection whose TLS context, when it was given no TLS options, is
    made once per process.

    Given none, PyMySQL tries TLS where the server offers it, without verifying
    anything, and builds a default context for every connection to do so: 36 ms each,
    reading the system's certificate store into a context that verifies nothing. A
    full load connects four times, and the test suite thousands of times. The shared
    context is the one PyMySQL builds, built once; a URL that gives any TLS option
    gets PyMySQL's own context, as before.
    """
    import pymysql.connections  # type: ignore[import-untyped]

    class _SharedTLSConnection(pymysql.connections.Connection):  # type: ignore[misc]
        shared: Any = None  # the context, built by the first connection that needs it

        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if sslp != {}:
                return super()._create_ssl_ctx(sslp)
            if _SharedTLSConnection.shared is None:
                _SharedTLSConnection.shared = super()._create_ssl_ctx({})
            return _SharedTLSConnection.shared

    return _SharedTLSConnection


def _configure_mysql(engine: Engine) -> None:
    """Once connected, no read timeout: a statement may wait long for the writer lock."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection._read_timeout = None  # PyMySQL's, used from the next read on
        sock = getattr(dbapi_connection, "_sock", None)
        if sock is not None:
            sock.settimeout(None)
            dbapi_connection._current_timeout = None


def sqlite_file(url: str | URL | None) -> Path | None:
    """The file of an SQLite database URL; None for servers and in-memory databases."""
    resolved = resolve_url(url)
    if resolved.get_backend_name() != "sqlite" or is_in_memory_sqlite(resolved):
        return None
    database = resolved.database or ""
    if database.startswith("file:"):  # a URI filename (?uri=true)
        database = database[len("file:") :].partition("?")[0]
    return Path(database)


def require_existing_file(url: str | URL | None) -> None:
    """For commands that only read: an SQLite file that does not exist is not created."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise NotAnEtlDatabase(f"{path}: no such file, so it")


def discard_if_empty(path: Path | None) -> None:
    """Remove an SQLite file (and its -wal, -shm) that holds no table at all.

    For a file this process created: a run or command that failed before the schema
    was created (or a dry run) leaves no empty database behind.
    """
    if path is None or not path.exists():
        return
    try:
        if path.stat().st_size:
            uri = f"{path.resolve().as_uri()}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    return
    except (OSError, sqlite3.Error):
        return  # not ours to judge: leave it
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        with contextlib.suppress(FileNotFoundError):
            (path.parent / name).unlink()


def require_etl_schema(conn: Connection) -> None:
    """Raise ``NotAnEtlDatabase`` unless the ledger tables exist."""
    if not inspect(conn).has_table("etl_runs"):
        raise NotAnEtlDatabase(f"database {redact(conn.engine.url)}")


def is_in_memory_sqlite(url: URL) -> bool:
    """An SQLite database that lives in one connection's memory: no file, no sharing."""
    if url.get_backend_name() != "sqlite":
        return False
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _configure_sqlite(engine: Engine, *, writer: bool = True) -> None:
    """Foreign keys on, WAL, and BEGIN IMMEDIATE so concurrent writers queue, not fail."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not is_in_memory_sqlite(engine.url):
            # WAL is a property of the file: when a concurrent run holds the lock
            # while switching it, that run sets it for us; don't fail the connection.
            with contextlib.suppress(sqlite3.OperationalError):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # A full load's batches write ~10 MB each: checkpointing the WAL every 4,000
            # pages instead of 1,000 copies a page rewritten by several batches once,
            # not once per batch (6 alternating rounds: -0.2 s, -0.3 CPU-s of 4 s).
            cursor.execute("PRAGMA wal_autocheckpoint=4000")
        cursor.close()

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exc: BaseException | None) -> None:
        # Before every connection SQLAlchemy drops. It drops one whose statement a
        # signal's exception interrupted (etl.runner.interrupts) with that statement's
        # cursor open, and sqlite3 then keeps the connection, and its write lock, until
        # the cursor is freed: the run's end, recorded through another connection,
        # waited the 300 s busy timeout for it. Rolled back first, it keeps at most a
        # read snapshot, which blocks no writer in WAL mode.
        with contextlib.suppress(sqlite3.Error):
            dbapi_connection.rollback()

    if writer:  # a reader's statements read on their own (WAL: readers never block writers)
        locks.begin_immediate(engine)


# --- migrations -------------------------------------------------------------------


def alembic_config(engine: Engine | None = None, url: str | URL | None = None) -> Config:
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").exists():
        raise ConfigurationError(
            f"Alembic migrations not found at {MIGRATIONS_DIR}: the installation is incomplete; "
            "reinstall news-etl"
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option(
            "sqlalchemy.url",
            resolve_url(url).render_as_string(hide_password=False).replace("%", "%%"),
        )
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    """The newest migration on disk (``etl.db.schema.SCHEMA_REVISION`` must equal it)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database without the schema."""
    with engine.connect() as conn:
        return _read_revision(conn)


def schema_is_current(conn: Connection) -> bool:
    """Whether the database is at the code's revision: what nearly every run finds,
    checked on its own connection (``current_revision`` opens one more)."""
    return _read_revision(conn) == SCHEMA_REVISION


def _read_revision(conn: Connection, commit: bool = True) -> str | None:
    # What Alembic's MigrationContext reads, without importing Alembic.
    versions: list[str] = []
    if inspect(conn).has_table("alembic_version"):
        query = text("SELECT version_num FROM alembic_version")
        versions = list(conn.execute(query).scalars().all())
    if commit:  # the inspection's transaction too, where there is no table
        conn.commit()
    if len(versions) > 1:
        raise ConfigurationError(f"alembic_version holds several revisions: {sorted(versions)}")
    return versions[0] if versions else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def upgrade_sql(url: str | URL | None, revision: str = "head") -> str:
    """The SQL ``upgrade`` would run (Alembic offline mode), for DBAs who apply it by hand."""
    from alembic import command

    config = alembic_config(url=url)
    buffer = io.StringIO()
    config.output_buffer = buffer
    with redirect_stdout(buffer):
        command.upgrade(config, revision, sql=True)
    return buffer.getvalue()


def history() -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [f"{rev.revision}  {rev.doc or ''}".rstrip() for rev in script.walk_revisions()]


def ensure_schema(engine: Engine) -> None:
    """Upgrade to head if the database is behind (the default of ``etl run``): an
    empty database from the recorded head schema (``etl.db.head_schema``), any other
    through Alembic.

    Under a server-wide lock, so that runs starting together on an empty
    database do not both create the tables; SQLite has none, and its writers check
    again inside the transaction that excludes the others (``head_schema.create``).
    """
    if current_revision(engine) == SCHEMA_REVISION:
        return
    with engine.connect() as conn, locks.migration_lock(conn):
        current = _read_revision(conn)
        # An empty database: the chain's statements as recorded, without Alembic.
        if current is None:
            if head_schema.create(conn):
                log.info("schema created at revision %s (etl/migrations/head)", SCHEMA_REVISION)
                return
            current = _read_revision(conn)  # SQLite: another run may have made it since
        from alembic import command

        if current != head_revision():
            config = alembic_config(engine)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()


def prepare_in_transaction(conn: Connection, migrate: bool) -> None:
    """A dry run's schema check, inside its transaction (which is rolled back).

    A database behind the code is upgraded inside the transaction where DDL is
    transactional (PostgreSQL, SQLite), so the upgrade vanishes with the rest; MariaDB
    commits DDL, so a dry run there needs a current schema.
    """
    current = _read_revision(conn, commit=False)
    if current == SCHEMA_REVISION:
        return
    where = redact(conn.engine.url)
    if not migrate:
        raise ConfigurationError(
            f"database {where} is at revision {current or 'none'}, the code needs "
            f"{SCHEMA_REVISION}: run `etl db upgrade` (or drop --no-migrate)"
        )
    if conn.dialect.name not in ("postgresql", "sqlite"):
        raise ConfigurationError(
            f"database {where} is at revision {current or 'none'}, the code needs "
            f"{SCHEMA_REVISION}, and {conn.dialect.name} cannot roll a schema upgrade back: "
            "run `etl db upgrade` before a dry run"
        )
    from alembic import command

    config = alembic_config(conn.engine)
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def require_schema(engine: Engine) -> None:
    """With ``--no-migrate``: refuse to run against a database that is not at head."""
    current, head = current_revision(engine), SCHEMA_REVISION
    if current != head:
        raise ConfigurationError(
            f"database {redact(engine.url)} is at revision {current or 'none'}, the code needs "
            f"{head}: run `etl db upgrade` (or drop --no-migrate)"
        )
