"""MariaDB's ``LOAD DATA LOCAL INFILE`` for a bulk insert's rows, rendered as text fields,
and the staging table that lets the server parse them before the writer lock.

A full load writes about 160,000 links. As multi-row ``INSERT`` statements of literals
the server parses every value as SQL, about a third of its work on them under the
writer lock; ``LOAD DATA`` reads tab-separated fields instead. The fields are rendered
before the lock (:func:`field`, through :func:`etl.db.sql.convert_values`, once per
distinct value) and written to a private temporary file that the statement names.

Even ``LOAD DATA`` reads its fields a character at a time (about a third of the
server's time on the links). So the rows are loaded before the lock, into a staging
copy of the table that is the session's own (:func:`stage`), with a slot for each of
the two ids the lock decides; under the lock the slots are mapped to ids
(:func:`map_slots`), the server checks that each id has its parent row
(:func:`unparented`) and copies the rows into the table with the ids in place of the
slots (:func:`insert_staged`), about half the time a load into the table takes there.
The targets' URLs are staged beside them, and found under the lock by one join
(:func:`staged_key_ids`) instead of lists of URL literals. A large batch's articles are
staged the same way, their provider's and source's ids in place of the two slots, and
copied with an ON DUPLICATE KEY UPDATE clause (:func:`insert_staged`'s ``tail``).

Only where both ends allow it (:func:`allowed`): the server's ``local_infile``, and the
client's capability, which :func:`etl.db.database.make_engine` asks for without
letting PyMySQL send files. PyMySQL sends whatever file the server asks for while its
connection allows it: the connection allows it only during :func:`load`, and then
only the file :func:`load` names (:func:`_guard_sent_files`).

``LOCAL`` makes the server turn what would be errors (a value too long for its column,
a duplicate key) into warnings, because it cannot stop the client's stream: a load
that warns (notes aside) raises instead, as a refused ``INSERT`` would, and nothing
of its batch is written; the batch is then retried document by document, and the
document the server refuses is rejected. On a server whose sql_mode is not strict this is
stricter than ``INSERT``, which would store the value cut short: a link's, loaded again,
is refused; an article's, written alone as an ``INSERT`` (too few for staging), is not.

May import: ``etl.db.locks``, ``etl.db.timing``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, ForeignKeyConstraint, Table
from sqlalchemy.exc import DataError

from etl.db import disconnects, timing
from etl.db.locks import is_mysql

log = logging.getLogger(__name__)

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


def load(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    lines: list[str],
    *,
    into: str | None = None,
) -> None:
    """``LOAD DATA LOCAL INFILE`` of ``lines`` (rows of :func:`field`s joined by tabs,
    each ending in a newline) into ``columns`` of ``table`` (or of the table named
    ``into``, which has them too); raises if the server warns."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    driver: Any = conn.connection.driver_connection
    handle, path = tempfile.mkstemp(prefix="etl-load-", suffix=".tsv")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.writelines(lines)
        # The field rules are spelled out: without ESCAPED BY, a session whose sql_mode
        # has NO_BACKSLASH_ESCAPES would read no escapes (\N as text, not NULL). The
        # literals are the driver's own, right in either mode. The file is read as bytes
        # (CHARACTER SET binary): no UTF-8 sequence holds a byte the rules give a meaning,
        # and the server still checks each value as it stores it in its utf8mb4 column
        # (a malformed one is refused, lengths count characters), where reading it as
        # utf8mb4 decoded every character first: 37% of the server's time on the load.
        statement = (
            f"LOAD DATA LOCAL INFILE {driver.escape(path)} "
            f"INTO TABLE {quote(into or table.name)} "
            f"CHARACTER SET binary FIELDS TERMINATED BY {driver.escape(chr(9))} "
            f"ESCAPED BY {driver.escape(chr(92))} LINES TERMINATED BY {driver.escape(chr(10))} "
            f"({names})"
        )
        _SENDING.add(path)
        try:
            _execute(conn, driver, table, [statement], sends_file=True)
        finally:
            _SENDING.discard(path)
    finally:
        os.unlink(path)


def _execute(
    conn: Connection,
    driver: Any,
    table: Table,
    statements: Sequence[str],
    *,
    sends_file: bool = False,
) -> None:
    """Run ``statements`` (timed as ``table``'s) on the driver's own cursor: its warning
    count, no % formatting. A statement the server warns about raises."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = driver.cursor()
    driver._local_infile = sends_file
    statement = ""
    try:
        with timing.statement(table.name):
            for statement in statements:
                cursor.execute(statement)
                if cursor.warning_count:
                    _refuse_warnings(cursor, statement)
    except dbapi_error as exc:
        raise disconnects.driver_error(conn, statement, exc) from None
    finally:
        driver._local_infile = False
        cursor.close()


def _refuse_warnings(cursor: Any, statement: str) -> None:
    cursor.execute("SHOW WARNINGS")
    # Notes (a value rounded as INSERT rounds it) are not what INSERT refuses.
    refused = [row for row in cursor.fetchall() if row[0] != "Note"]
    if refused:
        raise DataError(statement, None, LoadDataWarning(refused[0][2]))


# --- staged rows: parsed by the server before the writer lock ---------------------

_MAP_ROWS = 50_000  # (slot, id) pairs per INSERT into a map
_SHARED = "etl_shared_slot"  # a staged row's column: the slot of its shared values


class _Staging(NamedTuple):
    """The quoted names of a table's staging copy and of the tables beside it."""

    rows: str  # the staged rows, two slots in place of their two ids
    first: str  # first slot -> id
    second: str  # second slot -> id
    keys: str  # second slot -> the key its row is found by (a link's target URL)
    shared: str  # slot -> values many rows share (a link's snippet)


