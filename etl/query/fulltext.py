"""Full-text search over live full articles' titles and excerpts: ``etl search``, ``etl.search()``.

Owns the search queries, one per backend, over the index migration 0009 creates and
the database maintains as the load writes (FTS5 table and triggers on SQLite, a GIN
expression index on PostgreSQL, InnoDB FULLTEXT indexes on MariaDB): no rebuild step,
an edited, removed or deleted article is found or not on the next query. SQLite's
FTS5 table (migration 0010) holds the live full articles only, so Datasette's
``_search=`` and ``sqlite-utils search``, which search the whole table, find what
``etl search`` finds; the query here still asks for live rows.

A query is a list of words: every word must match (in the backend's own tokenizing:
PostgreSQL stems English words and drops stop words; SQLite folds case and
diacritics; MariaDB ignores words shorter than 3 characters and its stop words).
Anything else (quotes, ``*``, ``-``, ``:``, parentheses, ``AND``/``OR`` as operators)
is not syntax here: words are taken out of the text and passed on as plain words,
so no query is an error. Results are live full articles only (not stubs, not
removed), best first: title matches rank above excerpt matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from etl.db import database
from etl.db.database import ConfigurationError
from etl.db.schema import UTCDateTime

DEFAULT_LIMIT = 20

# The document PostgreSQL's index ix_articles_search is built on (migration 0009): the
# planner uses the index only for this exact expression.
POSTGRESQL_DOCUMENT = (
    "setweight(to_tsvector('english', coalesce(a.title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(a.excerpt, '')), 'B')"
)

# InnoDB's default stop words (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD) and its
# default innodb_ft_min_token_size: such words are not in a FULLTEXT index, so a search
# that requires one finds nothing. They are left out of the query instead.
MARIADB_STOPWORDS = frozenset(
    {
        *("a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for"),
        *("from", "how", "i", "in", "is", "it", "la", "of", "on", "or", "that", "the"),
        *("this", "to", "und", "was", "what", "when", "where", "who", "will", "with", "www"),
    }
)
MARIADB_MIN_WORD = 3

_WORD = re.compile(r"\w+")
_LIVE = "NOT a.is_stub AND NOT a.is_removed"
_COLUMNS = "a.id, a.url, a.title, a.excerpt, a.published_at AS published_at, p.name"
# Ties: the newest first (an unknown date last on every backend), then the oldest row.
_ORDER = "ORDER BY score DESC, a.published_at IS NULL, a.published_at DESC, a.id"


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One live full article that matches a search. ``rank``: higher is more relevant;
    comparable only between the results of one search (each backend scores its own way)."""

    article_id: int
    url: str
    title: str | None
    excerpt: str | None
    published_at: datetime | None  # UTC
    provider_name: str | None
    rank: float

    def to_dict(self) -> dict[str, Any]:
        """The result as ``etl search --json`` prints it (``published_at`` in ISO 8601, UTC)."""
        return {
            "url": self.url,
            "title": self.title,
            "excerpt": self.excerpt,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "provider_name": self.provider_name,
            "article_id": self.article_id,
            "rank": self.rank,
        }


def words(query: str) -> list[str]:
    """The words of a query, in order, each once (case-insensitively)."""
    found: dict[str, str] = {}
    for word in _WORD.findall(query):
        found.setdefault(word.casefold(), word)
    return list(found.values())


def search(
    query: str,
    database_url: str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    engine: Engine | None = None,
    connect_timeout: float | None = database.DEFAULT_CONNECT_TIMEOUT,
) -> list[SearchResult]:
    """The live full articles whose title and excerpt together contain every word of
    ``query``, most relevant first, at most ``limit``.

    Raises ``ConfigurationError`` for an empty query or a limit below 1, and
    ``NotAnEtlDatabase`` (a ``ConfigurationError``) for a database without the schema
    or the search index (run ``etl db upgrade``); SQLAlchemy errors when the database
    cannot be reached.
    """
    if not query.strip():
        raise ConfigurationError("the search query is empty: give one or more words")
    if limit < 1:
        raise ConfigurationError(f"the limit must be at least 1, not {limit}")
    with (
        database.engine_for(  # existing: searching creates no SQLite file
            database_url, engine, connect_timeout=connect_timeout, read_only=True, existing=True
        ) as reader,
        reader.connect() as conn,
    ):
        require_search_index(conn)
        results = _search(conn, words(query), limit)
        conn.rollback()
        return results


