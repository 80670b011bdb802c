"""The analyst views: their columns, descriptions and SQL on each backend.

This module is the current definition of every view, as ``etl.db.schema`` is of every
table: ``etl schema`` and docs/schema.md describe the views from it, and a test runs
each SELECT here against the view the migrations created and expects the same rows.
Views are not tables: they are not in ``etl.db.schema.metadata``, so Alembic's
autogenerate neither creates nor compares them. The migrations create them with
literal SQL frozen at their revision (``etl/migrations/versions/0007_analyst_views.py``).

To add a column to a view:

1. add a ``ViewColumn`` (name, type, description, SQL expression) at the END of the
   view's column list (PostgreSQL's ``CREATE OR REPLACE VIEW`` only appends columns);
2. add a migration that replaces the view: ``replace_statements(name, dialect)`` gives
   its statements on each backend (paste them, so the migration stays frozen), and its
   downgrade puts back the previous revision's SQL;
3. regenerate docs/schema.md (``etl schema > docs/schema.md``).

Every view is over live data only where it says so: *live full article* means
``NOT is_stub AND NOT is_removed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, String, Text
from sqlalchemy.types import TypeEngine

from etl.db.schema import UTCDateTime

DIALECTS = ("sqlite", "postgresql", "mysql")

# An expression the same on every backend, or one per dialect name ("mysql" is MariaDB).
Expression = str | Mapping[str, str]


@dataclass(frozen=True)
class ViewColumn:
    name: str
    type: TypeEngine[Any]
    description: str
    expression: Expression

    def sql(self, dialect: str) -> str:
        if isinstance(self.expression, str):
            return self.expression
        return self.expression[dialect]


@dataclass(frozen=True)
class View:
    name: str
    description: str
    columns: tuple[ViewColumn, ...]
    # FROM, WHERE and GROUP BY: the same on every backend, or one per dialect name.
    rest: Expression

    def select(self, dialect: str) -> str:
        """The view's SELECT on ``dialect`` (``sqlite``, ``postgresql`` or ``mysql``)."""
        dialect = _dialect(dialect)
        columns = ",\n       ".join(f"{c.sql(dialect)} AS {c.name}" for c in self.columns)
        rest = self.rest if isinstance(self.rest, str) else self.rest[dialect]
        return f"SELECT {columns}\n{rest}"


def _dialect(name: str) -> str:
    name = "mysql" if name == "mariadb" else name
    if name not in DIALECTS:
        raise ValueError(f"no view SQL for dialect {name!r}")
    return name


LIVE = "NOT a.is_stub AND NOT a.is_removed"

# Topic names of article ``a`` in document order, joined by ", " (NULL without topics).
# SQLite before 3.44 has no ORDER BY inside group_concat: it concatenates the rows of
# an ordered subquery in the order the subquery yields them (SQLite does not flatten a
# subquery with ORDER BY into an aggregate; tests check the order on the corpus).
TOPIC_NAMES: Mapping[str, str] = {
    "sqlite": (
        "(SELECT group_concat(o.name, ', ') FROM "
        "(SELECT t.name AS name FROM article_topics atp JOIN topics t ON t.id = atp.topic_id "
        "WHERE atp.article_id = a.id ORDER BY atp.position) o)"
    ),
    "postgresql": (
        "(SELECT string_agg(t.name, ', ' ORDER BY atp.position) "
        "FROM article_topics atp JOIN topics t ON t.id = atp.topic_id "
        "WHERE atp.article_id = a.id)"
    ),
    "mysql": (
        "(SELECT GROUP_CONCAT(t.name ORDER BY atp.position SEPARATOR ', ') "
        "FROM article_topics atp JOIN topics t ON t.id = atp.topic_id "
        "WHERE atp.article_id = a.id)"
    ),
}

# The names of the sources with a file for article ``a``, in name order.
SOURCE_NAMES: Mapping[str, str] = {
    "sqlite": (
        "(SELECT group_concat(o.name, ', ') FROM "
        "(SELECT DISTINCT s.name AS name FROM source_files sf "
        "JOIN sources s ON s.id = sf.source_id WHERE sf.article_id = a.id ORDER BY s.name) o)"
    ),
    "postgresql": (
        "(SELECT string_agg(DISTINCT s.name, ', ' ORDER BY s.name) "
        "FROM source_files sf JOIN sources s ON s.id = sf.source_id "
        "WHERE sf.article_id = a.id)"
    ),
    "mysql": (
        "(SELECT GROUP_CONCAT(DISTINCT s.name ORDER BY s.name SEPARATOR ', ') "
        "FROM source_files sf JOIN sources s ON s.id = sf.source_id "
        "WHERE sf.article_id = a.id)"
    ),
}

