"""Analyst views, and the descriptions of tables, columns and views as database comments.

Views: article_overview, provider_article_counts, topic_monthly_counts,
most_linked_articles, stubs_pending, removed_articles. Their SQL is frozen here as of
this revision (etl/db/views.py holds the current definitions; a test checks the views
this chain creates return what those define). Comments: COMMENT ON on PostgreSQL
(views included), COMMENT on MariaDB (which has no view comments), none on SQLite;
their text is the descriptions in etl.db.schema and etl.db.views.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:00:00
"""

# ruff: noqa: E501 - the frozen view SQL keeps its lines as etl/db/views.py renders them

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.db.comments import drop_comments, set_comments, set_view_comments

revision: str = "0007"
down_revision: str | None = "0006"
# Its downgrade drops only what is derived from other rows (etl db downgrade asks no --yes).
DOWNGRADE_KEEPS_DATA = True
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables and columns that exist at this revision: their descriptions are stored.
# fmt: off - frozen data, one table per line
COLUMNS: dict[str, list[str]] = {
    "article_changes": ["cursor", "op", "article_id", "url", "is_stub", "run_id", "committed_at"],
    "change_feed_state": ["id", "compacted_through", "compacted_at"],
    "etl_runs": [
        "id",
        "started_at",
        "finished_at",
        "status",
        "arguments",
        "files_seen",
        "files_skipped_unchanged",
        "articles_inserted",
        "articles_updated",
        "articles_unchanged",
        "articles_removed",
        "stubs_created",
        "stubs_deleted",
        "links_written",
        "documents_rejected",
        "warnings",
        "duplicates",
        "links_added",
        "links_removed",
        "error",
    ],
    "images": ["id", "url", "width", "height", "created_at", "updated_at"],
    "providers": ["id", "domain", "name", "named_by_document", "created_at", "updated_at"],
    "sources": ["id", "name", "root", "taxonomy_stamp", "created_at", "updated_at"],
    "topics": ["id", "slug", "name", "created_at", "updated_at"],
    "articles": [
        "id",
        "url",
        "web_url",
        "original_url",
        "amp_web_url",
        "cdn_amp_web_url",
        "title",
        "excerpt",
        "body",
        "category",
        "type",
        "published_at",
        "quality",
        "heat",
        "is_published",
        "is_removed",
        "is_stub",
        "provider_id",
        "featured_content",
        "secured",
        "extra",
        "source_id",
        "source_path",
        "fingerprint",
        "created_at",
        "updated_at",
    ],
    "etl_run_articles": ["run_id", "article_id", "before_state", "before_fingerprint"],
    "etl_run_links": ["run_id", "article_id", "related_article_id"],
    "provider_images": ["provider_id", "image_id", "position"],
    "rejected_documents": [
        "id",
        "run_id",
        "source_path",
        "error",
        "line",
        "column",
        "content_hash",
        "rejected_at",
    ],
    "source_providers": ["source_id", "provider_id", "name", "images", "extra", "file"],
    "source_topics": [
        "source_id",
        "topic_id",
        "parent_topic_id",
        "position",
        "name",
        "shortname",
        "taxonomy_id",
        "keywords",
        "hashtags",
        "images",
        "services",
        "extra",
        "file",
    ],
    "article_images": ["article_id", "image_id", "position", "title", "is_cached"],
    "article_topics": ["article_id", "topic_id", "position"],
    "related_articles": [
        "article_id",
        "related_article_id",
        "position",
        "snippet_title",
        "snippet_excerpt",
        "snippet_published_at",
        "snippet_web_url",
        "snippet_provider_domain",
        "snippet_provider_name",
    ],
    "source_files": [
        "source_id",
        "path",
        "content_hash",
        "size",
        "mtime_ns",
        "article_id",
        "canonical_url",
        "published_at",
        "loaded_at",
        "last_run_id",
    ],
}
# fmt: on