def require_search_index(conn: Connection) -> None:
    """Raise ``NotAnEtlDatabase`` unless the schema and the search index exist."""
    database.require_etl_schema(conn)
    backend = conn.dialect.name
    if backend == "postgresql":
        found = conn.execute(text("SELECT to_regclass('ix_articles_search')")).scalar()
    elif backend in ("mysql", "mariadb"):
        found = conn.execute(
            text(
                "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() "
                "AND table_name = 'articles' AND index_name = 'ft_articles_search' LIMIT 1"
            )
        ).scalar()
    else:
        found = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE name = 'articles_fts'")
        ).scalar()
    if found is None:
        raise database.NotAnEtlDatabase(
            f"database {database.redact(conn.engine.url)} has no search index "
            "(schema older than revision 0009): run `etl db upgrade`"
        )


def _search(conn: Connection, terms: list[str], limit: int) -> list[SearchResult]:
    backend = conn.dialect.name
    if backend == "postgresql":
        sql, params = _postgresql(terms)
    elif backend in ("mysql", "mariadb"):
        sql, params = _mariadb(terms)
    else:
        sql, params = _sqlite(terms)
    if sql is None:
        return []
    statement = text(f"{sql}\n{_ORDER}\nLIMIT :limit").columns(published_at=UTCDateTime())
    rows = conn.execute(statement, {**params, "limit": limit})
    return [
        SearchResult(
            article_id=row[0],
            url=row[1],
            title=row[2],
            excerpt=row[3],
            published_at=row[4],
            provider_name=row[5],
            rank=float(row[6]),
        )
        for row in rows
    ]


def _sqlite(terms: list[str]) -> tuple[str | None, dict[str, Any]]:
    """FTS5: each word as a string (no syntax), all required; bm25 with title weighted 10x."""
    if not terms:
        return None, {}
    match = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
    return (
        f"SELECT {_COLUMNS}, -bm25(articles_fts, 10.0, 1.0) AS score\n"
        "FROM articles_fts\n"
        "JOIN articles a ON a.id = articles_fts.rowid\n"
        "LEFT JOIN providers p ON p.id = a.provider_id\n"
        f"WHERE articles_fts MATCH :match AND {_LIVE}"
    ), {"match": match}


def _postgresql(terms: list[str]) -> tuple[str | None, dict[str, Any]]:
    """plainto_tsquery: the words ANDed, stemmed, stop words dropped; ts_rank with the
    title's weight A over the excerpt's B."""
    if not terms:
        return None, {}
    return (
        f"SELECT {_COLUMNS}, ts_rank({POSTGRESQL_DOCUMENT}, q.query) AS score\n"
        "FROM articles a\n"
        "CROSS JOIN plainto_tsquery('english', :words) AS q(query)\n"
        "LEFT JOIN providers p ON p.id = a.provider_id\n"
        f"WHERE ({POSTGRESQL_DOCUMENT}) @@ q.query AND {_LIVE}"
    ), {"words": " ".join(terms)}


def _mariadb(terms: list[str]) -> tuple[str | None, dict[str, Any]]:
    """BOOLEAN MODE with every indexed word required (+word), in lowercase as the indexed
    columns (search_title, search_excerpt: binary collation). Score: the match over title
    and excerpt plus twice the title's own."""
    kept = [
        term.lower()
        for term in terms
        if len(term) >= MARIADB_MIN_WORD and term.lower() not in MARIADB_STOPWORDS
    ]
    if not kept:
        return None, {}
    return (
        f"SELECT {_COLUMNS}, "
        "MATCH (a.search_title, a.search_excerpt) AGAINST (:required IN BOOLEAN MODE) "
        "+ 2 * MATCH (a.search_title) AGAINST (:any IN NATURAL LANGUAGE MODE) AS score\n"
        "FROM articles a\n"
        "LEFT JOIN providers p ON p.id = a.provider_id\n"
        "WHERE MATCH (a.search_title, a.search_excerpt) AGAINST (:required IN BOOLEAN MODE) "
        f"AND {_LIVE}"
    ), {"required": " ".join(f"+{term}" for term in kept), "any": " ".join(kept)}
