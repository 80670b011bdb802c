"""The transactions that write the news, and the run the change feed records for them.

Every write of the news tables runs in :func:`writer_transaction`: a transaction holding
the database-wide writer lock (``etl.db.locks``), so that concurrent runs queue their
writes instead of deadlocking and commit in one order. Inside a transaction already
open (a dry run, :func:`rolled_back`) it is a savepoint.

The change feed's triggers (migration 0006, tables in ``etl.db.schema.feed``) record
every change to ``articles``; cursors taken while the writer lock is held follow commit
order. This module owns how a transaction's entries get its run id: a transaction
setting (PostgreSQL), a session variable (MariaDB), or, on SQLite, whose triggers cannot
read per-connection state, an update of the transaction's own entries before commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

from etl.db import timing
from etl.db.locks import LockAction, is_mysql, writer_lock

# MariaDB: the session variable the triggers read, cleared in the statement that
# releases the writer lock: later writes on this session are not this run's.
_CLEAR_MYSQL_RUN_ID = "@etl_run_id := NULL"


@contextmanager
def writer_transaction(
    conn: Connection, run_id: int | None = None, before_lock: Callable[[], None] | None = None
) -> Iterator[None]:
    """A transaction holding the database-wide writer lock, its changes tagged ``run_id``.

    Inside a transaction already open (a dry run is one transaction), a SAVEPOINT:
    a batch that fails rolls back alone and is retried document by document, as in
    a real run. The lock is then the enclosing transaction's (see :func:`rolled_back`).
    On SQLite an update of this transaction's feed entries runs before commit (none
    when nothing changed). ``before_lock``: work of the transaction that no other
    session waits for (PostgreSQL: rows copied into a temporary table), run before the
    lock is asked for; on SQLite, whose ``BEGIN IMMEDIATE`` is the lock, after it.
    """
    if conn.in_transaction():
        with conn.begin_nested(), _feed_run_id(conn, run_id):
            if before_lock is not None:
                before_lock()
            yield
        return
    if not is_mysql(conn):
        with timing.writer_lock() as locked, conn.begin():
            _take_lock(conn, locked, before_lock)
            with _feed_run_id(conn, run_id):
                yield
        return
    # MariaDB's GET_LOCK belongs to the session, not the transaction: release it after.
    try:
        with timing.writer_lock() as locked, conn.begin():
            _take_lock(conn, locked, before_lock)
            with _feed_run_id(conn, run_id):
                yield
    finally:
        if not conn.invalidated and not conn.closed:
            writer_lock(conn, LockAction.RELEASE, also=_CLEAR_MYSQL_RUN_ID)
            conn.commit()


def _take_lock(
    conn: Connection, locked: timing.Section, before_lock: Callable[[], None] | None
) -> None:
    """Take the writer lock in the transaction just begun, ``before_lock`` first where
    the lock is a statement of its own; the wait is timed from asking for it (SQLite's
    ``BEGIN IMMEDIATE`` is the lock: its wait was in the begin, and the work follows)."""
    locked_at_begin = conn.dialect.name == "sqlite"
    if before_lock is not None and not locked_at_begin:
        before_lock()
        locked.asking()
    writer_lock(conn, LockAction.TAKE)
    locked()
    if before_lock is not None and locked_at_begin:
        before_lock()


@contextmanager
def rolled_back(conn: Connection) -> Iterator[None]:
    """One transaction holding the writer lock throughout, rolled back at the end.

    What a dry run runs in: every write inside (savepoints, see
    :func:`writer_transaction`) vanishes with the rollback. The lock is taken first
    and held to the end (SQLite: ``BEGIN IMMEDIATE``), so that the uncommitted rows
    never make another run's writes wait on them while it waits for ours.
    """
    mysql = is_mysql(conn)
    try:
        with timing.writer_lock() as locked, conn.begin() as outer:
            writer_lock(conn, LockAction.TAKE)
            locked()
            try:
                yield
            finally:
                if outer.is_active:
                    outer.rollback()
    finally:
        if mysql and not conn.invalidated and not conn.closed:
            writer_lock(conn, LockAction.RELEASE, also=_CLEAR_MYSQL_RUN_ID)
            conn.rollback()


@contextmanager
def _feed_run_id(conn: Connection, run_id: int | None) -> Iterator[None]:
    """Tag the change-feed entries this transaction makes with ``run_id``."""
    if run_id is None:
        yield
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT set_config('etl.run_id', :run, true)"), {"run": str(run_id)})
        yield
        return
    if dialect != "sqlite":  # MariaDB: a session variable, cleared with the lock
        conn.execute(text("SET @etl_run_id = :run"), {"run": run_id})
        yield
        return
    # SQLite: the newest cursor handed out so far (AUTOINCREMENT keeps it).
    before = conn.execute(
        text("SELECT seq FROM sqlite_sequence WHERE name = 'article_changes'")
    ).scalar()
    yield
    conn.execute(
        text('UPDATE article_changes SET run_id = :run WHERE "cursor" > :before'),
        {"run": run_id, "before": before or 0},
    )