def _staging(conn: Connection, table: Table) -> _Staging:
    quote = conn.dialect.identifier_preparer.quote
    name = f"etl_staging_{table.name}"
    suffixes = ("", "_first", "_second", "_keys", "_shared")
    return _Staging(*(quote(name + suffix) for suffix in suffixes))


_CAN_STAGE = "etl_can_stage"  # conn.info: the answer for this connection


def _engine(conn: Connection) -> str:
    """The staging tables' engine: outside transactions (see :func:`stage`). MariaDB's
    Aria reads a row through its page cache, where MyISAM makes a system call: the
    copy under the lock joins each staged link to its snippet and its two ids, and
    took 0.4 s more per load from MyISAM tables. MySQL has no Aria."""
    return "Aria" if getattr(conn.dialect, "is_mariadb", False) else "MyISAM"


def can_stage(conn: Connection) -> bool:
    """Whether ``conn`` may make the temporary tables :func:`stage` needs (a user
    without ``CREATE TEMPORARY TABLES`` may not: its links are inserted as literals)."""
    found = conn.info.get(_CAN_STAGE)
    if found is None:
        driver: Any = conn.connection.driver_connection
        probe = conn.dialect.identifier_preparer.quote("etl_staging_probe")
        try:
            with driver.cursor() as cursor:
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {probe} (id INTEGER) ENGINE={_engine(conn)}"
                )
                cursor.execute(f"DROP TEMPORARY TABLE {probe}")
            found = True
        except conn.dialect.loaded_dbapi.Error as exc:
            log.info("no staging table for the links (%s): they go in as INSERTs", exc)
            found = False
        conn.info[_CAN_STAGE] = found
    return bool(found)


def stage(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    lines: list[str],
    *,
    fresh: bool,
    keys: list[str] | None = None,
    shared: Sequence[str] = (),
    shared_lines: Sequence[str] = (),
) -> None:
    """:func:`load` of ``lines`` into a staging copy of ``columns`` of ``table`` whose
    two leading (integer) columns hold slots, which :func:`insert_staged` maps to ids;
    and of ``keys`` (lines of a second slot and the key of its row, see
    :func:`staged_key_ids`).

    ``shared``: more columns of ``table``, whose values many rows repeat (a link's
    snippet: 160,000 links show about 4,000). Each line of ``shared_lines`` holds them
    once, after a slot of their own; a line of ``lines`` ends with that slot instead.
    The server then reads each snippet once, not once per link, where reading the
    links' snippets cost about a sixth of a MariaDB load's server time.

    The copy is the session's own (``TEMPORARY``), with the real columns' types, and
    not transactional (:func:`_engine`): outside transactions, so a batch that rolls
    back and is retried document by document finds its rows still there. ``fresh``
    makes it anew, empty. Statements on temporary tables commit nothing and touch no
    transactional table: this runs before the writer lock, and inside a dry run's
    transaction alike.
    """
    names = _staging(conn, table)
    if fresh:
        quote = conn.dialect.identifier_preparer.quote

        def kinds(names: Sequence[str]) -> list[str]:
            return [
                f"{quote(name)} {table.c[name].type.compile(dialect=conn.dialect)}"
                for name in names
            ]

        engine = f"ENGINE={_engine(conn)} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        slot = "slot INTEGER NOT NULL PRIMARY KEY"
        rows = ", ".join([*kinds(columns), *([f"{_SHARED} INTEGER NOT NULL"] if shared else [])])
        driver: Any = conn.connection.driver_connection
        _execute(
            conn,
            driver,
            table,
            [
                f"DROP TEMPORARY TABLE IF EXISTS {', '.join(names)}",
                f"CREATE TEMPORARY TABLE {names.rows} ({rows}) {engine}",
                f"CREATE TEMPORARY TABLE {names.first} ({slot}, id INTEGER NOT NULL) {engine}",
                f"CREATE TEMPORARY TABLE {names.second} ({slot}, id INTEGER NOT NULL) {engine}",
                f"CREATE TEMPORARY TABLE {names.keys} ({slot}, value TEXT NOT NULL) {engine}",
                f"CREATE TEMPORARY TABLE {names.shared} "
                f"({', '.join([slot, *kinds(shared)])}) {engine}",
            ],
        )
    if shared_lines:
        load(conn, table, ("slot", *shared), list(shared_lines), into=names.shared)
    load(conn, table, (*columns, *([_SHARED] if shared else [])), lines, into=names.rows)
    if keys:
        load(conn, table, ("slot", "value"), keys, into=names.keys)


