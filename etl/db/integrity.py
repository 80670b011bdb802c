"""Foreign keys of a bulk insert checked once, set-based, instead of once per row.

A full load writes about 30 links per article; PostgreSQL and MariaDB check each
row's two foreign keys with an index probe (PostgreSQL also locks the row it finds),
which was more than half of the server's work in a full load. For a large insert,
:func:`insert_checked_once` instead checks the new rows with one anti-join per key
before the transaction commits, as pgloader does:

- PostgreSQL: the table's foreign keys are dropped and re-added ``NOT VALID`` in the
  writer transaction (DDL is transactional there: a failure or a signal rolls the
  drop back with everything else), and the anti-join checks the rows just written.
  ``NOT VALID`` keeps every key enforced for later writes, and means "rows older than
  the constraint were not checked by it": :func:`validate_keys`, at the end of a run,
  validates them (a read of the table that blocks no reader or writer), and until
  then the anti-joins have checked every row. Dropping a key takes an exclusive lock
  on both tables until the commit; when another session holds one (an analyst's open
  transaction), the insert does not wait but takes the per-row path.
- MariaDB: the session skips the checks for this one statement
  (``foreign_key_checks=0``; no DDL, the keys stay as they are) and the anti-join
  checks what it wrote.
- SQLite checks a key with a B-tree probe in process, cheaper than any of this; and
  ``PRAGMA foreign_keys`` cannot change inside a transaction: it keeps per-row checks.

A row the anti-join finds without its parent fails the statement, as the per-row
check would have. Small inserts (an incremental run) keep the per-row checks.

May import: ``etl.db.sql``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, ForeignKeyConstraint, Table, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.schema import AddConstraint

from etl.db.sql import bulk_insert, chunks, is_mysql

log = logging.getLogger(__name__)

CHECK_ONCE_FROM = 2000  # rows from which a bulk insert's keys are checked set-based
LOCK_WAIT = "200ms"  # how long a drop may wait for the tables' exclusive lock


def insert_checked_once(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[list[Any]], owner: str
) -> None:
    """:func:`etl.db.sql.bulk_insert`, checking the foreign keys of many rows at once.

    ``owner`` is a column whose values select exactly the rows this insert adds (the
    rows of articles whose child sets were just cleared); the anti-joins read by it.
    """
    keys = _foreign_keys(table)
    if len(rows) < CHECK_ONCE_FROM or not keys or conn.dialect.name == "sqlite":
        bulk_insert(conn, table, columns, rows)
        return
    owners = sorted({row[columns.index(owner)] for row in rows})
    if is_mysql(conn):
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        try:
            bulk_insert(conn, table, columns, rows)
        finally:
            if not conn.invalidated and not conn.closed:
                conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")
    elif conn.dialect.name == "postgresql":
        if not _drop_keys(conn, table, keys):
            bulk_insert(conn, table, columns, rows)
            return
        bulk_insert(conn, table, columns, rows)
        for key in keys:
            statement = str(AddConstraint(key).compile(dialect=conn.dialect))
            conn.exec_driver_sql(f"{statement} NOT VALID")
    else:
        bulk_insert(conn, table, columns, rows)
        return
    _check(conn, table, keys, owner, owners)


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
    table: Table,
    keys: Sequence[ForeignKeyConstraint],
    owner: str,
    owners: Sequence[Any],
) -> None:
    """Fail if a row of ``owners`` lacks the parent row of one of ``keys``."""
    quote = conn.dialect.identifier_preparer.quote
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for key in keys:
        (element,) = key.elements  # every key of the schema has one column
        child, parent = element.parent, element.column
        for part in chunks(owners):
            found = conn.exec_driver_sql(
                f"SELECT c.{quote(child.name)} FROM {quote(table.name)} c "
                f"LEFT JOIN {quote(parent.table.name)} p "
                f"ON p.{quote(parent.name)} = c.{quote(child.name)} "
                f"WHERE c.{quote(owner)} IN ({', '.join([marker] * len(part))}) "
                f"AND c.{quote(child.name)} IS NOT NULL AND p.{quote(parent.name)} IS NULL "
                "LIMIT 1",
                tuple(part),
            ).first()
            if found is not None:
                raise IntegrityError(
                    f"check of {key.name}",
                    None,
                    Exception(
                        f"{table.name}.{child.name} = {found[0]} has no row in "
                        f"{parent.table.name} (foreign key {key.name})"
                    ),
                )


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
