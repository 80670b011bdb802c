"""Database comments: the statements that store the descriptions as comments.

The descriptions themselves live next to the definitions (``comment=`` in
``etl.db.schema``, ``description`` in ``etl.db.views``); migrations call these functions to
store them, on PostgreSQL (``COMMENT ON``, views included) and MariaDB (``COMMENT``
in ``ALTER TABLE``; MariaDB has no view comments). SQLite has no comments: nothing is
emitted. Statements are built without a connection, so ``etl db upgrade --sql``
prints them too.

A migration names the tables and columns it comments (those that exist at its
revision); the text is the current description. To store the description of a new
table or column, a migration calls ``set_comments(op, {"table": ["column", ...]})``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import MetaData, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import (
    CreateColumn,
    DropColumnComment,
    DropTableComment,
    SetColumnComment,
    SetTableComment,
)

from etl.db.schema import metadata
from etl.db.views import BY_NAME


def set_comments(op: Any, columns: Mapping[str, Sequence[str]]) -> None:
    """Store the descriptions of these tables and of these of their columns."""
    for statement in comment_statements(op.get_context().dialect, columns, drop=False):
        op.execute(statement)


def drop_comments(op: Any, columns: Mapping[str, Sequence[str]]) -> None:
    """Remove the comments of these tables and columns (for a downgrade)."""
    for statement in comment_statements(op.get_context().dialect, columns, drop=True):
        op.execute(statement)


def set_view_comments(op: Any, columns: Mapping[str, Sequence[str]]) -> None:
    """PostgreSQL: ``COMMENT ON VIEW`` and on these of its columns; nothing elsewhere."""
    dialect = op.get_context().dialect
    if dialect.name != "postgresql":
        return
    for name, names in columns.items():
        view = BY_NAME[name]
        descriptions = {column.name: column.description for column in view.columns}
        op.execute(_ddl(f"COMMENT ON VIEW {name} IS {_literal(view.description, dialect)}"))
        for column in names:
            literal = _literal(descriptions[column], dialect)
            op.execute(_ddl(f"COMMENT ON COLUMN {name}.{column} IS {literal}"))


def comment_statements(
    dialect: Dialect, columns: Mapping[str, Sequence[str]], *, drop: bool
) -> list[Any]:
    """DDL that sets (or with ``drop``, removes) the comments of tables and columns.

    A table that ``etl.db.schema`` no longer has (a later revision drops it) has no current
    description: it is left out.
    """
    columns = {name: names for name, names in columns.items() if name in metadata.tables}
    if dialect.name == "postgresql":
        statements: list[Any] = []
        for name, names in columns.items():
            table = metadata.tables[name]
            statements.append(DropTableComment(table) if drop else SetTableComment(table))
            for column in names:
                col = table.c[column]
                statements.append(DropColumnComment(col) if drop else SetColumnComment(col))
        return statements
    if dialect.name in ("mysql", "mariadb"):
        return [
            _mysql_alter(metadata.tables[name], names, dialect, drop)
            for name, names in columns.items()
        ]
    return []


def _mysql_alter(table: Table, names: Sequence[str], dialect: Dialect, drop: bool) -> Any:
    """One ``ALTER TABLE`` for a table: MariaDB sets a column comment only by restating
    the column's whole definition (``MODIFY``), taken from ``etl.db.schema``. A change of
    nothing but comments is instant (no table copy)."""
    bare = table.to_metadata(MetaData())  # the definitions without comments
    for column in bare.columns:
        column.comment = None
    clauses = []
    for name in names:
        spec = str(CreateColumn(bare.c[name]).compile(dialect=dialect))
        comment = "" if drop else table.c[name].comment or ""
        clauses.append(f"MODIFY {spec} COMMENT {_literal(comment, dialect)}")
    clauses.append(f"COMMENT = {_literal('' if drop else table.comment or '', dialect)}")
    return _ddl(f"ALTER TABLE {table.name} " + ", ".join(clauses))


def _literal(value: str, dialect: Dialect) -> str:
    """``value`` as an SQL string literal for a statement run as text.

    Not SQLAlchemy's literal rendering: for drivers with ``%`` parameters it doubles
    ``%``, which a statement without parameters keeps. MariaDB reads backslash escapes
    in strings; PostgreSQL (standard_conforming_strings) does not.
    """
    if dialect.name in ("mysql", "mariadb"):
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"


def _ddl(statement: str) -> Any:
    # text(), with colons escaped: a description like "removed: true" is no bind parameter.
    return text(statement.replace(":", r"\:"))
