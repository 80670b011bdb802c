"""The database schema: SQLAlchemy Core tables, the one source of truth.

Alembic migrations in ``etl/migrations/versions`` must create exactly these tables
(``tests/test_migrations.py`` runs autogenerate against every backend to prove it).
Names here are a contract with analysts and downstream services: add, never rename.

One module per area, every name re-exported here (``from etl.db.schema import
articles``): what every table shares (``base``: the metadata, the naming convention,
UTC timestamps, ``SCHEMA_REVISION``), the sources (``trees``), the news (``news``),
what the ledger and each source keep (``ledger``), the change feed (``feed``) and the
search index's objects, which are not tables here (``search``).

Every table and column carries a description (``comment=``): the migrations store
them as database comments on PostgreSQL and MariaDB, and ``etl schema`` and
docs/schema.md print them on every backend. A new column needs one too (a test
checks); write it for an analyst who sees only the database.
"""

from __future__ import annotations

# isort: off
# The modules are imported in this order on purpose: ``metadata`` lists tables in the
# order they are defined, which is the order of the data dictionary (docs/schema.md).
from etl.db.schema.base import (
    MYSQL_TABLE_OPTIONS,
    NAMING_CONVENTION,
    SCHEMA_REVISION,
    SQLITE_TIMESTAMP_FORM,
    UTCDateTime,
    metadata,
    timestamps,
    with_mysql_table_options,
)
from etl.db.schema.trees import sources
from etl.db.schema.news import (
    MARIADB_URL_LOOKUPS,
    REMOVED,
    STUB,
    article_images,
    article_provider_images,
    article_topics,
    articles,
    images,
    pending_aggregates,
    provider_document_images,
    provider_images,
    providers,
    related_articles,
    topics,
)
from etl.db.schema.ledger import (
    RUN_COUNTERS,
    etl_runs,
    rejected_documents,
    source_files,
    source_providers,
    source_topics,
)
from etl.db.schema.feed import article_changes, change_feed_state
from etl.db.schema.search import (
    SEARCH_COLUMNS,
    SEARCH_INDEX,
    SEARCH_INDEXES,
    SEARCH_TABLES,
    SEARCH_TRIGGERS,
    include_name,
)
# isort: on

__all__ = [
    "MARIADB_URL_LOOKUPS",
    "MYSQL_TABLE_OPTIONS",
    "NAMING_CONVENTION",
    "REMOVED",
    "RUN_COUNTERS",
    "SCHEMA_REVISION",
    "SEARCH_COLUMNS",
    "SEARCH_INDEX",
    "SEARCH_INDEXES",
    "SEARCH_TABLES",
    "SEARCH_TRIGGERS",
    "SQLITE_TIMESTAMP_FORM",
    "STUB",
    "UTCDateTime",
    "article_changes",
    "article_images",
    "article_provider_images",
    "article_topics",
    "articles",
    "change_feed_state",
    "etl_runs",
    "images",
    "include_name",
    "metadata",
    "pending_aggregates",
    "provider_document_images",
    "provider_images",
    "providers",
    "rejected_documents",
    "related_articles",
    "source_files",
    "source_providers",
    "source_topics",
    "sources",
    "timestamps",
    "topics",
    "with_mysql_table_options",
]