# Each view's SELECT as of this revision: one for every backend ("*"), or one per
# dialect ("mysql" is MariaDB).
VIEWS: dict[str, dict[str, str]] = {
    "article_overview": {
        "sqlite": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.excerpt AS excerpt,
       a.published_at AS published_at,
       p.domain AS provider_domain,
       p.name AS provider_name,
       (SELECT group_concat(o.name, ', ') FROM (SELECT t.name AS name FROM article_topics atp JOIN topics t ON t.id = atp.topic_id WHERE atp.article_id = a.id ORDER BY atp.position) o) AS topics,
       (SELECT count(*) FROM related_articles r WHERE r.article_id = a.id) AS related_count,
       (SELECT count(*) FROM related_articles r JOIN articles src ON src.id = r.article_id WHERE r.related_article_id = a.id AND NOT src.is_stub AND NOT src.is_removed) AS linked_from_count,
       (SELECT count(*) FROM article_images ai WHERE ai.article_id = a.id) AS image_count,
       (SELECT group_concat(o.name, ', ') FROM (SELECT DISTINCT s.name AS name FROM source_files sf JOIN sources s ON s.id = sf.source_id WHERE sf.article_id = a.id ORDER BY s.name) o) AS sources
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE NOT a.is_stub AND NOT a.is_removed""",
        "postgresql": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.excerpt AS excerpt,
       a.published_at AS published_at,
       p.domain AS provider_domain,
       p.name AS provider_name,
       (SELECT string_agg(t.name, ', ' ORDER BY atp.position) FROM article_topics atp JOIN topics t ON t.id = atp.topic_id WHERE atp.article_id = a.id) AS topics,
       (SELECT count(*) FROM related_articles r WHERE r.article_id = a.id) AS related_count,
       (SELECT count(*) FROM related_articles r JOIN articles src ON src.id = r.article_id WHERE r.related_article_id = a.id AND NOT src.is_stub AND NOT src.is_removed) AS linked_from_count,
       (SELECT count(*) FROM article_images ai WHERE ai.article_id = a.id) AS image_count,
       (SELECT string_agg(DISTINCT s.name, ', ' ORDER BY s.name) FROM source_files sf JOIN sources s ON s.id = sf.source_id WHERE sf.article_id = a.id) AS sources
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE NOT a.is_stub AND NOT a.is_removed""",
        "mysql": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.excerpt AS excerpt,
       a.published_at AS published_at,
       p.domain AS provider_domain,
       p.name AS provider_name,
       (SELECT GROUP_CONCAT(t.name ORDER BY atp.position SEPARATOR ', ') FROM article_topics atp JOIN topics t ON t.id = atp.topic_id WHERE atp.article_id = a.id) AS topics,
       (SELECT count(*) FROM related_articles r WHERE r.article_id = a.id) AS related_count,
       (SELECT count(*) FROM related_articles r JOIN articles src ON src.id = r.article_id WHERE r.related_article_id = a.id AND NOT src.is_stub AND NOT src.is_removed) AS linked_from_count,
       (SELECT count(*) FROM article_images ai WHERE ai.article_id = a.id) AS image_count,
       (SELECT GROUP_CONCAT(DISTINCT s.name ORDER BY s.name SEPARATOR ', ') FROM source_files sf JOIN sources s ON s.id = sf.source_id WHERE sf.article_id = a.id) AS sources
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE NOT a.is_stub AND NOT a.is_removed""",
    },
    "provider_article_counts": {
        "sqlite": """\
SELECT p.id AS provider_id,
       p.domain AS provider_domain,
       p.name AS provider_name,
       count(*) AS article_count,
       min(a.published_at) AS first_published_at,
       max(a.published_at) AS last_published_at
FROM providers p
JOIN articles a ON a.provider_id = p.id
WHERE NOT a.is_stub AND NOT a.is_removed
GROUP BY p.id, p.domain, p.name""",
        "postgresql": """\
SELECT p.id AS provider_id,
       p.domain AS provider_domain,
       p.name AS provider_name,
       count(*) AS article_count,
       min(a.published_at) AS first_published_at,
       max(a.published_at) AS last_published_at
FROM providers p
JOIN articles a ON a.provider_id = p.id
WHERE NOT a.is_stub AND NOT a.is_removed
GROUP BY p.id, p.domain, p.name""",
        "mysql": """\
SELECT p.id AS provider_id,
       p.domain AS provider_domain,
       p.name AS provider_name,
       count(*) AS article_count,
       min(a.published_at) AS first_published_at,
       max(a.published_at) AS last_published_at
FROM providers p
JOIN articles a ON a.provider_id = p.id
WHERE NOT a.is_stub AND NOT a.is_removed
GROUP BY p.id, p.domain, p.name""",
    },
    "topic_monthly_counts": {
        "sqlite": """\
SELECT t.id AS topic_id,
       t.slug AS topic_slug,
       t.name AS topic_name,
       substr(a.published_at, 1, 7) AS month,
       count(*) AS article_count
FROM topics t
JOIN article_topics atp ON atp.topic_id = t.id
JOIN articles a ON a.id = atp.article_id
WHERE NOT a.is_stub AND NOT a.is_removed AND a.published_at IS NOT NULL
GROUP BY t.id, t.slug, t.name, substr(a.published_at, 1, 7)""",
        "postgresql": """\
SELECT t.id AS topic_id,
       t.slug AS topic_slug,
       t.name AS topic_name,
       to_char(a.published_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
       count(*) AS article_count
FROM topics t
JOIN article_topics atp ON atp.topic_id = t.id
JOIN articles a ON a.id = atp.article_id
WHERE NOT a.is_stub AND NOT a.is_removed AND a.published_at IS NOT NULL
GROUP BY t.id, t.slug, t.name, to_char(a.published_at AT TIME ZONE 'UTC', 'YYYY-MM')""",
        "mysql": """\
SELECT t.id AS topic_id,
       t.slug AS topic_slug,
       t.name AS topic_name,
       LEFT(CAST(a.published_at AS CHAR), 7) AS month,
       count(*) AS article_count
FROM topics t
JOIN article_topics atp ON atp.topic_id = t.id
JOIN articles a ON a.id = atp.article_id
WHERE NOT a.is_stub AND NOT a.is_removed AND a.published_at IS NOT NULL
GROUP BY t.id, t.slug, t.name, LEFT(CAST(a.published_at AS CHAR), 7)""",
    },
    "most_linked_articles": {
        "sqlite": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.is_stub AS is_stub,
       a.published_at AS published_at,
       p.name AS provider_name,
       l.linked_from_count AS linked_from_count
FROM (SELECT r.related_article_id AS article_id, count(*) AS linked_from_count
      FROM related_articles r JOIN articles src ON src.id = r.article_id
      WHERE NOT src.is_stub AND NOT src.is_removed
      GROUP BY r.related_article_id) l
JOIN articles a ON a.id = l.article_id
LEFT JOIN providers p ON p.id = a.provider_id
WHERE NOT a.is_removed""",
        "postgresql": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.is_stub AS is_stub,
       a.published_at AS published_at,
       p.name AS provider_name,
       l.linked_from_count AS linked_from_count
FROM (SELECT r.related_article_id AS article_id, count(*) AS linked_from_count
      FROM related_articles r JOIN articles src ON src.id = r.article_id
      WHERE NOT src.is_stub AND NOT src.is_removed
      GROUP BY r.related_article_id) l
JOIN articles a ON a.id = l.article_id
LEFT JOIN providers p ON p.id = a.provider_id
WHERE NOT a.is_removed""",
        "mysql": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.is_stub AS is_stub,
       a.published_at AS published_at,
       p.name AS provider_name,
       l.linked_from_count AS linked_from_count
FROM (SELECT r.related_article_id AS article_id, count(*) AS linked_from_count
      FROM related_articles r JOIN articles src ON src.id = r.article_id
      WHERE NOT src.is_stub AND NOT src.is_removed
      GROUP BY r.related_article_id) l
JOIN articles a ON a.id = l.article_id
LEFT JOIN providers p ON p.id = a.provider_id
WHERE NOT a.is_removed""",
    },
    "stubs_pending": {
        "sqlite": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.published_at AS published_at,
       p.domain AS provider_domain,
       p.name AS provider_name,
       (SELECT count(*) FROM related_articles r WHERE r.related_article_id = a.id) AS linked_from_count
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE a.is_stub""",
        "postgresql": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.published_at AS published_at,
       p.domain AS provider_domain,
       p.name AS provider_name,
       (SELECT count(*) FROM related_articles r WHERE r.related_article_id = a.id) AS linked_from_count
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE a.is_stub""",
        "mysql": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.published_at AS published_at,
       p.domain AS provider_domain,
       p.name AS provider_name,
       (SELECT count(*) FROM related_articles r WHERE r.related_article_id = a.id) AS linked_from_count
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE a.is_stub""",
    },
    "removed_articles": {
        "sqlite": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.published_at AS published_at,
       p.name AS provider_name,
       CASE WHEN EXISTS (SELECT 1 FROM source_files s WHERE s.article_id = a.id) THEN 'document' ELSE 'pruned' END AS removal,
       a.updated_at AS updated_at
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE a.is_removed""",
        "postgresql": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.published_at AS published_at,
       p.name AS provider_name,
       CASE WHEN EXISTS (SELECT 1 FROM source_files s WHERE s.article_id = a.id) THEN 'document' ELSE 'pruned' END AS removal,
       a.updated_at AS updated_at
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE a.is_removed""",
        "mysql": """\
SELECT a.id AS article_id,
       a.url AS url,
       a.title AS title,
       a.published_at AS published_at,
       p.name AS provider_name,
       CASE WHEN EXISTS (SELECT 1 FROM source_files s WHERE s.article_id = a.id) THEN 'document' ELSE 'pruned' END AS removal,
       a.updated_at AS updated_at
FROM articles a
LEFT JOIN providers p ON p.id = a.provider_id
WHERE a.is_removed""",
    },
}


# The views' columns at this revision: their descriptions are stored (PostgreSQL).
# fmt: off - frozen data, one view per line
VIEW_COLUMNS: dict[str, list[str]] = {
    "article_overview": [
        "article_id",
        "url",
        "title",
        "excerpt",
        "published_at",
        "provider_domain",
        "provider_name",
        "topics",
        "related_count",
        "linked_from_count",
        "image_count",
        "sources",
    ],
    "provider_article_counts": [
        "provider_id",
        "provider_domain",
        "provider_name",
        "article_count",
        "first_published_at",
        "last_published_at",
    ],
    "topic_monthly_counts": ["topic_id", "topic_slug", "topic_name", "month", "article_count"],
    "most_linked_articles": [
        "article_id",
        "url",
        "title",
        "is_stub",
        "published_at",
        "provider_name",
        "linked_from_count",
    ],
    "stubs_pending": [
        "article_id",
        "url",
        "title",
        "published_at",
        "provider_domain",
        "provider_name",
        "linked_from_count",
    ],
    "removed_articles": [
        "article_id",
        "url",
        "title",
        "published_at",
        "provider_name",
        "removal",
        "updated_at",
    ],
}
# fmt: on


def _select(name: str) -> str:
    versions = VIEWS[name]
    dialect = op.get_context().dialect.name
    return versions.get("*") or versions["mysql" if dialect == "mariadb" else dialect]


def upgrade() -> None:
    set_comments(op, COLUMNS)
    for name in VIEWS:
        op.execute(sa.text(f"CREATE VIEW {name} AS\n{_select(name)}"))
    set_view_comments(op, VIEW_COLUMNS)


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(sa.text(f"DROP VIEW {name}"))
    drop_comments(op, COLUMNS)
