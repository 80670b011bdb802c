"""Reading and deleting rows by the values of one column: ``IN`` lists, chunked.

Owns how a set of values becomes conditions on each backend: one ``= ANY(array)``
literal per 50,000 values on PostgreSQL, ``IN`` lists of SQL literals (or bound
values) of at most ``IN_CHUNK`` on MariaDB and SQLite; and the lookups built on them.

May import: ``etl.db.locks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table, any_, bindparam, delete, select
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import NullType

from etl.db.locks import is_mysql

IN_CHUNK = 900  # values per IN (...) list: well under every backend's parameter limit

ANY_CHUNK = 50_000  # values per PostgreSQL array parameter: bounds one statement's size


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def in_conditions(
    conn: Connection, column: ColumnElement[Any], values: Iterable[Any]
) -> Iterator[Any]:
    """``column IN (values)`` as one condition per chunk of the sorted, distinct values.

    PostgreSQL gets ``column = ANY(:array)`` instead: one parameter however many
    values, so the statement text never changes (psycopg re-parsed every
    900-placeholder statement, a noticeable part of each batch) and one statement
    covers a whole batch. PostgreSQL plans ``IN (...)`` as ``= ANY`` anyway.

    MariaDB and SQLite get their lists of integers or strings as SQL literals: bound,
    each value went through SQLAlchemy's expanding parameters and (MariaDB) PyMySQL's
    escaping in Python, about 100,000 of them under the writer lock in a full load.
    """
    wanted = sorted(set(values))
    if conn.dialect.name != "postgresql":
        literals = _sql_literals(conn, wanted)
        for chunk in chunks(wanted):
            if literals is None:
                yield column.in_(chunk)
            else:
                listed = "(" + ",".join(literals(chunk)) + ")"
                yield column.op("IN")(_Literals(listed, is_literal=True))
        return
    from sqlalchemy.dialects.postgresql import ARRAY

    literal = _array_literal(wanted)
    for chunk in chunks(wanted, ANY_CHUNK):
        if literal is None:
            yield column == any_(bindparam(None, list(chunk), type_=ARRAY(column.type)))
        else:
            # No cast: the server types the parameter from the column (psycopg sends a
            # str as "unknown") and parses it once; a CAST would be an expression that a
            # sequential scan evaluates again for every row.
            yield column == any_(bindparam(None, literal(chunk), type_=NullType()))


def _array_literal(values: Sequence[Any]) -> Callable[[Sequence[Any]], str] | None:
    """How to write ``values`` (all str or all int) as one PostgreSQL array literal,
    else None. psycopg adapts a list element by element in Python, which was most of
    the client's work in the lookups under the writer lock; a str of the array's text,
    typed and parsed by the server, is built in a few C-level string operations."""
    if all(value.__class__ is int for value in values):
        return lambda chunk: "{" + ",".join(map(str, chunk)) + "}"
    if all(value.__class__ is str for value in values):
        return _text_array
    return None


def _text_array(values: Sequence[str]) -> str:
    # Every element double-quoted, its backslashes and double quotes escaped: the
    # array_in rules, under which no other character is special inside quotes.
    quoted = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + quoted + '"}'


class _Literals(ColumnClause[Any]):
    """A list of SQL literals. Not cached: a statement holding one is never run twice,
    and each would keep its text (up to ~100 KB) in the engine's compiled-statement
    cache (500 statements a worker)."""

    inherit_cache = False


def _sql_literals(
    conn: Connection, values: Sequence[Any]
) -> Callable[[Sequence[Any]], Iterable[str]] | None:
    """How to write each of ``values`` (all int or all str) as an SQL literal, else None.

    MariaDB's strings are the driver's own literals, which it would have put in the
    statement for a bound value anyway (PyMySQL binds on the client), NO_BACKSLASH_ESCAPES
    included. SQLite's doubles its quotes, the only character special inside one;
    a NUL would end the statement's text, so a string holding one is bound instead.
    """
    if all(value.__class__ is int for value in values):
        return lambda chunk: map(str, chunk)
    if not all(value.__class__ is str for value in values):
        return None
    if is_mysql(conn):
        literal = mysql_literal(conn)
        return lambda chunk: map(literal, chunk)
    if conn.dialect.name != "sqlite" or any("\0" in value for value in values):
        return None
    return lambda chunk: ("'" + value.replace("'", "''") + "'" for value in chunk)


def mysql_literal(conn: Connection) -> Callable[[Any], str]:
    """The SQL literal PyMySQL makes of a value on ``conn``: its own ``escape``, with
    a string that holds no character it would escape quoted at once. The driver
    escapes every string with ``str.translate``, a dictionary lookup per character,
    on a full load's link snippets, article values and URLs, nearly all of them plain."""
    escape = conn.connection.driver_connection.escape  # type: ignore[union-attr]

    def literal(value: Any) -> str:
        # The characters PyMySQL's escape changes, in either mode (NO_BACKSLASH_ESCAPES
        # doubles the quote; otherwise each gets a backslash): `in` tests, each in C.
        if value.__class__ is str and not (
            "'" in value
            or "\\" in value
            or '"' in value
            or "\n" in value
            or "\r" in value
            or "\0" in value
            or "\x1a" in value
        ):
            return "'" + value + "'"
        return escape(value)  # type: ignore[no-any-return]

    return literal


def ids_by(conn: Connection, table: Table, key: str, values: Iterable[Any]) -> dict[Any, int]:
    found: dict[Any, int] = {}
    for condition in in_conditions(conn, table.c[key], values):
        for row in conn.execute(select(table.c[key], table.c.id).where(condition)):
            found[row[0]] = row[1]
    return found


def delete_where_in(conn: Connection, table: Table, column: str, ids: Iterable[int]) -> None:
    for condition in in_conditions(conn, table.c[column], ids):
        conn.execute(delete(table).where(condition))
