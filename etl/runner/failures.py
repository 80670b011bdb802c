"""Which database errors the operator must fix (exit code 2), which may heal by
themselves (exit code 3), and which the values written caused (their document is
rejected, :func:`is_document_error`): the errors of each driver classified by their codes.

A scheduler retries exit code 3 and stops on 2, so a database that does not exist, a
password that is wrong or a path that is not a database file must never look like a
server that is down. The codes:

- PostgreSQL (psycopg): SQLSTATE class 28 (``28000`` invalid authorization, ``28P01``
  wrong password), ``3D000`` (no such database), ``3F000`` (no such schema), ``42501``
  (insufficient privilege). libpq reports the SQLSTATE of a failed connection only in
  its message (psycopg's ``sqlstate`` is None then), so a connection failure is
  classified by the server's ``FATAL:`` line, as libpq prints it in English.
- MariaDB/MySQL (PyMySQL): the first argument of the error: 1044/1045/1698 (access
  denied), 1049 (unknown database), 1046 (no database selected), 1142/1227 (no
  privilege).
- SQLite: ``sqlite_errorname``: ``SQLITE_CANTOPEN`` (no such directory, a directory),
  ``SQLITE_NOTADB`` (not a database file), ``SQLITE_PERM``, ``SQLITE_READONLY``,
  ``SQLITE_AUTH``, ``SQLITE_CORRUPT``; and ``SQLITE_ERROR`` (SQLite's generic code)
  when its message says a table or column is missing.

A table or column the code needs that is missing (PostgreSQL ``42P01``/``42703``,
MariaDB 1146/1054, SQLite "no such table/column") is a wrong schema: configuration too.

Everything else (refused or timed-out connections, a dropped connection, a busy
database, a killed worker) stays "may heal by itself".
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from etl.db.database import ConfigurationError, DatabaseUnavailable, describe_error, sqlite_file

# 42P01/42703: a table or column the code needs is missing (a schema changed by hand).
POSTGRESQL_CONFIG_SQLSTATES = frozenset(
    {"28000", "28P01", "3D000", "3F000", "42501", "42P01", "42703"}
)
# libpq's text for the startup errors above (the server's FATAL message).
POSTGRESQL_CONFIG_MESSAGES = re.compile(
    r"FATAL:\s+(database \".*\" does not exist|role \".*\" does not exist|"
    r"password authentication failed|no pg_hba\.conf entry|"
    r"permission denied for database|Peer authentication failed|"
    r"Ident authentication failed)"
    r"|fe_sendauth: no password supplied"
)
# 1146/1054: a table or column the code needs is missing.
MYSQL_CONFIG_CODES = frozenset({1044, 1045, 1046, 1049, 1054, 1142, 1146, 1227, 1698})
SQLITE_WRONG_SCHEMA = re.compile(r"no such (table|column)|table \S+ has no column named")
SQLITE_CONFIG_ERRORS = frozenset(
    {
        "SQLITE_CANTOPEN",
        "SQLITE_NOTADB",
        "SQLITE_PERM",
        "SQLITE_READONLY",
        "SQLITE_AUTH",
        "SQLITE_CORRUPT",
    }
)


def is_configuration_error(orig: BaseException | None) -> bool:
    """True for a driver error the operator must fix; False for one that may heal."""
    if orig is None:
        return False
    sqlstate = getattr(orig, "sqlstate", None)
    if type(orig).__module__.startswith("psycopg"):
        if sqlstate is not None:
            return str(sqlstate) in POSTGRESQL_CONFIG_SQLSTATES
        return POSTGRESQL_CONFIG_MESSAGES.search(str(orig)) is not None
    if type(orig).__module__.startswith("pymysql"):
        code = orig.args[0] if orig.args else None
        return code in MYSQL_CONFIG_CODES
    name = getattr(orig, "sqlite_errorname", None)
    if name == "SQLITE_ERROR":  # SQLite's generic code: its message says which
        return SQLITE_WRONG_SCHEMA.search(str(orig)) is not None
    return name in SQLITE_CONFIG_ERRORS


# Errors that a statement's values cause, though the driver calls them operational (a
# failing server, which ends the run). PostgreSQL: SQLSTATE 54000, program limit exceeded,
# when it is a row's (a URL too long for its unique index's B-tree); the same code also
# stands for the server's own limits (transaction ids near wraparound, a file at its
# largest), which end the run. MariaDB: codes PyMySQL raises as OperationalError (left
# unmapped, or 4025 mapped so): 1118 row too large, 1292 a value of the wrong form, 1300
# a byte sequence that is not UTF-8, 1690 a number out of range in an expression, 3140
# not JSON (MySQL), 4025 a CHECK constraint (MariaDB's JSON columns).
POSTGRESQL_ROW_LIMITS = re.compile(r"index row (size|requires)|row is too big")
MYSQL_DOCUMENT_CODES = frozenset({1118, 1292, 1300, 1690, 3140, 4025})


def is_document_error(orig: BaseException | None) -> bool:
    """True for a driver error that the values written caused (a batch is then written
    again document by document, and the document the database refuses is rejected),
    among those the driver classes as operational; False for the server's or the
    connection's own (which end the run: exit code 3)."""
    if orig is None:
        return False
    if type(orig).__module__.startswith("psycopg"):
        sqlstate = getattr(orig, "sqlstate", None)
        return sqlstate == "54000" and POSTGRESQL_ROW_LIMITS.search(str(orig)) is not None
    if type(orig).__module__.startswith("pymysql"):
        return bool(orig.args) and orig.args[0] in MYSQL_DOCUMENT_CODES
    return False


def explain(where: str, url: URL | str | None, exc: BaseException) -> str:
    """One line for a database error; for an SQLite file, what is wrong with the path."""
    detail = describe_error(exc)
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    name = getattr(orig, "sqlite_errorname", None)
    if name in ("SQLITE_CANTOPEN", "SQLITE_NOTADB"):
        try:
            path = sqlite_file(url)
        except ConfigurationError:
            path = None
        if path is not None:
            return f"database {path}: {_sqlite_path_problem(path, name)} ({detail})"
    return f"database {where}: {detail}"


def _sqlite_path_problem(path: Path, name: str) -> str:
    if name == "SQLITE_NOTADB":
        return "the file is not an SQLite database"
    if path.is_dir():
        return "the path is a directory, not a database file"
    if not path.parent.is_dir():
        return f"no such directory {path.parent}"
    return "cannot open the file (permissions?)"


def database_failure(where: str, url: URL | str | None, exc: BaseException) -> Exception:
    """The error to raise for a database error: ``ConfigurationError`` (exit 2) or
    ``DatabaseUnavailable`` (exit 3)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    message = explain(where, url, exc)
    if is_configuration_error(orig):
        return ConfigurationError(message)
    return DatabaseUnavailable(message)


def run_failure(where: str, url: URL | str | None, exc: DBAPIError) -> Exception | None:
    """What a run raises for a database error: a configuration problem, a database that
    failed (operational errors, a broken connection); None for any other error (the
    statement's own fault), which the run re-raises as it is."""
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return database_failure(where, url, exc)
    if is_configuration_error(exc.orig):
        return database_failure(where, url, exc)
    return None
