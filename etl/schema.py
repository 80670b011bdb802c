"""The database schema: SQLAlchemy Core tables, the one source of truth.

Alembic migrations in ``etl/migrations/versions`` must create exactly these tables
(``tests/test_migrations.py`` runs autogenerate against every backend to prove it).
Names here are a contract with analysts and downstream services: add, never rename.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.types import TypeDecorator

# The Alembic revision these tables correspond to: bump it with every new migration
# (a test checks it equals the newest one). ``etl run`` compares it with the
# database's revision and only loads Alembic when they differ.
SCHEMA_REVISION = "0007"

# Deterministic constraint names so migrations can drop/alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# MariaDB/MySQL: 4-byte UTF-8 everywhere, and a binary collation so that URLs,
# slugs and domains compare byte-for-byte as they do on PostgreSQL and SQLite.
# Every table has these options, but they are not passed to Table(): SQLAlchemy
# imports a dialect to check the options named after it, ~20 ms of every start on
# every backend. The migrations spell them out (a MariaDB test checks the tables
# they make), and with_mysql_table_options() attaches them for Alembic's env.py.
MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


# How SQLite stores every timestamp: UTC, one fixed-width text form that sorts in
# time order (SQLAlchemy's own form for SQLite, with the space SQLite's date
# functions use). Migration 0007 rewrites any other form found in existing rows.
SQLITE_TIMESTAMP_FORM = "YYYY-MM-DD HH:MM:SS.ffffff"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite and MariaDB have no zone, so values
    are stored as naive UTC and come back with ``tzinfo=UTC`` attached. On SQLite
    the stored text is always ``SQLITE_TIMESTAMP_FORM`` (6 fractional digits), so
    text comparison is time comparison; MariaDB ``DATETIME`` keeps whole seconds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if getattr(dialect, "name", "") != "postgresql":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _timestamps() -> list[Column[datetime]]:
    return [
        Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
        Column("updated_at", UTCDateTime(), nullable=False, server_default=func.now()),
    ]


# A named tree of documents: a Jekyll site checkout (``_news/`` and ``_data/``) or any
# directory of Markdown files. Files are keyed by their path relative to ``root``.
sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("root", Text, nullable=False),
    # size and mtime of every taxonomy file (_data/topics, _data/organizations), hashed:
    # equal on the next run means the taxonomy is unchanged, and it is not read.
    Column("taxonomy_stamp", String(64)),
    *_timestamps(),
)

providers = Table(
    "providers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain", String(255), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    # False while the name only comes from related-article snippets: a name from
    # an article's own document always replaces a snippet's name.
    Column("named_by_document", Boolean, nullable=False, server_default="0"),
    *_timestamps(),
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("width", Integer),
    Column("height", Integer),
    *_timestamps(),
)

provider_images = Table(
    "provider_images",
    metadata,
    Column(
        "provider_id",
        Integer,
        ForeignKey("providers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("image_id", Integer, ForeignKey("images.id"), primary_key=True, index=True),
    Column("position", Integer, nullable=False),
)

topics = Table(
    "topics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(255), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    *_timestamps(),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("web_url", Text),
    Column("original_url", Text),
    Column("amp_web_url", Text),
    Column("cdn_amp_web_url", Text),
    Column("title", Text),
    Column("excerpt", Text),
    Column("body", Text),
    Column("category", Text),
    Column("type", Text),
    Column("published_at", UTCDateTime(), index=True),
    Column("quality", BigInteger),
    Column("heat", BigInteger),
    Column("is_published", Boolean),
    Column("is_removed", Boolean, nullable=False, server_default="0"),
    Column("is_stub", Boolean, nullable=False, server_default="0"),
    Column("provider_id", Integer, ForeignKey("providers.id"), index=True),
    Column("featured_content", JSON),
    Column("secured", Text),
    # Front-matter keys the model does not know, kept so nothing in the source is lost.
    Column("extra", JSON),
    # The source file whose content the row holds: its source and its path relative to
    # the source's root. NULL for stubs and tombstones, which no file describes.
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="SET NULL"), index=True),
    Column("source_path", Text),
    # sha256 of the normalized record: equal fingerprints mean nothing to write.
    Column("fingerprint", String(64)),
    *_timestamps(),
    Index("ix_articles_updated_at", "updated_at"),
)

article_topics = Table(
    "article_topics",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", Integer, ForeignKey("topics.id"), primary_key=True, index=True),
    Column("position", Integer, nullable=False),
)

article_images = Table(
    "article_images",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("image_id", Integer, ForeignKey("images.id"), primary_key=True, index=True),
    Column("position", Integer, nullable=False),
    Column("title", Text),
    Column("is_cached", Boolean),
)

related_articles = Table(
    "related_articles",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "related_article_id",
        Integer,
        ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("position", Integer, nullable=False),
    # The snippet as the referencing document shows it; stubs are built from these.
    Column("snippet_title", Text),
    Column("snippet_excerpt", Text),
    Column("snippet_published_at", UTCDateTime()),
    Column("snippet_web_url", Text),
    Column("snippet_provider_domain", String(255)),
    Column("snippet_provider_name", Text),
)

source_files = Table(
    "source_files",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(700), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    # The file's size and mtime when it was hashed: equal on the next run means
    # unchanged without reading it. NULL when the mtime was too recent to trust.
    Column("size", BigInteger),
    Column("mtime_ns", BigInteger),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="SET NULL"), index=True),
    Column("canonical_url", Text),
    Column("published_at", UTCDateTime()),
    Column("loaded_at", UTCDateTime(), nullable=False),
    Column("last_run_id", Integer),
)

etl_runs = Table(
    "etl_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("status", String(16), nullable=False),
    Column("arguments", JSON),
    Column("files_seen", Integer, nullable=False, server_default="0"),
    Column("files_skipped_unchanged", Integer, nullable=False, server_default="0"),
    Column("articles_inserted", Integer, nullable=False, server_default="0"),
    Column("articles_updated", Integer, nullable=False, server_default="0"),
    Column("articles_unchanged", Integer, nullable=False, server_default="0"),
    Column("articles_removed", Integer, nullable=False, server_default="0"),
    Column("stubs_created", Integer, nullable=False, server_default="0"),
    Column("stubs_deleted", Integer, nullable=False, server_default="0"),
    Column("links_written", Integer, nullable=False, server_default="0"),
    Column("documents_rejected", Integer, nullable=False, server_default="0"),
    Column("warnings", Integer, nullable=False, server_default="0"),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("links_added", Integer, nullable=False, server_default="0"),
    Column("links_removed", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Index("ix_etl_runs_started_at", "started_at"),
)

# A source's topic taxonomy (``_data/topics/NN-slug.yaml``): each site keeps its own
# hierarchy over the shared topics (identified, as everywhere, by the slug of the name).
source_topics = Table(
    "source_topics",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", Integer, ForeignKey("topics.id"), primary_key=True, index=True),
    Column("parent_topic_id", Integer, ForeignKey("topics.id"), index=True),
    # The NN- prefix of the taxonomy file's name, which orders the site's taxonomy.
    Column("position", Integer),
    Column("name", Text, nullable=False),
    Column("shortname", Text),
    Column("taxonomy_id", Text),
    Column("keywords", JSON),
    Column("hashtags", JSON),
    Column("images", JSON),
    Column("services", JSON),
    Column("extra", JSON),
    Column("file", String(700), nullable=False),
)

# The organizations a source declares (``_data/organizations/<domain>.md``): providers
# that stay while declared, whose declared name and logos beat what documents say.
source_providers = Table(
    "source_providers",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("provider_id", Integer, ForeignKey("providers.id"), primary_key=True, index=True),
    Column("name", Text, nullable=False),
    Column("images", JSON),
    Column("extra", JSON),
    Column("file", String(700), nullable=False),
)

# Scratch rows of running runs: each article's state before the run first changed it,
# and its links then, so a run counts net changes however its files fell into batches.
# Deleted when the run ends.
etl_run_articles = Table(
    "etl_run_articles",
    metadata,
    Column("run_id", Integer, ForeignKey("etl_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("article_id", Integer, primary_key=True),
    Column("before_state", String(16), nullable=False),
    Column("before_fingerprint", String(64)),
)

etl_run_links = Table(
    "etl_run_links",
    metadata,
    Column("run_id", Integer, ForeignKey("etl_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("article_id", Integer, primary_key=True),
    Column("related_article_id", Integer, primary_key=True),
)

rejected_documents = Table(
    "rejected_documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("etl_runs.id", ondelete="CASCADE"), index=True),
    Column("source_path", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("line", Integer),
    Column("column", Integer),
    Column("content_hash", String(64)),
    Column("rejected_at", UTCDateTime(), nullable=False),
)


# The change feed (etl/feed.py). Rows are written only by database triggers on
# ``articles`` (created by migration 0007), never by the load code, so every writer
# is recorded. Cursors are taken under the writer lock, so they follow commit order.
article_changes = Table(
    "article_changes",
    metadata,
    # SQLite: the migration makes it AUTOINCREMENT, so a cursor is never reused after
    # the newest rows are deleted (compaction); a plain INTEGER PRIMARY KEY may hand out
    # max(rowid)+1 again. Not declared here (sqlite_autoincrement=True): like the MySQL
    # options above, it would import the SQLite dialect on every start.
    Column(
        "cursor",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    # upsert (the row exists, not removed), remove (is_removed), delete (row gone):
    # the state of the article after the change.
    Column("op", String(8), nullable=False),
    Column("article_id", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("is_stub", Boolean, nullable=False),
    Column("run_id", Integer),
    Column("committed_at", UTCDateTime(), nullable=False),
)

# One row (id 1): the newest cursor compaction removed. A consumer whose cursor is
# older must resynchronise; the feed never skips entries silently.
change_feed_state = Table(
    "change_feed_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("compacted_through", BigInteger, nullable=False, server_default="0"),
    Column("compacted_at", UTCDateTime()),
)


def with_mysql_table_options() -> MetaData:
    """``metadata``, every table carrying ``MYSQL_TABLE_OPTIONS`` (imports the MySQL dialect).

    For code that writes MySQL DDL from these tables: Alembic's autogenerate then
    renders the options into a new table's migration. Calling it again changes nothing.
    """
    for table in metadata.tables.values():
        table.dialect_kwargs.update(MYSQL_TABLE_OPTIONS)
    return metadata
