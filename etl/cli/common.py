"""What every command shares: exit codes, one-line errors, database errors classified
(configuration: 2; may heal: 3), engines for commands that only read, JSON output.

SQLAlchemy and the database layer are imported where they are used: ``etl run`` parses
its command line with this module loaded, before it imports them (``etl.__main__``)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from etl.records import ConfigurationError, DatabaseUnavailable
from etl.runner import logs

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.exc import SQLAlchemyError

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_FATAL, EXIT_RESYNC = 0, 1, 2, 3, 4
EXIT_SIGINT = 130  # 128 + SIGINT, as shells report a job stopped by Ctrl-C
EXIT_SIGTERM = 143  # 128 + SIGTERM (RunInterrupted.exit_code gives either)

T = TypeVar("T")
log = logging.getLogger("etl")


def json_default(value: Any) -> Any:
    """Datetimes in ISO 8601 with their zone (all are UTC); anything else as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=json_default)


HINT = "etl.hint"  # the context's meta key for a hint fail() adds to a database error


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr (a JSON object with ``--log-format json``), then exit ``code``."""
    ctx = click.get_current_context(silent=True)
    hint = ctx.meta.get(HINT) if ctx is not None and code == EXIT_FATAL else None
    if hint:
        message = f"{message}; {hint}"
    if logs.is_json():
        log.critical(message, extra={"exit_code": code})
    else:
        click.echo(f"etl: error: {message}", err=True)
    sys.exit(code)


def fail_database(database_url: str | None, exc: SQLAlchemyError) -> NoReturn:
    """A database error: exit 2 if the operator must fix it, 3 if it may heal by itself."""
    from etl.db import database
    from etl.runner.failures import database_failure

    try:
        url = database.resolve_url(database_url)
    except ConfigurationError as bad:
        fail(str(bad), EXIT_USAGE)
    failure = database_failure(database.redact(url), url, exc)
    fail(str(failure), EXIT_USAGE if isinstance(failure, ConfigurationError) else EXIT_FATAL)


def fail_if_alembic(exc: BaseException) -> None:
    """Alembic's own errors (an unknown revision, a database at a revision this code does
    not know) are the operator's to fix: one line, exit 2."""
    if type(exc).__module__.startswith("alembic"):
        fail(f"{type(exc).__name__}: {exc}", EXIT_USAGE)


def guarded(action: Callable[[], T], database_url: str | None = None) -> T:
    """Run ``action``; configuration problems, Alembic's refusals and database errors
    become one line and their exit code."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    try:
        return action()
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    except DatabaseUnavailable as exc:
        fail(str(exc), EXIT_FATAL)
    except SQLAlchemyError as exc:
        fail_database(database_url, exc)
    except Exception as exc:
        fail_if_alembic(exc)
        if isinstance(exc.__cause__, DBAPIError):  # Alembic wraps some driver errors
            fail_database(database_url, exc.__cause__)
        raise


def reading_engine(database_url: str | None, connect_timeout: float) -> Engine:
    """An engine for a command that only reads: a missing SQLite file is not created."""
    return guarded(
        lambda: _reading_engine(database_url, connect_timeout),
        database_url,
    )


def _reading_engine(database_url: str | None, connect_timeout: float) -> Engine:
    from etl.db import database

    database.require_existing_file(database_url)
    return database.make_engine(database_url, connect_timeout=connect_timeout, read_only=True)


def with_engine(
    database_url: str | None,
    connect_timeout: float,
    action: Callable[[Engine], T],
    *,
    read_only: bool = False,
) -> T:
    """Run ``action(engine)``: config and database errors become one line and an exit
    code; an SQLite file the command created and left empty is removed."""
    from etl.db import database

    path = guarded(lambda: database.sqlite_file(database_url))
    existed = path is None or path.exists()
    if read_only:
        engine = reading_engine(database_url, connect_timeout)
    else:
        engine = guarded(
            lambda: database.make_engine(database_url, connect_timeout=connect_timeout)
        )
    try:
        return guarded(lambda: action(engine), database_url)
    finally:
        engine.dispose()
        if not existed:
            database.discard_if_empty(path)
