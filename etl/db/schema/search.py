"""The full-text search index's objects, which the tables do not model.

Owns their names (what Alembic's autogenerate leaves out, via ``include_name``) and what
the index is on each backend, for the data dictionary.
"""

from __future__ import annotations

from etl.db.schema.news import MARIADB_URL_LOOKUPS

# Full-text search over articles' title and excerpt (migration 0009, SQLite's made again by
# 0010; etl/query/fulltext.py queries it). Each backend has its own kind of object, so none is
# modelled as a table: Alembic's autogenerate (env.py, and the test that proves the
# migrations match the tables) leaves out exactly these names, via include_name().
SEARCH_TABLES = frozenset(
    {
        # SQLite: the FTS5 table (external content: it indexes articles, stores no copy)
        # and the shadow tables FTS5 keeps its index in.
        "articles_fts",
        "articles_fts_data",
        "articles_fts_idx",
        "articles_fts_docsize",
        "articles_fts_config",
    }
)
SEARCH_INDEXES = frozenset(
    {
        "ix_articles_search",  # PostgreSQL: GIN over a tsvector expression of articles
        "ft_articles_search",  # MariaDB: FULLTEXT (search_title, search_excerpt)
        "ft_articles_search_title",  # MariaDB: FULLTEXT (search_title): title matches first
    }
)
# SQLite: the triggers on articles that keep articles_fts current.
SEARCH_TRIGGERS = frozenset({"articles_fts_insert", "articles_fts_update", "articles_fts_delete"})
# MariaDB: invisible generated columns of articles, title and excerpt in lowercase, that
# the FULLTEXT indexes are on (the binary collation would make them case-sensitive).
SEARCH_COLUMNS = frozenset({"search_title", "search_excerpt"})
# What the search index is on each backend (the data dictionary prints it).
SEARCH_INDEX: dict[str, str] = {
    "sqlite": "FTS5 table `articles_fts(title, excerpt)` over the live full articles only "
    '(not stubs, not removed), with `content="articles"`, `content_rowid="id"` (rowid = '
    "articles.id; the spelling Datasette and sqlite-utils look for) and `rank` = "
    "`bm25(10.0, 1.0)` (a title match first), kept in sync by the triggers "
    "`articles_fts_insert`, `articles_fts_update` (only when title, excerpt, is_stub or "
    "is_removed change) and `articles_fts_delete` on articles; tokenizer `unicode61` (case "
    "and diacritics folded).",
    "postgresql": "GIN index `ix_articles_search` on articles over the expression "
    "`setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(excerpt, '')), 'B')` (English stemming "
    "and stop words); a query uses it when it repeats the expression exactly.",
    "mariadb": "InnoDB FULLTEXT indexes `ft_articles_search (search_title, search_excerpt)` "
    "and `ft_articles_search_title (search_title)` on articles, over two invisible stored "
    "generated columns (not in `SELECT *`): `search_title` = `LOWER(title)`, "
    "`search_excerpt` = `LOWER(excerpt)`. Their collation is binary: search in lowercase. "
    "Words shorter than `innodb_ft_min_token_size` (3) and InnoDB's stop words are not "
    "indexed.",
}


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: everything but the objects the tables do not
    model: the search index's, and MariaDB's URL lookup indexes (``etl.db.schema.news``)."""
    if type_ == "table":
        return name not in SEARCH_TABLES
    if type_ == "index":
        return name not in SEARCH_INDEXES and name not in MARIADB_URL_LOOKUPS
    if type_ == "column":
        return name not in SEARCH_COLUMNS
    return True
