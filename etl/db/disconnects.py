"""Which psycopg errors mean the connection is gone, where SQLAlchemy cannot yet tell.

SQLAlchemy's psycopg dialect counts an error as a lost connection only once psycopg has
marked the connection broken, that is once libpq has read the end of the socket. A
backend terminated while a pipelined ``executemany`` waits for its results can make
psycopg raise before that: ``AdminShutdown`` (the server's farewell, read first), or
``cannot exit pipeline mode while busy`` (libpq, leaving the pipeline with that
farewell unread). SQLAlchemy then keeps the connection as if it were alive, rolls it
back when the run ends, fails a second time, and the pool logs that second failure with
a traceback on the run's stderr. Counted here as lost, the connection is discarded at
the first error, and the run ends with the one error it reports.

May import: nothing of ``etl``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sqlalchemy import Engine, event

# SQLSTATE classes of a session that is over: 08 connection exception; 57P operator
# intervention that ends the session (admin or crash shutdown, the database dropped,
# idle timeouts). 57014, a cancelled statement, is class 57 but leaves it usable.
LOST_STATES = ("08", "57P")


def is_lost_connection(error: BaseException, dbapi: ModuleType) -> bool:
    """Whether ``error``, raised by the driver ``dbapi`` (psycopg), means its connection
    is gone: a server error of a lost session, or libpq's own failure of the connection,
    which psycopg raises as a bare ``OperationalError`` with no SQLSTATE (its subclasses,
    such as ``PipelineAborted``, are about statements, not the connection)."""
    state = getattr(error, "sqlstate", None)
    if state:
        return isinstance(error, dbapi.Error) and state.startswith(LOST_STATES)
    return type(error) is dbapi.OperationalError


def count_lost_connections(engine: Engine) -> None:
    """Have ``engine`` (psycopg) discard a connection at an error that means it is lost
    (:func:`is_lost_connection`), as it does one psycopg already knows is broken."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if not context.is_disconnect and is_lost_connection(
            context.original_exception, context.dialect.loaded_dbapi
        ):
            context.is_disconnect = True
