"""Every lock news-etl takes in the database, on each backend.

- The writer lock, database-wide: every transaction that writes the news holds it
  (``etl.db.writer``), so concurrent runs queue their writes instead of deadlocking and
  commit in one order. PostgreSQL: a transaction-scoped advisory lock. MariaDB:
  ``GET_LOCK``, which belongs to the session, so it is released after the transaction.
  SQLite: the database file's own write lock, taken by ``BEGIN IMMEDIATE`` at the start
  of every transaction of a writing engine.
- The migration lock, held while a run upgrades the schema, so that runs starting
  together on an empty database do not both create the tables (SQLite: the migration's
  ``BEGIN IMMEDIATE`` transaction is the lock).
- A run's lease: a session lock the run's own connection holds while the run works. It
  vanishes with the process or its connection, on whatever machine the run was, which
  tells a run still working from one that was killed. SQLite has none (the ledger looks
  at the host and process id instead).

MariaDB's lock names are server-wide, so each carries the database's name, or a hash of
it when the name would pass 64 characters. PostgreSQL's advisory lock keys
are arbitrary constants; the lease's two-key form never meets the single keys of the
other two. Which lock to take when is the callers' (the writer, the ledger's lease
policy, ``etl.db.database``); this module only knows how.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, event, text

WRITER_LOCK_ID = 7_351_120_404  # arbitrary, shared by all news-etl processes
MIGRATION_LOCK_ID = 7_351_120_405
RUN_LOCK_SPACE = 735_112  # PostgreSQL: the lease is the two-key lock (space, run id)

# MariaDB: the prefixes of the lock names.
WRITER_LOCK_NAME = "news_etl_writer"
MIGRATION_LOCK_NAME = "news_etl_migrate"
RUN_LOCK_NAME = "news_etl_run"
# MySQL (5.7+) refuses longer lock names; MariaDB 10.11 accepts them: stay within both.
MYSQL_LOCK_NAME_LIMIT = 64

WRITER_LOCK_WAIT = 600  # seconds MariaDB waits for the writer lock


class LockAction(enum.Enum):
    TAKE = "take"
    RELEASE = "release"
    PROBE = "probe"  # whether nobody holds the lock (taken and at once released)


def is_mysql(conn: Connection) -> bool:
    """MariaDB (or MySQL): its locks, and much of its SQL, differ from the others'."""
    return conn.dialect.name in ("mysql", "mariadb")


def mysql_lock_name(prefix: str, database: str | None, *suffix: object) -> str:
    """A MariaDB lock name: ``prefix:database[:suffix...]``, with a hash of the database
    name in its place when the whole would pass ``MYSQL_LOCK_NAME_LIMIT``."""
    rest = [str(part) for part in suffix]
    name = ":".join([prefix, str(database), *rest])
    if len(name) > MYSQL_LOCK_NAME_LIMIT:
        digest = hashlib.sha256(str(database).encode()).hexdigest()[:16]
        name = ":".join([prefix, digest, *rest])
    return name


# --- the writer lock --------------------------------------------------------------------


def begin_immediate(engine: Engine) -> None:
    """SQLite: every transaction of ``engine`` takes the file's write lock at BEGIN.

    A deferred transaction would take it at its first write and fail when another
    writer holds it; ``BEGIN IMMEDIATE`` waits (the driver's busy timeout) instead, so
    concurrent writers queue.
    """

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def writer_lock(conn: Connection, action: LockAction, *, also: str = "") -> None:
    """Take the writer lock in the transaction ``conn`` has open, or release it after.

    Releasing does something only on MariaDB, whose lock outlives the transaction;
    ``also``: more expressions for the releasing ``SELECT`` (one round trip instead of
    two). Taking it on MariaDB raises ``TimeoutError`` after ``WRITER_LOCK_WAIT`` s.
    """
    if action is LockAction.PROBE:
        raise ValueError("the writer lock is not probed")
    if conn.dialect.name == "postgresql":
        if action is LockAction.TAKE:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": WRITER_LOCK_ID})
        return
    if not is_mysql(conn):
        return  # SQLite: BEGIN IMMEDIATE took it (begin_immediate)
    name = mysql_lock_name(WRITER_LOCK_NAME, conn.engine.url.database)
    if action is LockAction.RELEASE:
        extra = f", {also}" if also else ""
        conn.execute(text(f"SELECT RELEASE_LOCK(:name){extra}"), {"name": name})
        return
    got = conn.execute(text(f"SELECT GET_LOCK(:name, {WRITER_LOCK_WAIT})"), {"name": name}).scalar()
    if got != 1:
        raise TimeoutError("timed out waiting for another news-etl run to finish writing")


# --- the migration lock -----------------------------------------------------------------


@contextmanager
def migration_lock(conn: Connection) -> Iterator[None]:
    """Hold the server-wide migration lock (a session lock) for the ``with`` block.

    Taken and released each in a transaction of its own, committed. SQLite: nothing
    (the migration's own ``BEGIN IMMEDIATE`` transaction excludes other writers).
    """
    key: int | str = MIGRATION_LOCK_ID
    if conn.dialect.name == "postgresql":
        lock, unlock = "SELECT pg_advisory_lock(:id)", "SELECT pg_advisory_unlock(:id)"
    elif is_mysql(conn):
        lock, unlock = "SELECT GET_LOCK(:id, 600)", "SELECT RELEASE_LOCK(:id)"
        key = mysql_lock_name(MIGRATION_LOCK_NAME, conn.engine.url.database)
    else:
        yield
        return
    conn.execute(text(lock), {"id": key})
    conn.commit()
    try:
        yield
    finally:
        if not conn.invalidated:
            conn.execute(text(unlock), {"id": key})
            conn.commit()


# --- a run's lease ----------------------------------------------------------------------

_PG_LEASE = {
    LockAction.TAKE: "pg_advisory_lock",
    LockAction.RELEASE: "pg_advisory_unlock",
    LockAction.PROBE: "pg_try_advisory_lock",
}
_MYSQL_LEASE = {
    LockAction.TAKE: "SELECT GET_LOCK(:name, 0)",
    LockAction.RELEASE: "SELECT RELEASE_LOCK(:name)",
    LockAction.PROBE: "SELECT IS_FREE_LOCK(:name)",
}


def run_lease(conn: Connection, run_id: int, action: LockAction) -> bool | None:
    """Take, release or probe run ``run_id``'s lease on ``conn``'s session.

    A probe answers whether nobody holds it (True); the other actions, and every
    action on SQLite, which has no lease, answer None.
    """
    if conn.dialect.name == "postgresql":
        params = {"space": RUN_LOCK_SPACE, "id": run_id}
        got = conn.execute(text(f"SELECT {_PG_LEASE[action]}(:space, :id)"), params).scalar()
        if action is LockAction.PROBE and got:
            conn.execute(text("SELECT pg_advisory_unlock(:space, :id)"), params)
        return bool(got) if action is LockAction.PROBE else None
    if is_mysql(conn):
        name = mysql_lock_name(RUN_LOCK_NAME, conn.engine.url.database, run_id)
        got = conn.execute(text(_MYSQL_LEASE[action]), {"name": name}).scalar()
        return got == 1 if action is LockAction.PROBE else None
    return None