# Links to article ``a`` from live full articles.
LINKED_FROM = (
    "(SELECT count(*) FROM related_articles r JOIN articles src ON src.id = r.article_id "
    "WHERE r.related_article_id = a.id AND NOT src.is_stub AND NOT src.is_removed)"
)

# 'YYYY-MM' of a.published_at in UTC (SQLite and MariaDB store UTC without a zone).
# No '%' in view SQL: Alembic's offline SQL (etl db upgrade --sql) would print it doubled
# for MariaDB, so DATE_FORMAT(x, '%Y-%m') would become a literal '%Y-%m' there.
MONTH: Mapping[str, str] = {
    "sqlite": "substr(a.published_at, 1, 7)",
    "postgresql": "to_char(a.published_at AT TIME ZONE 'UTC', 'YYYY-MM')",
    "mysql": "LEFT(CAST(a.published_at AS CHAR), 7)",
}

_ID = ViewColumn("article_id", Integer(), "The article (articles.id).", "a.id")
_URL = ViewColumn("url", Text(), "Canonical URL (articles.url).", "a.url")
_TITLE = ViewColumn("title", Text(), "Title (articles.title).", "a.title")
_PUBLISHED = ViewColumn(
    "published_at",
    UTCDateTime(),
    "Publication time, UTC (articles.published_at).",
    "a.published_at",
)
_DOMAIN = ViewColumn(
    "provider_domain", String(255), "The publisher's domain (providers.domain).", "p.domain"
)
_PROVIDER = ViewColumn("provider_name", Text(), "The publisher's name (providers.name).", "p.name")

article_overview = View(
    "article_overview",
    "One row per live full article (not a stub, not removed): the article with its "
    "provider, its topics in document order and counts of its links and images.",
    (
        _ID,
        _URL,
        _TITLE,
        ViewColumn("excerpt", Text(), "Summary (articles.excerpt).", "a.excerpt"),
        _PUBLISHED,
        _DOMAIN,
        _PROVIDER,
        ViewColumn(
            "topics",
            Text(),
            "Topic names in the document's order, joined by ', ' (NULL without topics).",
            TOPIC_NAMES,
        ),
        ViewColumn(
            "related_count",
            BigInteger(),
            "Links the article's document lists (related_articles from it).",
            "(SELECT count(*) FROM related_articles r WHERE r.article_id = a.id)",
        ),
        ViewColumn(
            "linked_from_count",
            BigInteger(),
            "Live full articles whose documents link to this one.",
            LINKED_FROM,
        ),
        ViewColumn(
            "image_count",
            BigInteger(),
            "Images of the article (article_images).",
            "(SELECT count(*) FROM article_images ai WHERE ai.article_id = a.id)",
        ),
        ViewColumn(
            "sources",
            Text(),
            "The sources (sites) that have a file with the article's URL, by name, joined by ', '.",
            SOURCE_NAMES,
        ),
    ),
    f"FROM articles a\nLEFT JOIN providers p ON p.id = a.provider_id\nWHERE {LIVE}",
)

provider_article_counts = View(
    "provider_article_counts",
    "One row per provider with at least one live full article: how many, and the first "
    "and last publication times.",
    (
        ViewColumn("provider_id", Integer(), "The provider (providers.id).", "p.id"),
        _DOMAIN,
        _PROVIDER,
        ViewColumn("article_count", BigInteger(), "Its live full articles.", "count(*)"),
        ViewColumn(
            "first_published_at",
            UTCDateTime(),
            "Earliest published_at of those articles (UTC).",
            "min(a.published_at)",
        ),
        ViewColumn(
            "last_published_at",
            UTCDateTime(),
            "Latest published_at of those articles (UTC).",
            "max(a.published_at)",
        ),
    ),
    f"FROM providers p\nJOIN articles a ON a.provider_id = p.id\nWHERE {LIVE}\n"
    "GROUP BY p.id, p.domain, p.name",
)

