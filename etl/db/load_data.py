"""MariaDB's ``LOAD DATA LOCAL INFILE`` for a bulk insert's rows, rendered as text fields.

A full load writes about 160,000 links. As multi-row ``INSERT`` statements of literals
the server parses every value as SQL, about a third of its work on them under the
writer lock; ``LOAD DATA`` reads tab-separated fields instead. The fields are rendered
before the lock (:func:`field`, through :func:`etl.db.sql.convert_values`, once per
distinct value); under it a row is its ids and the rendered rest, written to a private
temporary file that the statement names.

Only where both ends allow it (:func:`allowed`): the server's ``local_infile``, and the
client's capability, which :func:`etl.db.database.make_engine` asks for without
letting PyMySQL send files. PyMySQL sends whatever file the server asks for while its
connection allows it: the connection allows it only during :func:`load`, and then
only the file :func:`load` names (:func:`_guard_sent_files`).

``LOCAL`` makes the server turn what would be errors (a value too long for its column,
a duplicate key) into warnings, because it cannot stop the client's stream: a load
that warns (notes aside) raises instead, and its transaction rolls back as a refused
``INSERT``'s would; the batch is then retried document by document, and the document
the server refuses is rejected. On a server whose sql_mode is not strict this is
stricter than ``INSERT``, which would store the value cut short.

May import: ``etl.db.locks``, ``etl.db.timing``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DataError, DBAPIError

from etl.db import timing
from etl.db.locks import is_mysql

# The field and line rules load() spells out: tab-separated, newline-terminated, with
# backslash escapes (\N is NULL). Every character those rules give a meaning is escaped.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
NULL = "\\N"
_ALLOWED = "etl_load_data_allowed"  # conn.info: the answer for this connection
LOCAL_FILES = 1 << 7  # the client capability flag CLIENT_LOCAL_FILES (PyMySQL's CLIENT)


class LoadDataWarning(Exception):
    """The server warned during a load: what ``INSERT`` would have refused."""


def field(value: Any) -> str:
    """One value (as a column's bind processor left it) as a LOAD DATA field."""
    if value is None:
        return NULL
    if value.__class__ is str:
        # str.translate looks each character up in a dict: `in` tests in C first, as
        # nearly every value holds none of these.
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value or "\0" in value:
            return value.translate(_ESCAPES)
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise TypeError(f"a LOAD DATA field takes naive UTC datetimes, not {value!r}")
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"no LOAD DATA field for a {type(value).__name__}")


def joined(fields: Sequence[str]) -> str:
    """A row's :func:`field`s after its two ids, as one text (rendered before the lock)."""
    return "\t".join(fields)


def load_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """:func:`load` of ``rows``: two integer ids, then the rest as :func:`joined` made it."""
    load(
        conn, table, columns, [f"{source:d}\t{target:d}\t{rest}\n" for source, target, rest in rows]
    )


def allowed(conn: Connection) -> bool:
    """Whether ``conn`` (MariaDB or MySQL) can ``LOAD DATA LOCAL``: the server's
    ``local_infile`` is on and the connection asked for it when it connected."""
    if not is_mysql(conn):
        return False
    found = conn.info.get(_ALLOWED)
    if found is None:
        driver: Any = conn.connection.driver_connection
        found = (
            hasattr(driver, "_local_infile")
            and bool(driver.client_flag & LOCAL_FILES)
            and _guard_sent_files()
        )
        if found:
            # The driver's cursor: through SQLAlchemy the query would begin a transaction,
            # and the writer's would become a savepoint of it.
            with driver.cursor() as cursor:
                cursor.execute("SELECT @@local_infile")
                (value,) = cursor.fetchone()
            found = bool(value)
        conn.info[_ALLOWED] = found
    return bool(found)


# The files load() is sending now: the only ones the driver may send (_guard_sent_files).
_SENDING: set[str] = set()


def _guard_sent_files() -> bool:
    """Make PyMySQL send a file only if load() is sending it; False if it cannot be made to.

    PyMySQL sends whatever file the server's LOCAL request names, not the one our
    statement named: a server that is not what it seems could ask for any file the
    process can read. Its sending function is wrapped (once per process) to refuse
    every other name; a PyMySQL without that function gets no LOAD DATA at all.
    """
    try:
        import pymysql.connections as driver_module  # type: ignore[import-untyped]
        from pymysql import err
    except ImportError:
        return False
    send = getattr(driver_module, "_send_local_file", None)
    if send is None:
        return False
    if getattr(send, "etl_guarded", False):
        return True

    def guarded(filename: str | bytes, connection: Any) -> None:
        if os.fsdecode(filename) not in _SENDING:  # the server's packet gives bytes
            raise err.OperationalError(1148, f"refused to send {filename!r}: not etl's load file")
        send(filename, connection)

    guarded.etl_guarded = True  # type: ignore[attr-defined]
    driver_module._send_local_file = guarded
    return True


def load(conn: Connection, table: Table, columns: Sequence[str], lines: list[str]) -> None:
    """``LOAD DATA LOCAL INFILE`` of ``lines`` (rows of :func:`field`s joined by tabs,
    each ending in a newline) into ``columns`` of ``table``; raises if the server warns."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    driver: Any = conn.connection.driver_connection
    handle, path = tempfile.mkstemp(prefix="etl-load-", suffix=".tsv")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.writelines(lines)
        # The field rules are spelled out: without ESCAPED BY, a session whose sql_mode
        # has NO_BACKSLASH_ESCAPES would read no escapes (\N as text, not NULL). The
        # literals are the driver's own, right in either mode.
        statement = (
            f"LOAD DATA LOCAL INFILE {driver.escape(path)} INTO TABLE {quote(table.name)} "
            f"CHARACTER SET utf8mb4 FIELDS TERMINATED BY {driver.escape(chr(9))} "
            f"ESCAPED BY {driver.escape(chr(92))} LINES TERMINATED BY {driver.escape(chr(10))} "
            f"({names})"
        )
        _SENDING.add(path)
        try:
            _execute(conn, driver, table, statement)
        finally:
            _SENDING.discard(path)
    finally:
        os.unlink(path)


def _execute(conn: Connection, driver: Any, table: Table, statement: str) -> None:
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = driver.cursor()  # the driver's own: its warning count, no % formatting
    driver._local_infile = True
    try:
        with timing.statement(table.name):
            cursor.execute(statement)
        if cursor.warning_count:
            cursor.execute("SHOW WARNINGS")
            # Notes (a value rounded as INSERT rounds it) are not what INSERT refuses.
            refused = [row for row in cursor.fetchall() if row[0] != "Note"]
            if refused:
                raise DataError(statement, None, LoadDataWarning(refused[0][2]))
    except dbapi_error as exc:
        # As SQLAlchemy wraps its cursors' errors: a value the server refuses rejects its
        # document, a lost connection ends the run.
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from None
    finally:
        driver._local_infile = False
        cursor.close()
