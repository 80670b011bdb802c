"""The per-dialect SQL toolkit: set-based statements that know nothing of news.

Owns how many rows are written at once on each backend: dialect upserts
(``ON CONFLICT`` / ``ON DUPLICATE KEY UPDATE``), PostgreSQL COPY (binary where the
columns allow it) into staging tables, plain bulk inserts, updates by id, and
:func:`transaction` (a savepoint inside a transaction already open). The lookups by
``IN`` lists are ``etl.db.lookups``', the transactions that write the news under the
writer lock ``etl.db.writer``'s (both re-exported here).

May import: ``etl.db.locks``, ``etl.db.lookups``, ``etl.db.timing``, ``etl.db.writer``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    Table,
    bindparam,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.sql.expression import ColumnElement

from etl.db import disconnects, timing

# Re-exported (the `as` form) for the callers that import them from here: is_mysql is
# etl.db.locks', the lookups etl.db.lookups', the transactions that write the news are
# etl.db.writer's.
from etl.db.locks import is_mysql as is_mysql
from etl.db.lookups import chunks as chunks
from etl.db.lookups import delete_where_in as delete_where_in
from etl.db.lookups import ids_by as ids_by
from etl.db.lookups import in_conditions as in_conditions
from etl.db.lookups import mysql_literal
from etl.db.writer import rolled_back as rolled_back
from etl.db.writer import writer_transaction as writer_transaction

STAGE_FROM = 64  # rows from which a PostgreSQL upsert goes through COPY (see upsert), and
# documents from which a MariaDB batch stages its articles (etl.load.prepared)

Setter = Callable[[Table, Any], list[tuple[str, ColumnElement[Any]]]]


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    setter: Setter | None = None,
    *,
    skip_unchanged: bool = True,
    converted: int = 0,
) -> None:
    """INSERT many rows; on a key conflict apply ``setter`` (or do nothing).

    ``setter(table, new)`` returns ordered ``(column, expression)`` pairs where
    ``new`` names the proposed row. MariaDB applies them left to right, so a pair
    may only read columns that earlier pairs have not changed yet.
    ``skip_unchanged=False`` for callers that only propose changed rows (and for
    tables with JSON columns, which PostgreSQL cannot compare).
    ``converted``: on MariaDB, the last values of each row that are its SQL literals
    already (:func:`convert_values`, before the writer lock); 0 elsewhere.
    """
    if not rows:
        return
    if converted and not is_mysql(conn):
        raise ValueError("only MariaDB's upserts take values converted before")
    # What decides the statement's text, with the columns: its compiled form is kept.
    shape = (conn.dialect.name, table.name, tuple(rows[0]), tuple(keys), setter, skip_unchanged)
    # PostgreSQL, many rows: COPY them into a staging table and upsert from there.
    # A 500-article multi-VALUES upsert has 12,500 parameters, which SQLAlchemy and
    # psycopg handle one at a time in Python; COPY formats rows in C.
    staging = (
        _staging_table(table)
        if conn.dialect.name == "postgresql" and len(rows) >= STAGE_FROM
        else None
    )
    # Each dialect module is imported on use: importing all three pulls in their async
    # adapters and asyncio, a noticeable part of a re-run's start-up.
    if is_mysql(conn):
        stmt: Any = _mysql_upsert(table, keys, setter)
        if _upsert_literals(conn, table, stmt, rows, shape, converted):
            return
        if converted:
            raise ValueError(f"the upsert into {table.name} cannot take literals")
    else:
        # Both dialects' Insert have .excluded and .on_conflict_*(); mypy sees two types.
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table)
        if staging is not None:
            stmt = stmt.from_select(list(rows[0]), _staged_rows(conn, staging, rows, keys))
        if setter:
            pairs = setter(table, stmt.excluded)
            # Skip no-op updates so re-runs write nothing (MariaDB does this by itself).
            changed = (
                or_(*(table.c[name].is_distinct_from(expr) for name, expr in pairs))
                if skip_unchanged
                else None
            )
            stmt = stmt.on_conflict_do_update(index_elements=keys, set_=dict(pairs), where=changed)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    if staging is None:
        if conn.dialect.name == "sqlite" and len(rows) >= STAGE_FROM:
            _executemany(conn, table, stmt, rows, shape)
            return
        conn.execute(stmt, list(rows))
        return
    conn.execute(stmt)
    conn.execute(delete(staging))  # the next upsert into this table in this transaction


Shape = tuple[str, str, tuple[str, ...], tuple[str, ...], Setter | None, bool]


def _compiled(conn: Connection, stmt: Any, shape: Shape) -> Any:
    """``stmt`` compiled for the columns of ``shape``, once per shape (the dialect,
    table, columns, keys, setter and ``skip_unchanged`` decide its text); None when it
    binds parameters of its own, which only SQLAlchemy's execution fills in. Compiling
    an upsert of 26 columns took about 2 ms, under the writer lock, for every batch."""
    setter = shape[4]
    key = (*shape[:4], setter.__code__ if setter else None, shape[5])
    found = _COMPILED.get(key, _UNKNOWN)
    if found is _UNKNOWN:
        columns = shape[2]
        found = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
        if set(found.params) != set(columns):
            found = None
        # A setter that closes over values may make other texts: not kept.
        if (setter is None or setter.__closure__ is None) and len(_COMPILED) < 64:
            _COMPILED[key] = found
    return found


_COMPILED: dict[tuple[Any, ...], Any] = {}
_UNKNOWN = object()


def _executemany(
    conn: Connection, table: Table, stmt: Any, rows: Sequence[dict[str, Any]], shape: Shape
) -> None:
    """SQLite: ``stmt`` of many ``rows`` through the driver's executemany, each value
    converted once per distinct value of its column (:func:`convert_values`).

    SQLAlchemy's executemany processes every parameter of every row in Python: for
    a batch of articles it cost a third of the upsert, under the writer lock.
    """
    compiled = _compiled(conn, stmt, shape)
    if compiled is None or compiled.positiontup is None:
        conn.execute(stmt, list(rows))  # parameters of its own: SQLAlchemy binds them
        return
    columns = list(shape[2])
    order = [columns.index(name) for name in compiled.positiontup]
    values = [[row[name] for name in columns] for row in rows]
    convert_values(conn, table, columns, values)
    conn.exec_driver_sql(compiled.string, [tuple([row[i] for i in order]) for row in values])


def _staging_table(table: Table) -> Table:
    """A session-local copy of ``table``'s columns (no keys, no constraints) to COPY into."""
    staging = _STAGING_TABLES.get(table.name)
    if staging is None:
        staging = Table(
            f"etl_staging_{table.name}",
            MetaData(),
            *(Column(c.name, c.type) for c in table.c if c is not table.autoincrement_column),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DELETE ROWS",  # and a rollback takes its rows too
        )
        _STAGING_TABLES[table.name] = staging
    return staging


