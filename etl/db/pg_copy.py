"""PostgreSQL COPY: rows into a table in its binary format (text when a column has none).

Owns how rows become COPY data: :func:`copy_rows` lets psycopg format each row;
:func:`encode_fields` encodes the values that are known before the writer lock
(every column but the ids) into one block of fields per row, and :func:`copy_fields`
sends, under the lock, the ids packed in front of those blocks. ``etl.db.sql`` decides
when each is used.

May import: nothing of etl (psycopg is imported on use, by PostgreSQL's paths only).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError


class CopyFields(bytes):
    """PostgreSQL: the last columns of a row as the fields of a binary COPY row,
    encoded by psycopg's own dumpers (:func:`encode_fields`)."""


def encode_fields(
    conn: Connection,
    table: Table,
    lead: Sequence[str],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> list[CopyFields] | None:
    """Each row's values of ``columns`` as one :class:`CopyFields`, to follow the
    two ``lead`` columns' integers in :func:`copy_fields`; None when a column's type
    has no binary COPY here or ``lead`` is not two ``integer`` columns.

    Each distinct value of a column is encoded once, by the dumper psycopg's binary
    COPY uses for the column's type (``Copy.set_types``), after the column type's bind
    processor, as ``Copy.write_row`` would have encoded it.
    """
    types = binary_copy_types(conn, table, columns)
    if types is None or binary_copy_types(conn, table, lead) != ["int4", "int4"]:
        return None
    from psycopg import pq

    dialect = conn.dialect
    driver: Any = conn.connection.driver_connection
    encoded: list[list[bytes]] = []
    for index, (name, type_name) in enumerate(zip(columns, types, strict=True)):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        oid = driver.adapters.types[type_name].oid
        dump = driver.adapters.get_dumper_by_oid(oid, pq.Format.BINARY)(type(None), driver).dump
        fields: dict[Any, bytes] = {}
        column = []
        for row in rows:
            value = row[index]
            # True == 1 and they hash alike, but their fields differ.
            key = value if value.__class__ is str else (value.__class__, value)
            field = fields.get(key)
            if field is None:
                field = fields[key] = _binary_field(value, process, dump)
            column.append(field)
        encoded.append(column)
    return [CopyFields(b"".join(parts)) for parts in zip(*encoded, strict=True)]


_NULL_FIELD = b"\xff\xff\xff\xff"  # a binary COPY field of length -1


def _binary_field(value: Any, process: Callable[[Any], Any] | None, dump: Any) -> bytes:
    if process is not None:
        value = process(value)
    if value is None:
        return _NULL_FIELD
    data = bytes(dump(value))
    return len(data).to_bytes(4, "big") + data


def copy_fields(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[list[Any]]
) -> None:
    """COPY rows of two integer ids and their :class:`CopyFields` into ``table``."""
    pack = _ROW_HEAD.pack
    count = len(columns)
    # In block mode the data is the whole COPY: its signature and trailer too. It goes
    # in pieces: psycopg sends each from a thread of its own while the next is built,
    # so that the server works as the rows are made.
    with _copy(conn, table, columns, binary=True) as copy:
        copy.write(_COPY_SIGNATURE)
        for start in range(0, len(rows), COPY_PIECE):
            piece = rows[start : start + COPY_PIECE]
            copy.write(b"".join([pack(count, 4, row[0], 4, row[1]) + row[2] for row in piece]))
        copy.write(_COPY_TRAILER)


COPY_PIECE = 1000  # rows per write of copy_fields: about 150 KB of links


_ROW_HEAD = struct.Struct(">hiiii")  # field count, then two int4 fields (length, value)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + bytes(8)  # no flags, no header extension
_COPY_TRAILER = b"\xff\xff"


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


def binary_copy_types(conn: Connection, table: Table, columns: Sequence[str]) -> list[str] | None:
    compile_type = conn.dialect.type_compiler_instance.process
    types = []
    for name in columns:
        sql_type = compile_type(table.c[name].type).lower().partition("(")[0]
        if sql_type not in _BINARY_COPY_TYPES:
            return None
        types.append(_BINARY_COPY_TYPES[sql_type])
    return types


def copy_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[list[Any]]
) -> None:
    """COPY ``rows`` into ``table`` (PostgreSQL), in binary when every column allows it."""
    types = binary_copy_types(conn, table, columns)
    with _copy(conn, table, columns, binary=types is not None) as copy:
        if types:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


@contextmanager
def _copy(conn: Connection, table: Table, columns: Sequence[str], *, binary: bool) -> Iterator[Any]:
    """A COPY into ``table``'s ``columns`` on the driver's own cursor."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    statement = f"COPY {quote(table.name)} ({names}) FROM STDIN"
    if binary:
        statement += " (FORMAT BINARY)"
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            yield copy
    except dbapi_error as exc:
        # The driver's own cursor bypasses SQLAlchemy: wrap its errors as SQLAlchemy
        # does, so that a value the database refuses (too long for its column) rejects
        # its document, as on the other backends, instead of ending the run.
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from None
