"""Exit codes a scheduler can trust: 2 for what the operator must fix, 3 only for what
may heal by itself, run as the operator would (``python -m etl`` in a subprocess).

Each row of the README's exit-code table has its example run here, and no command
that only reads leaves a database file behind.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import psycopg
import pymysql  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from etl.runner.failures import is_configuration_error, is_document_error
from tests.helpers import (
    MARIADB_URL,
    POSTGRES_URL,
    ROOT,
    SEEDS,
    connect,
    render,
    run_etl,
    seed_front_matter,
    start_etl,
    write_tree,
)

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _server(url: str, **parts: object) -> str:
    return make_url(url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


# --- the classification, a table of driver errors ---------------------------------------------


def _sqlite_error(path: str, statement: str = "SELECT * FROM sqlite_master") -> sqlite3.Error:
    try:
        sqlite3.connect(path).execute(statement)
    except sqlite3.Error as exc:
        return exc
    raise AssertionError(f"{path} opened")


@pytest.mark.parametrize(
    ("error", "configuration"),
    [
        (psycopg.errors.InvalidCatalogName("database does not exist"), True),  # 3D000
        (psycopg.errors.InvalidPassword("password authentication failed"), True),  # 28P01
        (psycopg.errors.InvalidAuthorizationSpecification("no role"), True),  # 28000
        (psycopg.errors.InsufficientPrivilege("permission denied"), True),  # 42501
        (psycopg.errors.AdminShutdown("terminating connection"), False),  # 57P01
        (psycopg.errors.SerializationFailure("could not serialize"), False),  # 40001
        # A failed connection has no sqlstate: libpq's message carries the server's FATAL.
        (psycopg.OperationalError('failed: FATAL:  database "x" does not exist'), True),
        (psycopg.OperationalError("failed: FATAL:  password authentication failed for"), True),
        (psycopg.OperationalError('failed: FATAL:  role "nobody" does not exist'), True),
        (psycopg.OperationalError("failed: Connection refused"), False),
        (psycopg.OperationalError("failed: timeout expired"), False),
        (psycopg.OperationalError("server closed the connection unexpectedly"), False),
        (pymysql.err.OperationalError(1049, "Unknown database 'x'"), True),
        (pymysql.err.OperationalError(1045, "Access denied for user"), True),
        (pymysql.err.OperationalError(1044, "Access denied for user to database"), True),
        (pymysql.err.OperationalError(2003, "Can't connect to MySQL server"), False),
        (pymysql.err.OperationalError(2013, "Lost connection to MySQL server"), False),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), False),
        (psycopg.errors.UndefinedTable("relation etl_runs does not exist"), True),  # 42P01
        (psycopg.errors.UndefinedColumn("column error does not exist"), True),  # 42703
        (pymysql.err.ProgrammingError(1146, "Table 'news.etl_runs' doesn't exist"), True),
        (pymysql.err.OperationalError(1054, "Unknown column 'error'"), True),
        (_sqlite_error(":memory:", "SELECT * FROM etl_runs"), True),  # no such table
        (_sqlite_error(":memory:", "SELECT missing_column"), True),  # no such column
        (_sqlite_error(":memory:", "SELEC 1"), False),  # a syntax error: a bug, not config
        (_sqlite_error("/no/such/dir/x.sqlite3"), True),  # SQLITE_CANTOPEN
        (_sqlite_error("/"), True),  # a directory: SQLITE_CANTOPEN
        (None, False),
    ],
    ids=lambda value: repr(value)[:60] if not isinstance(value, bool) else str(value),
)
def test_driver_errors_are_classified_by_their_codes(
    error: BaseException | None, configuration: bool
) -> None:
    assert is_configuration_error(error) is configuration


@pytest.mark.parametrize(
    ("error", "document"),
    [
        # The values written caused these, though the drivers call them operational.
        (psycopg.errors.ProgramLimitExceeded("index row size 3256 exceeds maximum"), True),
        (psycopg.errors.ProgramLimitExceeded("index row requires 9000 bytes"), True),
        (psycopg.errors.ProgramLimitExceeded("row is too big: size 9000"), True),
        (pymysql.err.OperationalError(1118, "Row size too large"), True),
        (pymysql.err.OperationalError(1292, "Incorrect datetime value"), True),
        (pymysql.err.OperationalError(1300, "Invalid utf8mb4 character string"), True),
        (pymysql.err.OperationalError(1690, "BIGINT value is out of range"), True),
        (pymysql.err.OperationalError(4025, "CONSTRAINT `articles.extra` failed"), True),
        # The server's or the connection's: the run ends, whatever it was writing.
        (
            psycopg.errors.ProgramLimitExceeded(  # 54000 too, but the server's own limit
                "database is not accepting commands that assign new transaction IDs"
            ),
            False,
        ),
        (psycopg.errors.StatementTooComplex("stack depth limit exceeded"), False),  # 54001
        (psycopg.errors.AdminShutdown("terminating connection"), False),  # 57P01
        (psycopg.errors.QueryCanceled("canceling statement"), False),  # 57014
        (psycopg.errors.LockNotAvailable("could not obtain lock"), False),  # 55P03
        (psycopg.errors.SerializationFailure("could not serialize"), False),  # 40001
        (psycopg.errors.DiskFull("could not extend file"), False),  # 53100
        (psycopg.OperationalError("server closed the connection unexpectedly"), False),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), False),
        (pymysql.err.OperationalError(1213, "Deadlock found"), False),
        (pymysql.err.OperationalError(2013, "Lost connection to MySQL server"), False),
        (pymysql.err.OperationalError(1040, "Too many connections"), False),
        (_sqlite_error(":memory:", "SELEC 1"), False),
        (None, False),
    ],
    ids=lambda value: repr(value)[:60] if not isinstance(value, bool) else str(value),
)
def test_errors_the_values_caused_are_told_from_the_servers_own(
    error: BaseException | None, document: bool
) -> None:
    assert is_document_error(error) is document


def test_an_sqlite_file_that_is_not_a_database_is_configuration(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 300)
    error = _sqlite_error(str(path))
    assert getattr(error, "sqlite_errorname", None) == "SQLITE_NOTADB"
    assert is_configuration_error(error)


# --- configuration problems: exit code 2, nothing left on disk ------------------------------------

READERS = [
    ("runs",),
    ("rejects",),
    ("changes",),
    ("changes", "--latest"),
    ("changes", "--compact", "--keep", "1"),
    ("search", "azure"),
    ("db", "current"),
    ("db", "history"),
    ("db", "upgrade", "--sql"),
]


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_no_read_only_command_creates_an_sqlite_file(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'nope.sqlite3'}"
    result = run_etl(*command, "--database-url", url, cwd=tmp_path)
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir()), f"etl {' '.join(command)} left a file behind"
    if result.returncode == 2:
        assert "no such file" in result.stderr


@pytest.mark.parametrize("command", [("run", str(SEEDS)), ("runs",), ("changes", "--latest")])
@pytest.mark.parametrize("where", ["missing directory", "a directory", "not a database"])
def test_sqlite_paths_that_cannot_be_a_database_exit_2(
    command: tuple[str, ...], where: str, tmp_path: Path
) -> None:
    if where == "missing directory":
        path = tmp_path / "no" / "such" / "x.sqlite3"
        reason = f"no such directory {path.parent}"
    elif where == "a directory":
        path = tmp_path / "dir"
        path.mkdir()
        reason = "the path is a directory"
    else:
        path = tmp_path / "notes.txt"
        path.write_text("some notes, not a database\n" * 200)
        reason = "the file is not an SQLite database"
    before = sorted(tmp_path.rglob("*"))
    result = run_etl(*command, "--database-url", f"sqlite:///{path}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    # A reader says "no such file" before it tries to open one.
    assert reason in result.stderr or (
        where == "missing directory" and "no such file" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.postgresql
@pytest.mark.parametrize("command", [("run", str(SEEDS)), ("runs",), ("db", "current")])
@pytest.mark.parametrize("case", ["no such database", "no such role"])
def test_postgresql_configuration_errors_exit_2(
    command: tuple[str, ...], case: str, tmp_path: Path
) -> None:
    parts = (
        {"database": "etl_no_such_db_24"}
        if case == "no such database"
        else {"username": "etl_no_such_role_24"}
    )
    result = run_etl(*command, "--database-url", _server(POSTGRES_URL, **parts), cwd=tmp_path)
    if "Connection refused" in result.stderr:
        pytest.skip("no PostgreSQL server")
    assert result.returncode == 2, result.stderr
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.mariadb
@pytest.mark.parametrize("command", [("run", str(SEEDS)), ("search", "azure"), ("db", "current")])
@pytest.mark.parametrize("case", ["1049", "1045"])
def test_mariadb_configuration_errors_exit_2(
    command: tuple[str, ...], case: str, tmp_path: Path
) -> None:
    wrong_password = {"username": "root", "password": "wrong-password-24"}
    parts = {"database": "etl_no_such_db_24"} if case == "1049" else wrong_password
    result = run_etl(*command, "--database-url", _server(MARIADB_URL, **parts), cwd=tmp_path)
    if "2003" in result.stderr:
        pytest.skip("no MariaDB server")
    assert result.returncode == 2, result.stderr
    assert f"({case}," in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on: the connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
@pytest.mark.parametrize("command", [("run", str(SEEDS)), ("runs",), ("changes", "--latest")])
def test_a_refused_connection_exits_3(
    scheme: str, command: tuple[str, ...], closed_port: int, tmp_path: Path
) -> None:
    url = f"{scheme}://etl@127.0.0.1:{closed_port}/news"
    result = run_etl(*command, "--database-url", url, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "refused" in result.stderr and "Traceback" not in result.stderr


# --- the README's table: one example per row, run ----------------------------------------------


def _table_example(code: int) -> str:
    for line in README.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] == str(code):
            return cells[2]
    raise AssertionError(f"the README's exit-code table has no example for {code}")


def test_example_0_and_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    assert "`etl run seeds`" in _table_example(0)
    assert run_etl("run", "seeds", "--database-url", url, cwd=ROOT).returncode == 0
    assert "does not parse" in _table_example(1)
    news = tmp_path / "news"
    write_tree(news, {"ok.md": render(seed_front_matter()), "bad.md": b"---\ntitle: [\n---\n"})
    result = run_etl("run", str(news), "--database-url", url, cwd=tmp_path)
    assert result.returncode == 1, result.stderr


def test_a_document_postgresql_refuses_as_a_program_limit_exits_1(
    pg_url: str, tmp_path: Path
) -> None:
    """A URL too long for the B-tree of ``uq_articles_url`` (about 2.7 kB once
    compressed). psycopg calls PostgreSQL's "index row size exceeds maximum" (SQLSTATE
    54000) an OperationalError, and that ended every run with exit code 3, "may heal by
    itself": a scheduler retried forever, and the files after it never loaded. The
    document is rejected now, with the server's reason, and the others load."""
    good = dict(seed_front_matter(), title="The good one")
    bad = dict(seed_front_matter(), title="The bad one")
    # Random hex: a repeated character would compress to fit the index.
    bad["webUrl"] = bad["originalUrl"] = "https://example.com/" + secrets.token_hex(1600)
    news = tmp_path / "news"
    write_tree(news, {"ok.md": render(good), "long-url.md": render(bad)})
    result = run_etl("run", str(news), "--database-url", pg_url, "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert [item["path"] for item in summary["rejected"]] == ["long-url.md"]
    assert "index row size" in summary["rejected"][0]["error"]
    with connect(pg_url) as conn:
        titles = conn.execute(text("SELECT title FROM articles WHERE NOT is_stub")).scalars()
        assert list(titles) == ["The good one"]


def test_example_2(tmp_path: Path) -> None:
    assert "`etl runs --database-url sqlite:////no/such/dir/x.sqlite3`" in _table_example(2)
    result = run_etl("runs", "--database-url", "sqlite:////no/such/dir/x.sqlite3", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert not Path("/no/such/dir").exists()


def test_example_3(tmp_path: Path) -> None:
    assert "`etl runs --database-url postgresql://etl@127.0.0.1:1/news`" in _table_example(3)
    result = run_etl("runs", "--database-url", "postgresql://etl@127.0.0.1:1/news", cwd=tmp_path)
    assert result.returncode == 3, result.stderr


def test_example_4(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    assert "`etl changes --since 1` after `etl changes --compact --keep 0`" in _table_example(4)
    assert run_etl("run", str(SEEDS), "--database-url", url, cwd=tmp_path).returncode == 0
    compact = run_etl("changes", "--compact", "--keep", "0", "--database-url", url, cwd=tmp_path)
    assert compact.returncode == 0, compact.stderr
    result = run_etl("changes", "--since", "1", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 4, result.stderr


@pytest.fixture(scope="module")
def followed_db(shared_db: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with changes to follow, on each backend (PostgreSQL waits on LISTEN);
    only read, so one per backend serves both signals."""
    cwd = tmp_path_factory.mktemp("followed")
    assert run_etl("run", str(SEEDS), "--database-url", shared_db, cwd=cwd).returncode == 0
    return shared_db


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_examples_130_and_143_follow_stops_by_signal(
    followed_db: str, signum: signal.Signals, code: int
) -> None:
    assert f"`kill -{signum.name[3:]}` to `etl changes --follow`" in _table_example(code)
    process = start_etl(
        "changes",
        "--follow",
        "--poll-interval",
        "0.1",
        "--database-url",
        followed_db,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # the first change: it is following now
        time.sleep(0.3)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr


def test_a_wrong_schema_exits_2(db_url: str, tmp_path: Path) -> None:
    """A column the code needs dropped by hand: fixing the schema is the operator's job."""
    assert run_etl("db", "upgrade", "--database-url", db_url).returncode == 0
    with connect(db_url) as conn:
        conn.execute(text("ALTER TABLE etl_runs DROP COLUMN arguments"))
        conn.commit()
    for command in (("runs",), ("run", str(SEEDS))):
        result = run_etl(*command, "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "arguments" in result.stderr and "Traceback" not in result.stderr


def test_a_run_that_cannot_record_its_end_does_not_exit_0(db_url: str, tmp_path: Path) -> None:
    """A column only the end of a run writes, dropped by hand: the documents load, but a
    run whose row cannot say so is not reported as a success."""
    assert run_etl("db", "upgrade", "--database-url", db_url).returncode == 0
    with connect(db_url) as conn:
        conn.execute(text("ALTER TABLE etl_runs DROP COLUMN finished_at"))
        conn.commit()
    result = run_etl("run", str(SEEDS), "--database-url", db_url, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "finished_at" in result.stderr and "Traceback" not in result.stderr