_STAGING_TABLES: dict[str, Table] = {}


def _staged_rows(
    conn: Connection, staging: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> Any:
    """COPY ``rows`` into ``staging``; the SELECT that reads them back, in key order."""
    from sqlalchemy.schema import CreateTable

    columns = list(rows[0])
    conn.execute(CreateTable(staging, if_not_exists=True))
    bulk_insert(conn, staging, columns, [[row[name] for name in columns] for row in rows])
    return select(*(staging.c[name] for name in columns)).order_by(
        *(staging.c[name] for name in keys)
    )


def bulk_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: list[list[Any]],
    *,
    converted: int = 0,
) -> None:
    """Append rows (lists of ``columns`` values) that cannot conflict: child rows of
    articles just cleared. The lists are converted in place (:func:`convert_values`);
    the last ``converted`` columns were converted already, before the writer lock.

    The rows go to the driver directly: SQLAlchemy's per-row parameter machinery cost
    more than the database work here. PostgreSQL gets COPY (psycopg's executemany
    sends one statement per row), MariaDB multi-row INSERTs of literals, SQLite a
    plain executemany.
    """
    if not rows:
        return
    dialect = conn.dialect
    convert_values(conn, table, columns[: len(columns) - converted], rows)
    if dialect.name == "postgresql":
        with timing.statement(table.name):  # the driver's cursor: no SQLAlchemy events
            _copy_rows(conn, table, columns, rows)
        return
    if is_mysql(conn):
        _insert_literals(conn, table, columns, rows)
        return
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    placeholders = ", ".join([marker] * len(columns))
    conn.exec_driver_sql(
        f"INSERT INTO {quote(table.name)} ({names}) VALUES ({placeholders})",
        [tuple(row) for row in rows],
    )