topic_monthly_counts = View(
    "topic_monthly_counts",
    "Live full articles per topic and calendar month (UTC) of publication; months without "
    "articles have no row, articles without published_at are not counted.",
    (
        ViewColumn("topic_id", Integer(), "The topic (topics.id).", "t.id"),
        ViewColumn("topic_slug", String(255), "The topic's slug (topics.slug).", "t.slug"),
        ViewColumn("topic_name", Text(), "The topic's name (topics.name).", "t.name"),
        ViewColumn("month", String(7), "Month of publication, 'YYYY-MM' (UTC).", MONTH),
        ViewColumn("article_count", BigInteger(), "Live full articles.", "count(*)"),
    ),
    {
        dialect: "FROM topics t\nJOIN article_topics atp ON atp.topic_id = t.id\n"
        "JOIN articles a ON a.id = atp.article_id\n"
        f"WHERE {LIVE} AND a.published_at IS NOT NULL\n"
        f"GROUP BY t.id, t.slug, t.name, {MONTH[dialect]}"
        for dialect in DIALECTS
    },
)

most_linked_articles = View(
    "most_linked_articles",
    "One row per article (full or stub, not removed) that live full articles link to, "
    "with how many do: ORDER BY linked_from_count DESC for the most linked.",
    (
        _ID,
        _URL,
        _TITLE,
        ViewColumn(
            "is_stub",
            Boolean(),
            "True when the article has no document of its own yet.",
            "a.is_stub",
        ),
        _PUBLISHED,
        _PROVIDER,
        ViewColumn(
            "linked_from_count",
            BigInteger(),
            "Live full articles whose documents link to it.",
            "l.linked_from_count",
        ),
    ),
    "FROM (SELECT r.related_article_id AS article_id, count(*) AS linked_from_count\n"
    "      FROM related_articles r JOIN articles src ON src.id = r.article_id\n"
    "      WHERE NOT src.is_stub AND NOT src.is_removed\n"
    "      GROUP BY r.related_article_id) l\n"
    "JOIN articles a ON a.id = l.article_id\n"
    "LEFT JOIN providers p ON p.id = a.provider_id\n"
    "WHERE NOT a.is_removed",
)

stubs_pending = View(
    "stubs_pending",
    "Stubs waiting for their own document: articles known only from related-article "
    "snippets, with what the snippet says and how many articles link to them.",
    (
        _ID,
        _URL,
        ViewColumn("title", Text(), "Title from the snippet.", "a.title"),
        ViewColumn(
            "published_at",
            UTCDateTime(),
            "Publication time from the snippet (UTC).",
            "a.published_at",
        ),
        ViewColumn("provider_domain", String(255), "Provider domain from the snippet.", "p.domain"),
        ViewColumn("provider_name", Text(), "Provider name from the snippet.", "p.name"),
        ViewColumn(
            "linked_from_count",
            BigInteger(),
            "Articles whose documents link to it (removed ones included).",
            "(SELECT count(*) FROM related_articles r WHERE r.related_article_id = a.id)",
        ),
    ),
    "FROM articles a\nLEFT JOIN providers p ON p.id = a.provider_id\nWHERE a.is_stub",
)

removed_articles = View(
    "removed_articles",
    "One row per removed article (is_removed), with why: 'document' when its document "
    "says `removed: true` (a source file still points to it), 'pruned' when every source "
    "file of the article is gone (a tombstone kept by `etl run --prune`).",
    (
        _ID,
        _URL,
        _TITLE,
        _PUBLISHED,
        _PROVIDER,
        ViewColumn(
            "removal",
            String(8),
            "'document' (the document says removed: true) or 'pruned' (no source file left).",
            "CASE WHEN EXISTS (SELECT 1 FROM source_files s WHERE s.article_id = a.id) "
            "THEN 'document' ELSE 'pruned' END",
        ),
        ViewColumn(
            "updated_at",
            UTCDateTime(),
            "When the article last changed, e.g. was marked removed (UTC).",
            "a.updated_at",
        ),
    ),
    "FROM articles a\nLEFT JOIN providers p ON p.id = a.provider_id\nWHERE a.is_removed",
)

VIEWS: tuple[View, ...] = (
    article_overview,
    provider_article_counts,
    topic_monthly_counts,
    most_linked_articles,
    stubs_pending,
    removed_articles,
)
BY_NAME: Mapping[str, View] = {view.name: view for view in VIEWS}


def create_statement(name: str, dialect: str) -> str:
    """``CREATE VIEW`` for the view as this module defines it, on ``dialect``."""
    return f"CREATE VIEW {name} AS\n{BY_NAME[name].select(dialect)}"


def replace_statements(name: str, dialect: str) -> list[str]:
    """Statements that replace the view in place (for a migration that changes it).

    SQLite has no ``CREATE OR REPLACE VIEW``: the view is dropped and created again.
    """
    dialect = _dialect(dialect)
    create = create_statement(name, dialect)
    if dialect == "sqlite":
        return [f"DROP VIEW IF EXISTS {name}", create]
    return [create.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)]
