"""Lost connections: which errors mean one, and what is done with it.

SQLAlchemy discards a connection whose statement failed because the connection is gone
(its dialect's ``is_disconnect``), so that it is never rolled back nor reused: a
rollback on a dead socket fails again, and the pool logs that second failure with a
traceback on the run's stderr. Two kinds of error escaped that, and this module owns
both:

- psycopg's lost connections that SQLAlchemy's psycopg dialect does not count, because it
  asks only whether psycopg has marked the connection broken, that is whether libpq has
  read the socket's end. A backend terminated while a pipelined ``executemany`` waits
  for its results can make psycopg raise before that: ``AdminShutdown`` (the server's
  farewell, read first), or ``cannot exit pipeline mode while busy`` (libpq, leaving the
  pipeline with that farewell unread). :func:`count_lost_connections` adds them.
- A connection cut while it sat idle between two transactions (a failover, or an
  operator killing every connection of a run): the pool rolls it back as it returns,
  fails, and logs the traceback. :func:`roll_back_on_return` does that rollback itself
  and discards the connection quietly when it is lost.
- Errors of statements run on the driver's own cursor (PostgreSQL's ``COPY``, MariaDB's
  ``LOAD DATA`` and staging tables), which SQLAlchemy never sees: :func:`driver_error`
  wraps them as SQLAlchemy wraps its own, discarding the connection when it is lost.

May import: nothing of ``etl``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError

# SQLSTATEs of a session that is over: class 08 connection exception; 57P operator
# intervention that ends the session (admin or crash shutdown, the database dropped,
# the idle session timeout); 25P03 and 25P04 the idle-in-transaction and transaction
# timeouts, which end the session too. 57014, a cancelled statement, is class 57 but
# leaves the session usable.
LOST_STATES = ("08", "57P", "25P03", "25P04")


def is_lost_connection(error: BaseException, dbapi: Any) -> bool:
    """Whether ``error``, raised by the driver ``dbapi`` (psycopg), means its connection
    is gone: a server error of a lost session, or libpq's own failure of the connection,
    which psycopg raises as a bare ``OperationalError`` with no SQLSTATE (its subclasses,
    such as ``PipelineAborted``, are about statements, not the connection)."""
    state = getattr(error, "sqlstate", None)
    if state:
        return isinstance(error, dbapi.Error) and state.startswith(LOST_STATES)
    return type(error) is dbapi.OperationalError


def is_lost(dialect: Dialect, error: BaseException, dbapi_connection: Any) -> bool:
    """Whether the driver's ``error`` on ``dbapi_connection`` means the connection is
    gone: SQLAlchemy's test, and for psycopg :func:`is_lost_connection` too."""
    if dialect.is_disconnect(error, dbapi_connection, None):  # type: ignore[arg-type]
        return True
    return dialect.driver == "psycopg" and is_lost_connection(error, dialect.loaded_dbapi)


def count_lost_connections(engine: Engine) -> None:
    """Have ``engine`` (psycopg) discard a connection at an error that means it is lost
    (:func:`is_lost_connection`), as it does one psycopg already knows is broken."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if not context.is_disconnect and is_lost_connection(
            context.original_exception, context.dialect.loaded_dbapi
        ):
            context.is_disconnect = True


def roll_back_on_return(engine: Engine) -> None:
    """Roll back a connection ``engine``'s pool takes back, as its default reset does
    (the engine is made with ``pool_reset_on_return=None``), but discard one that is
    lost (:func:`is_lost`) with a line in the log instead of an error's traceback."""
    dialect = engine.dialect

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: Any) -> None:
        if state.transaction_was_reset or not state.asyncio_safe:
            return  # the connection ended its transaction itself: nothing to undo
        try:
            dialect.do_rollback(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if not is_lost(dialect, exc, dbapi_connection):
                raise
            if record is not None:  # None: a detached connection, closed next anyway
                record.invalidate(exc)  # closed, and replaced at its next checkout


def driver_error(conn: Connection, statement: str, error: Exception) -> StatementError:
    """The SQLAlchemy error for the driver's ``error`` in ``statement``, run on ``conn``'s
    driver connection outside SQLAlchemy: as SQLAlchemy wraps its own (a value the
    server refuses rejects its document; a lost connection ends the run), and with the
    connection invalidated when it is lost (:func:`is_lost`)."""
    lost = is_lost(conn.dialect, error, conn.connection.dbapi_connection)
    if lost:
        conn.invalidate(error)
    return DBAPIError.instance(
        statement, None, error, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost
    )