def convert_values(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: list[list[Any]],
    render: Callable[[Any], str] | None = None,
) -> None:
    """Convert the first ``len(columns)`` values of ``rows`` in place to what
    :func:`bulk_insert` sends: the column types' bind processors' output, and on
    MariaDB the SQL literal the driver makes of it (``render``'s text instead, when
    given: ``etl.db.load_data.field``).

    Each distinct value of a column is converted once: a link's snippet (its date,
    its title) repeats in every article that lists it. Needs no transaction: a
    worker converts its batch's links before it asks for the writer lock.
    """
    dialect = conn.dialect
    # The driver's own escape, so that MariaDB's literals are what it would have sent
    # (NO_BACKSLASH_ESCAPES included).
    escape = render or (mysql_literal(conn) if is_mysql(conn) else None)
    for index, name in enumerate(columns):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is None and escape is None:
            continue
        converted: dict[Any, Any] = {}
        for row in rows:
            value = row[index]
            # True == 1 == 1.0 and they hash alike, but their JSON (and literals) differ.
            key = value if value.__class__ is str else (value.__class__, value)
            try:
                row[index] = converted[key]
            except KeyError:
                row[index] = converted[key] = _convert(value, process, escape)
            except TypeError:  # unhashable (JSON): convert every time
                row[index] = _convert(value, process, escape)


def _convert(
    value: Any, process: Callable[[Any], Any] | None, escape: Callable[[Any], str] | None
) -> Any:
    if process is not None:
        value = process(value)
    return value if escape is None else escape(value)


MYSQL_STATEMENT_CHARS = 1_000_000  # as PyMySQL's executemany; at most 4 MB in utf8mb4


def _mysql_upsert(table: Table, keys: Sequence[str], setter: Setter | None) -> Any:
    """MariaDB's upsert of ``table``: ``setter``'s pairs on a duplicate key, else a no-op."""
    from sqlalchemy.dialects.mysql import insert as mysql_insert

    stmt = mysql_insert(table)
    pairs = setter(table, stmt.inserted) if setter else [(keys[0], table.c[keys[0]])]
    return stmt.on_duplicate_key_update(pairs)


def _duplicate_key_tail(compiled: Any) -> str | None:
    """The ON DUPLICATE KEY UPDATE clause (with its leading space) of a compiled MariaDB
    upsert; None when it has none, or holds parameters of its own or a % sign."""
    if compiled is None:
        return None
    _, clause, update = compiled.string.partition(" ON DUPLICATE KEY UPDATE ")
    if not clause or "%" in update:
        return None
    return str(clause + update)


def duplicate_key_update(
    conn: Connection, table: Table, columns: Sequence[str], keys: Sequence[str], setter: Setter
) -> str:
    """MariaDB: the ON DUPLICATE KEY UPDATE clause of :func:`upsert`'s statement for rows
    of ``columns`` (``skip_unchanged=False``), compiled once per shape as that statement
    is, for a statement that takes its rows from elsewhere (``etl.db.load_data``)."""
    shape = (conn.dialect.name, table.name, tuple(columns), tuple(keys), setter, False)
    tail = _duplicate_key_tail(_compiled(conn, _mysql_upsert(table, keys, setter), shape))
    if tail is None:
        raise ValueError(f"the upsert into {table.name} has no clause without parameters")
    return tail


def _upsert_literals(
    conn: Connection,
    table: Table,
    stmt: Any,
    rows: Sequence[dict[str, Any]],
    shape: Shape,
    converted: int = 0,
) -> bool:
    """MariaDB: the upsert ``stmt`` of ``rows`` as multi-row INSERTs of literals, its
    ON DUPLICATE KEY UPDATE clause as SQLAlchemy compiles it (the last ``converted``
    values of a row are literals already). False (nothing done) when that clause holds
    parameters of its own or a % sign."""
    tail = _duplicate_key_tail(_compiled(conn, stmt, shape))
    if tail is None:
        return False
    columns = list(shape[2])
    values = [[row[name] for name in columns] for row in rows]
    convert_values(conn, table, columns[: len(columns) - converted], values)
    _insert_literals(conn, table, columns, values, tail)
    return True