def staged_key_ids(
    conn: Connection, table: Table, parent: Table, column: str, index: str
) -> dict[int, int]:
    """Under the writer lock: second slot -> the id of the ``parent`` row whose
    ``column`` is its staged key (:func:`stage`), for each key that has one.

    A join through ``index`` (on MariaDB, the B-tree on the key's first characters):
    about 4 µs a key, where an ``IN`` list of the keys as literals cost 15-19 µs, a third
    of it parsing the list; MariaDB's optimizer, misled by the prefix, would read
    ``parent`` whole for each staged row without the hints.
    """
    names = _staging(conn, table)
    quote = conn.dialect.identifier_preparer.quote
    statement = (
        f"SELECT k.slot, p.id FROM {names.keys} k STRAIGHT_JOIN {quote(parent.name)} p "
        f"FORCE INDEX ({quote(index)}) ON p.{quote(column)} = k.value"
    )
    with timing.labelled(f"{parent.name} read"):  # as the IN lists it replaces
        return dict(
            conn.exec_driver_sql(statement, execution_options={"no_parameters": True}).all()
        )


def map_slots(
    conn: Connection,
    table: Table,
    first: Sequence[tuple[int, int]],
    second: Sequence[tuple[int, int]],
) -> None:
    """Map the two slots of ``table``'s staged rows (:func:`stage`) to ids, as
    ``(slot, id)`` pairs: ``first`` for the first column's, ``second`` for the
    second's (what :func:`insert_staged` puts in their place)."""
    names = _staging(conn, table)
    statements = [f"DELETE FROM {names.first}", f"DELETE FROM {names.second}"]
    for name, pairs in ((names.first, first), (names.second, second)):
        for start in range(0, len(pairs), _MAP_ROWS):
            values = ",".join(
                f"({slot:d},{id_:d})" for slot, id_ in pairs[start : start + _MAP_ROWS]
            )
            statements.append(f"INSERT INTO {name} (slot, id) VALUES {values}")
    _execute(conn, conn.connection.driver_connection, table, statements)


def unparented(
    conn: Connection, table: Table, columns: Sequence[str], key: ForeignKeyConstraint
) -> int | None:
    """Of the ids :func:`map_slots` mapped for the column of ``key`` (a foreign key of
    ``table`` on one of the two leading ``columns``), the least that has no row in the
    key's parent table; None if each has one. One anti-join on the server, where reading
    the ids back and looking each up from the client cost ~0.1 s of a full load's
    ~4 s under the writer lock."""
    (element,) = key.elements
    names = _staging(conn, table)
    maps = {columns[0]: names.first, columns[1]: names.second}
    if element.parent.name not in maps:
        raise ValueError(f"{key.name} is not on a slot column of {table.name}")
    quote = conn.dialect.identifier_preparer.quote
    parent, column = quote(element.column.table.name), quote(element.column.name)
    statement = (
        f"SELECT MIN(m.id) FROM {maps[element.parent.name]} m LEFT JOIN {parent} p "
        f"ON p.{column} = m.id WHERE p.{column} IS NULL"
    )
    with timing.labelled(f"{element.column.table.name} read"):  # as the lookups it replaces
        found = conn.exec_driver_sql(statement, execution_options={"no_parameters": True})
        missing: int | None = found.scalar()
    return missing


def insert_staged(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    shared: int = 0,
    *,
    given: Sequence[tuple[str, str]] = (),
    tail: str = "",
) -> None:
    """Insert into ``table`` the staged rows (:func:`stage`), ids in place of their two
    slots (:func:`map_slots`): the server copies them. The last ``shared`` of
    ``columns`` are the staged ``shared`` ones; ``given`` more columns, each with the
    SQL literal every row gets; ``tail`` ends the statement (an ON DUPLICATE KEY UPDATE
    clause). Only the rows whose slots are mapped go in. Raises if the server warns.

    In the order they were staged (the join reads the staging table in order and looks
    each slot up in its map): sorting them by key under the writer lock cost more than
    the pages it saved, when the rows were staged in nearly that order.
    """
    staging, first_map, second_map, _, shared_table = _staging(conn, table)
    quote = conn.dialect.identifier_preparer.quote
    lead, follow = (quote(name) for name in columns[:2])
    own = columns[2 : len(columns) - shared]
    rest = "".join(
        [
            *(f", s.{quote(name)}" for name in own),
            *(f", n.{quote(name)}" for name in columns[len(columns) - shared :]),
        ]
    )
    rest += "".join(f", {literal}" for _, literal in given)
    joined = f" JOIN {shared_table} n ON n.slot = s.{_SHARED}" if shared else ""
    listed = ", ".join(quote(name) for name in [*columns, *(name for name, _ in given)])
    statement = (
        f"INSERT INTO {quote(table.name)} ({listed}) SELECT a.id, b.id{rest} FROM {staging} s "
        f"JOIN {first_map} a ON a.slot = s.{lead} JOIN {second_map} b ON b.slot = s.{follow}"
        f"{joined}{tail}"
    )
    _execute(conn, conn.connection.driver_connection, table, [statement])
