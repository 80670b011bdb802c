"""Foreign keys of a bulk insert checked once, set-based, instead of once per row.

A full load writes about 30 links per article; PostgreSQL and MariaDB check each
row's two foreign keys with an index probe (PostgreSQL also locks the row it finds),
which was more than half of the server's work in a full load. For a large insert,
:func:`insert_checked_once` instead looks up, once per key, the distinct parent ids the
new rows name (a few thousand primary-key probes for a batch of 16,000 links), as
pgloader checks a bulk load's keys once:

- PostgreSQL: the table's foreign keys are dropped and re-added ``NOT VALID`` in the
  writer transaction (DDL is transactional there: a failure or a signal rolls the
  drop back with everything else), and the lookup checks the rows about to be written.
  ``NOT VALID`` keeps every key enforced for later writes, and means "rows older than
  the constraint were not checked by it": :func:`validate_keys`, at the end of a run,
  validates them (a read of the table that blocks no reader or writer), and until
  then the lookups have checked every row. Dropping a key takes an exclusive lock
  on both tables until the commit; when another session holds one (an analyst's open
  transaction), the insert does not wait but takes the per-row path.
- MariaDB: the session skips the checks for this one statement
  (``foreign_key_checks=0``; no DDL, the keys stay as they are) after the same check,
  made by the server where the caller can (``orphan``: the staged links' ids are
  there already, ``etl.db.load_data.unparented``).
- SQLite checks a key with a B-tree probe in process, cheaper than any of this; and
  ``PRAGMA foreign_keys`` cannot change inside a transaction: it keeps per-row checks.

A row whose parent the lookup does not find fails the insert, as the per-row check
would have; the writer lock keeps every parent found until the commit, and a delete
later in the transaction cascades, the keys being enforced for it. Small inserts (an
incremental run) keep the per-row checks.

May import: ``etl.db.sql``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, ForeignKeyConstraint, Table, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.schema import AddConstraint

from etl.db.sql import bulk_insert, in_conditions, is_mysql

log = logging.getLogger(__name__)

CHECK_ONCE_FROM = 2000  # rows from which a bulk insert's keys are checked set-based
LOCK_WAIT = "200ms"  # how long a drop may wait for the tables' exclusive lock


def insert_checked_once(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: list[list[Any]],
    *,
    converted: int = 0,
    write: Callable[[], None] | None = None,
    count: int | None = None,
    orphan: Callable[[ForeignKeyConstraint], Any] | None = None,
) -> None:
    """:func:`etl.db.sql.bulk_insert`, checking the foreign keys of many rows at once.

    The keys' columns must not be among the ``converted`` ones (the last columns).
    ``write``: what inserts the rows instead; ``rows`` then only name the keys' values
    (None where a row names no value of a key), and ``count`` how many rows it inserts.
    ``orphan``: finds, for a key, a value of it the rows will hold that has no parent
    row (None if there is none) without ``rows`` (on the server, say), which are then
    not looked at.
    """
    if write is None:

        def write() -> None:
            bulk_insert(conn, table, columns, rows, converted=converted)

    keys = _foreign_keys(table)
    if (
        (len(rows) if count is None else count) < CHECK_ONCE_FROM
        or not keys
        or conn.dialect.name == "sqlite"
    ):
        write()
        return

    def check() -> None:
        _check(conn, keys, orphan or (lambda key: _orphan_in(conn, key, columns, rows)))

    if is_mysql(conn):
        check()
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        try:
            write()
        finally:
            if not conn.invalidated and not conn.closed:
                conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")
    elif conn.dialect.name == "postgresql":
        if not _drop_keys(conn, table, keys):
            write()
            return
        check()
        write()
        for key in keys:
            statement = str(AddConstraint(key).compile(dialect=conn.dialect))
            conn.exec_driver_sql(f"{statement} NOT VALID")
    else:
        write()


def _foreign_keys(table: Table) -> list[ForeignKeyConstraint]:
    keys = [c for c in table.constraints if isinstance(c, ForeignKeyConstraint)]
    return sorted(keys, key=lambda key: str(key.name))


def _drop_keys(conn: Connection, table: Table, keys: Sequence[ForeignKeyConstraint]) -> bool:
    """Drop ``keys`` in a savepoint; False (nothing dropped) if their locks are held."""
    quote = conn.dialect.identifier_preparer.quote
    drops = ", ".join(f"DROP CONSTRAINT {quote(str(key.name))}" for key in keys)
    previous = conn.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
    savepoint = conn.begin_nested()
    try:
        conn.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": LOCK_WAIT})
        conn.exec_driver_sql(f"ALTER TABLE {quote(table.name)} {drops}")
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        savepoint.rollback()
        log.debug("%s: its keys' locks are held elsewhere; checking row by row", table.name)
        return False
    savepoint.commit()
    conn.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": previous})
    return True


def _check(
    conn: Connection,
    keys: Sequence[ForeignKeyConstraint],
    orphan: Callable[[ForeignKeyConstraint], Any],
) -> None:
    """Fail if a value of one of ``keys`` (``orphan`` finds it) has no parent row."""
    for key in keys:
        missing = orphan(key)
        if missing is not None:
            (element,) = key.elements  # every key of the schema has one column
            child, parent = element.parent, element.column
            raise IntegrityError(
                f"check of {key.name}",
                None,
                Exception(
                    f"{child.table.name}.{child.name} = {missing} has no row in "
                    f"{parent.table.name} (foreign key {key.name})"
                ),
            )


def _orphan_in(
    conn: Connection, key: ForeignKeyConstraint, columns: Sequence[str], rows: list[list[Any]]
) -> Any:
    """The least value of ``key`` in ``rows`` with no parent row, or None.

    The distinct values of the key's column are looked up in its parent's primary
    key: a few thousand index probes, where joining every new row to its parents cost
    a fifth of the links' time under the writer lock.
    """
    (element,) = key.elements  # every key of the schema has one column
    child, parent = element.parent, element.column
    index = columns.index(child.name)
    wanted = {row[index] for row in rows} - {None}
    found: set[Any] = set()
    for condition in in_conditions(conn, parent, wanted):
        found.update(conn.execute(select(parent).where(condition)).scalars())
    missing = wanted - found
    return min(missing) if missing else None


def validate_keys(conn: Connection, tables: Sequence[Table]) -> list[str]:
    """PostgreSQL: validate the ``NOT VALID`` keys a bulk insert left; their names."""
    if conn.dialect.name != "postgresql":
        return []
    quote = conn.dialect.identifier_preparer.quote
    pending = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND NOT convalidated "
            "AND conrelid = ANY(CAST(:tables AS regclass[])) ORDER BY 1, 2"
        ),
        {"tables": [table.name for table in tables]},
    ).all()
    for table_name, name in pending:
        conn.exec_driver_sql(f"ALTER TABLE {quote(table_name)} VALIDATE CONSTRAINT {quote(name)}")
    return [name for _, name in pending]