def _insert_literals(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[list[str]], tail: str = ""
) -> None:
    """MariaDB: ``rows`` of literals (:func:`convert_values`) as multi-row INSERTs, each
    followed by ``tail`` (an ON DUPLICATE KEY UPDATE clause).

    PyMySQL's executemany escapes every value through several Python calls, which was
    most of a full load's client work under the writer lock.
    """
    quote = conn.dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) VALUES "
    values: list[str] = []
    size = 0
    # The text holds no parameters: its % signs must reach the server as they are.
    options = {"no_parameters": True}
    for row in rows:
        value = "(" + ",".join(row) + ")"
        if values and size + len(value) > MYSQL_STATEMENT_CHARS:
            conn.exec_driver_sql(head + ",".join(values) + tail, execution_options=options)
            values, size = [], 0
        values.append(value)
        size += len(value) + 1
    conn.exec_driver_sql(head + ",".join(values) + tail, execution_options=options)


# PostgreSQL type -> the psycopg type whose binary form it writes for that column's
# (bind-processed) Python values. Binary COPY halves the client's work and spares the
# server parsing text; a column of any other type (JSON) makes the COPY text.
_BINARY_COPY_TYPES = {
    "integer": "int4",
    "bigint": "int8",
    "boolean": "bool",
    "text": "text",
    "varchar": "varchar",
    "timestamp with time zone": "timestamptz",
}


def _binary_copy_types(conn: Connection, table: Table, columns: Sequence[str]) -> list[str] | None:
    compile_type = conn.dialect.type_compiler_instance.process
    types = []
    for name in columns:
        sql_type = compile_type(table.c[name].type).lower().partition("(")[0]
        if sql_type not in _BINARY_COPY_TYPES:
            return None
        types.append(_BINARY_COPY_TYPES[sql_type])
    return types


def _copy_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[list[Any]]
) -> None:
    """COPY ``rows`` into ``table`` (PostgreSQL), in binary when every column allows it."""
    quote = conn.dialect.identifier_preparer.quote
    types = _binary_copy_types(conn, table, columns)
    names = ", ".join(quote(name) for name in columns)
    statement = f"COPY {quote(table.name)} ({names}) FROM STDIN"
    if types:
        statement += " (FORMAT BINARY)"
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    except dbapi_error as exc:
        # The driver's own cursor bypasses SQLAlchemy: a value the database refuses (too
        # long for its column) rejects its document, as on the other backends.
        raise disconnects.driver_error(conn, statement, exc) from None


UPDATE_CHUNK = 500  # rows per MariaDB UPDATE of update_by_id


def update_by_id(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Set, in each row of ``table`` whose ``id`` a mapping of ``rows`` names, the
    columns the mapping holds (every mapping the same columns).

    MariaDB gets one ``UPDATE ... SET column = CASE id WHEN ... END`` per chunk of rows,
    of literals (:func:`convert_values`): PyMySQL's executemany sends an UPDATE per row,
    a round trip each (0.37 s for the images of a full load), and SQLAlchemy's ``case()``
    of bound values took 80 µs a row to build, compile and escape. Elsewhere an
    executemany: psycopg pipelines it, SQLite runs it in process.
    """
    if not rows:
        return
    columns = [name for name in rows[0] if name != "id"]
    if is_mysql(conn):
        quote = conn.dialect.identifier_preparer.quote
        values = [[row[name] for name in columns] for row in rows]
        convert_values(conn, table, columns, values)
        ids = [int(row["id"]) for row in rows]
        key = quote("id")
        for start in range(0, len(rows), UPDATE_CHUNK):
            chunk = range(start, min(start + UPDATE_CHUNK, len(rows)))
            sets = ", ".join(
                f"{quote(name)} = CASE {key} "
                + " ".join(f"WHEN {ids[i]:d} THEN {values[i][index]}" for i in chunk)
                + " END"
                for index, name in enumerate(columns)
            )
            listed = ",".join(str(ids[i]) for i in chunk)
            conn.exec_driver_sql(
                f"UPDATE {quote(table.name)} SET {sets} WHERE {key} IN ({listed})",
                execution_options={"no_parameters": True},
            )
        return
    # executemany UPDATE: bound names must differ from the column names.
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )
    conn.execute(stmt, [{f"b_{key}": value for key, value in row.items()} for row in rows])


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """A transaction, or a savepoint inside the one already open (a dry run's)."""
    with conn.begin_nested() if conn.in_transaction() else conn.begin():
        yield
