"""Datasette's metadata file for a SQLite database: ``etl schema --datasette-metadata``.

SQLite stores no comments, so the data dictionary's descriptions (``etl.db.dictionary``,
from ``etl.db.schema`` and ``etl.db.views``) reach a Datasette user only through the metadata
file Datasette reads (``datasette etl.sqlite3 --metadata metadata.json``): a description
for every table, view and column, the full-text index of ``articles`` (migration 0010:
``fts_table``, ``fts_pk``, ``searchmode``), facets and the columns that label a row
where another table's foreign key points at it.

The format is Datasette 0.x's ``metadata.json`` (0.65); Datasette 1.0 moved ``facets``,
``fts_table``, ``label_column``, ``sort_desc`` and ``hidden`` to its ``datasette.yaml``.
Tables and views are keyed under the database's name, which Datasette takes from the
file name without its extension (``etl`` for ``etl.sqlite3``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from etl.db.dictionary import Dictionary, dictionary
from etl.db.schema import SEARCH_INDEX

DEFAULT_DATABASE_NAME = "etl"  # Datasette's name for the default etl.sqlite3

TITLE = "news-etl"
DESCRIPTION = (
    "News articles loaded from Jekyll sites by news-etl. A live full article is a row of "
    "articles with is_stub = 0 and is_removed = 0 (the view article_overview lists them "
    "with provider and topics); stubs are articles known only from related links "
    "(stubs_pending), removed ones are in removed_articles. Searching articles finds "
    "live full articles only, as `etl search` does. Every table, view and column has a "
    "description: `etl schema` prints the data dictionary."
)

# Where another table's foreign key points at a row, Datasette shows this column.
LABEL_COLUMNS: dict[str, str] = {
    "sources": "name",
    "providers": "name",
    "topics": "name",
    "articles": "title",
    "images": "url",
}

# Facets Datasette shows above a table or view: provider, topics and source first.
FACETS: dict[str, list[str]] = {
    "articles": ["provider_id", "is_stub", "is_removed"],
    "article_overview": ["provider_name", "sources"],
    "article_topics": ["topic_id"],
    "topic_monthly_counts": ["topic_name"],
    "most_linked_articles": ["is_stub", "provider_name"],
    "stubs_pending": ["provider_name"],
    "removed_articles": ["removal"],
    "source_files": ["source_id"],
    "source_topics": ["source_id"],
    "source_providers": ["source_id"],
    "etl_runs": ["status"],
    "rejected_documents": ["run_id"],
    "article_changes": ["op"],
}

# Newest first where a table is a history.
SORT_DESC: dict[str, str] = {
    "articles": "published_at",
    "article_overview": "published_at",
    "etl_runs": "id",
    "article_changes": "cursor",
}

# The search index of articles: Datasette's ``_search=`` and its search box.
SEARCH: dict[str, Any] = {
    "fts_table": "articles_fts",
    "fts_pk": "id",
    # Each word is quoted (FTS5 syntax is not syntax), all required: as `etl search`.
    "searchmode": "escaped",
}

# Tables of the database that are not in the dictionary (not modelled by etl.db.schema).
OTHER_TABLES: dict[str, dict[str, Any]] = {
    "articles_fts": {
        "description": "The full-text search index of articles (SQLite): " + SEARCH_INDEX["sqlite"],
        "columns": {
            "title": "The article's title (articles.title), indexed.",
            "excerpt": "The article's excerpt (articles.excerpt), indexed.",
        },
        "hidden": True,
    },
    "alembic_version": {
        "description": "The schema's revision (Alembic): what `etl db current` prints.",
        "columns": {"version_num": "The current revision, e.g. 0010."},
    },
    "sqlite_sequence": {
        "description": "SQLite's own: the largest id yet of each AUTOINCREMENT table "
        "(ids are never reused).",
        "columns": {"name": "The table.", "seq": "Its largest id yet."},
    },
}


def _entry(name: str, description: str, columns: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"description": description, "columns": columns}
    if name in LABEL_COLUMNS:
        entry["label_column"] = LABEL_COLUMNS[name]
    if name in FACETS:
        entry["facets"] = FACETS[name]
    if name in SORT_DESC:
        entry["sort_desc"] = SORT_DESC[name]
    if name == "articles":
        entry.update(SEARCH)
    return entry


def metadata(database_name: str = DEFAULT_DATABASE_NAME, data: Dictionary | None = None) -> Any:
    """Datasette's metadata (``metadata.json``) for the database named ``database_name``."""
    data = data or dictionary()
    tables: dict[str, Any] = {}
    for table in data["tables"]:
        columns = {column["name"]: column["description"] for column in table["columns"]}
        tables[table["name"]] = _entry(table["name"], table["description"], columns)
    for view in data["views"]:
        columns = {column["name"]: column["description"] for column in view["columns"]}
        tables[view["name"]] = _entry(view["name"], view["description"], columns)
    tables.update(OTHER_TABLES)
    # A copy: Datasette changes the metadata it is given, and the constants above are in it.
    return copy.deepcopy(
        {
            "title": TITLE,
            "description": DESCRIPTION,
            "databases": {database_name: {"description": DESCRIPTION, "tables": tables}},
        }
    )


def to_json(database_name: str = DEFAULT_DATABASE_NAME) -> str:
    return json.dumps(metadata(database_name), indent=2, ensure_ascii=False) + "\n"
