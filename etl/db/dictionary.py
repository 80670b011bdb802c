"""The data dictionary: tables, views, columns, types, keys and descriptions.

Built from ``etl.db.schema`` (tables) and ``etl.db.views`` (views) alone, so it needs no
database and reads the same on every backend. ``etl schema`` prints it (Markdown, or
JSON with ``--json``); docs/schema.md is its Markdown (a test keeps it current).
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from etl.db.schema import SEARCH_INDEX, UTCDateTime, metadata
from etl.db.views import VIEWS, View

REGENERATE = "etl schema > docs/schema.md"

# How each generic type is stored on each backend (a new kind of type needs a row).
BACKEND_TYPES: dict[str, tuple[str, str, str]] = {
    # generic: (SQLite, PostgreSQL, MariaDB)
    "integer": ("INTEGER", "integer", "int"),
    "bigint": ("INTEGER (64-bit)", "bigint", "bigint"),
    "varchar(n)": ("TEXT (n not enforced)", "varchar(n)", "varchar(n), utf8mb4_bin"),
    "text": ("TEXT", "text", "text, utf8mb4_bin"),
    "boolean": ("0 / 1", "boolean", "tinyint(1): 0 / 1"),
    "timestamp": (
        "TEXT 'YYYY-MM-DD HH:MM:SS.ffffff', UTC",
        "timestamp with time zone",
        "datetime, UTC",
    ),
    "json": ("TEXT holding JSON", "json", "longtext holding JSON (checked by json_valid)"),
}


class ColumnEntry(TypedDict):
    name: str
    type: str
    nullable: bool
    primary_key: bool
    unique: bool
    indexed: bool
    references: str | None
    default: str | None
    description: str


class ForeignKeyEntry(TypedDict):
    columns: list[str]
    references: str
    columns_referenced: list[str]
    on_delete: str | None


class TableEntry(TypedDict):
    name: str
    description: str
    primary_key: list[str]
    unique: list[list[str]]
    indexes: list[list[str]]
    foreign_keys: list[ForeignKeyEntry]
    columns: list[ColumnEntry]


class ViewColumnEntry(TypedDict):
    name: str
    type: str
    description: str


class ViewEntry(TypedDict):
    name: str
    description: str
    columns: list[ViewColumnEntry]


class Dictionary(TypedDict):
    tables: list[TableEntry]
    views: list[ViewEntry]
    search_index: dict[str, str]  # backend -> what the full-text search index is there
    types: dict[str, dict[str, str]]


def type_name(type_: TypeEngine[Any]) -> str:
    """The generic name of a column type: ``integer``, ``varchar(255)``, ``timestamp``..."""
    if isinstance(type_, UTCDateTime):
        return "timestamp"
    if isinstance(type_, BigInteger):
        return "bigint"
    if isinstance(type_, Integer):
        return "integer"
    if isinstance(type_, Boolean):
        return "boolean"
    if isinstance(type_, JSON):
        return "json"
    if isinstance(type_, Text):
        return "text"
    if isinstance(type_, String):
        return f"varchar({type_.length})" if type_.length else "text"
    raise ValueError(f"no generic name for type {type_!r}: add it to etl.db.dictionary")


def _generic(name: str) -> str:
    return "varchar(n)" if name.startswith("varchar(") else name


def _default(column: Column[Any]) -> str | None:
    default = column.server_default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    if isinstance(arg, str):
        return arg
    return "now()" if arg is not None and getattr(arg, "name", "") == "now" else str(arg)


def _table(table: Table) -> TableEntry:
    primary = [c.name for c in table.primary_key.columns]
    unique = [
        [c.name for c in constraint.columns]
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    indexes = sorted([c.name for c in index.columns] for index in table.indexes)
    foreign_keys: list[ForeignKeyEntry] = [
        {
            "columns": [c.name for c in fk.columns],
            "references": fk.referred_table.name,
            "columns_referenced": [e.column.name for e in fk.elements],
            "on_delete": fk.ondelete,
        }
        for fk in sorted(table.foreign_key_constraints, key=lambda fk: [c.name for c in fk.columns])
    ]
    indexed = {names[0] for names in indexes} | {primary[0]} | {u[0] for u in unique}
    columns: list[ColumnEntry] = []
    for column in table.columns:
        target = next(iter(column.foreign_keys), None)
        columns.append(
            {
                "name": column.name,
                "type": type_name(column.type),
                "nullable": bool(column.nullable),
                "primary_key": column.primary_key,
                "unique": [column.name] in unique,
                "indexed": column.name in indexed,
                "references": (
                    f"{target.column.table.name}.{target.column.name}" if target else None
                ),
                "default": _default(column),
                "description": column.comment or "",
            }
        )
    return {
        "name": table.name,
        "description": table.comment or "",
        "primary_key": primary,
        "unique": unique,
        "indexes": indexes,
        "foreign_keys": foreign_keys,
        "columns": columns,
    }


def _view(view: View) -> ViewEntry:
    return {
        "name": view.name,
        "description": view.description,
        "columns": [
            {"name": c.name, "type": type_name(c.type), "description": c.description}
            for c in view.columns
        ],
    }


def dictionary() -> Dictionary:
    """The whole data dictionary as plain data (what ``etl schema --json`` prints)."""
    tables = [_table(table) for table in metadata.tables.values()]
    views = [_view(view) for view in VIEWS]
    used = [c["type"] for t in tables for c in t["columns"]]
    used += [c["type"] for v in views for c in v["columns"]]
    for name in used:
        if _generic(name) not in BACKEND_TYPES:
            raise ValueError(f"type {name} has no row in BACKEND_TYPES")
    return {
        "tables": tables,
        "views": views,
        "search_index": dict(SEARCH_INDEX),
        "types": {
            name: dict(zip(("sqlite", "postgresql", "mariadb"), types, strict=True))
            for name, types in BACKEND_TYPES.items()
        },
    }


def to_json() -> str:
    return json.dumps(dictionary(), indent=2, ensure_ascii=False) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _keys(column: ColumnEntry) -> str:
    keys = []
    if column["primary_key"]:
        keys.append("PK")
    if column["unique"]:
        keys.append("unique")
    if column["references"]:
        keys.append(f"FK → `{column['references']}`")
    if column["indexed"] and not column["primary_key"] and not column["unique"]:
        keys.append("indexed")
    return ", ".join(keys)


def mermaid(data: Dictionary | None = None) -> str:
    """A Mermaid ``erDiagram`` of the tables: columns, keys and foreign keys."""
    data = data or dictionary()
    lines = ["erDiagram"]
    for table in data["tables"]:
        for fk in table["foreign_keys"]:
            column = next(c for c in table["columns"] if c["name"] == fk["columns"][0])
            parent = "|o" if column["nullable"] else "||"
            lines.append(
                f'    "{fk["references"]}" {parent}--o{{ "{table["name"]}" : "{fk["columns"][0]}"'
            )
    for table in data["tables"]:
        lines.append(f'    "{table["name"]}" {{')
        for column in table["columns"]:
            keys = [
                key
                for key, present in (
                    ("PK", column["primary_key"]),
                    ("FK", column["references"] is not None),
                    ("UK", column["unique"]),
                )
                if present
            ]
            suffix = f" {', '.join(keys)}" if keys else ""
            lines.append(f"        {column['type']} {column['name']}{suffix}")
        lines.append("    }")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """The data dictionary as Markdown (what ``etl schema`` prints and docs/schema.md holds)."""
    data = dictionary()
    out = _introduction(data)
    out += _tables_markdown(data["tables"])
    out += _views_markdown(data["views"])
    out += _search_index_markdown(data["search_index"])
    out += _types_markdown(data["types"])
    return "\n".join(out) + "\n"


def _introduction(data: Dictionary) -> list[str]:
    return [
        "# Data dictionary",
        "",
        f"<!-- Generated by `etl schema` from etl/db/schema/ and etl/db/views.py: run "
        f"`{REGENERATE}` after changing them. -->",
        "",
        "The tables and views of the news-etl database, the same on SQLite, PostgreSQL and "
        "MariaDB. The descriptions are also stored in the database as comments on "
        "PostgreSQL (tables, columns, views and view columns: `\\d+` in psql) and MariaDB "
        "(tables and columns; MariaDB has no view comments); SQLite has none. "
        "`etl schema` prints this page, `etl schema --json` the same as JSON.",
        "",
        "A *live full article* is a row of `articles` with `NOT is_stub AND NOT is_removed`: "
        "it has a document of its own and is not removed. `is_removed` has two causes: the "
        "document says `removed: true`, or every source file of the article is gone and "
        "`etl run --prune` kept the row as a tombstone; the view `removed_articles` tells "
        "them apart.",
        "",
        "## Diagram",
        "",
        "```mermaid",
        mermaid(data).rstrip("\n"),
        "```",
        "",
    ]


def _tables_markdown(tables: list[TableEntry]) -> list[str]:
    out = ["## Tables", ""]
    for table in tables:
        out += [f"### `{table['name']}`", "", _cell(table["description"]), ""]
        out += ["| column | type | null | key | description |", "| --- | --- | --- | --- | --- |"]
        for column in table["columns"]:
            default = f" Default `{column['default']}`." if column["default"] else ""
            out.append(
                f"| `{column['name']}` | {column['type']} | "
                f"{'yes' if column['nullable'] else 'no'} | {_keys(column)} | "
                f"{_cell(column['description'])}{default} |"
            )
        out.append("")
        out.append(f"Primary key: ({', '.join(table['primary_key'])}).")
        for fk in table["foreign_keys"]:
            delete = f", ON DELETE {fk['on_delete']}" if fk["on_delete"] else ""
            out.append(
                f"Foreign key: ({', '.join(fk['columns'])}) → "
                f"`{fk['references']}` ({', '.join(fk['columns_referenced'])}){delete}."
            )
        if table["indexes"]:
            listed = "; ".join(f"({', '.join(index)})" for index in table["indexes"])
            out.append(f"Indexes: {listed}.")
        out.append("")
    return out


def _views_markdown(views: list[ViewEntry]) -> list[str]:
    out = [
        "## Views",
        "",
        "Views are created by the migrations on every backend; they are read-only and cost "
        "the load nothing.",
        "",
    ]
    for view in views:
        out += [f"### `{view['name']}`", "", _cell(view["description"]), ""]
        out += ["| column | type | description |", "| --- | --- | --- |"]
        for view_column in view["columns"]:
            out.append(
                f"| `{view_column['name']}` | {view_column['type']} | "
                f"{_cell(view_column['description'])} |"
            )
        out.append("")
    return out


def _search_index_markdown(search_index: dict[str, str]) -> list[str]:
    out = [
        "## Full-text search index",
        "",
        "Over `articles.title` and `articles.excerpt`, created by migration 0009 (SQLite's "
        "made again by 0010: live full articles only, where Datasette and sqlite-utils find "
        "it) and kept current by the database as rows are written; `etl search` uses it (the "
        "README's *Search* shows the SQL). A different object on each backend, so not in the "
        "tables above:",
        "",
        "| backend | index |",
        "| --- | --- |",
    ]
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}
    for backend, description in search_index.items():
        out.append(f"| {names[backend]} | {_cell(description)} |")
    out.append("")
    return out


def _types_markdown(types: dict[str, dict[str, str]]) -> list[str]:
    out = [
        "## Types on each backend",
        "",
        "| type | SQLite | PostgreSQL | MariaDB |",
        "| --- | --- | --- | --- |",
    ]
    for name, on in types.items():
        out.append(f"| {name} | {on['sqlite']} | {on['postgresql']} | {on['mariadb']} |")
    return out
