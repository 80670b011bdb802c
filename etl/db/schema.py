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
SCHEMA_REVISION = "0012"

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
# functions use). Migration 0006 rewrites any other form found in existing rows.
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


def _timestamps(what: str) -> list[Column[datetime]]:
    return [
        Column(
            "created_at",
            UTCDateTime(),
            nullable=False,
            server_default=func.now(),
            comment=f"When this {what} was first inserted (UTC).",
        ),
        Column(
            "updated_at",
            UTCDateTime(),
            nullable=False,
            server_default=func.now(),
            comment=f"When this {what} last changed (UTC).",
        ),
    ]


# A named tree of documents: a Jekyll site checkout (``_news/`` and ``_data/``) or any
# directory of Markdown files. Files are keyed by their path relative to ``root``.
sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True, comment="Surrogate key."),
    Column(
        "name",
        String(255),
        nullable=False,
        unique=True,
        comment="The source's name: `etl run --source NAME`, else its root's resolved path.",
    ),
    Column(
        "root",
        Text,
        nullable=False,
        comment="The directory the source's files are keyed relative to (a Jekyll site "
        "root has `_news/`); '' for the `legacy` source of state loaded before sources.",
    ),
    # size and mtime of _config.yml and every taxonomy file (_data/topics,
    # _data/organizations), hashed: equal on the next run means the taxonomy is
    # unchanged, and it is not read.
    Column(
        "taxonomy_stamp",
        String(64),
        comment="Internal: hash of the taxonomy files' sizes and mtimes when last loaded.",
    ),
    *_timestamps("source"),
    comment="Named trees of documents (Jekyll sites or directories), several per database. "
    "Which sites carry an article: join source_files.",
)

# Every table and column carries a description (``comment=``): the migrations store
# them as database comments on PostgreSQL and MariaDB, and ``etl schema`` and
# docs/schema.md print them on every backend. A new column needs one too (a test
# checks); write it for an analyst who sees only the database.

REMOVED = (
    "True when the article is gone, for one of two reasons: its document says "
    "`removed: true` (its source file is still there), or no file describes its URL any "
    "more (deleted and pruned, or moved to another URL) and nothing links to it, so the "
    "row stays as a tombstone (source_path NULL, no topics, images or links). A tombstone "
    "that a link points at again becomes a stub. The view removed_articles tells the two "
    "cases apart."
)
STUB = (
    "True for a stub: an article known only as the target of related links, built from "
    "a referencing document's snippet (title, excerpt, date, provider). It becomes a full "
    "article in place (same id) when its own document is loaded, and is deleted when no "
    "link references it any more."
)

providers = Table(
    "providers",
    metadata,
    Column("id", Integer, primary_key=True, comment="Surrogate key."),
    Column(
        "domain",
        String(255),
        nullable=False,
        unique=True,
        comment="The provider's identity: its domain, lowercased, without `www.` or a "
        "trailing dot (e.g. `bbc.com`). A provider without a domain takes the host of "
        "the article URL.",
    ),
    Column(
        "name",
        Text,
        nullable=False,
        comment="Display name. A source's organization file (`_data/organizations`) names "
        "it when one declares it (the smallest declared name if sites disagree); "
        "otherwise it is document_name.",
    ),
    Column(
        "document_name",
        Text,
        comment="The name documents give, URL-decoded and whitespace-collapsed: an "
        "article's own document beats a related snippet, and among equals the smallest "
        "name (by code point) wins. NULL for a provider only an organization file names.",
    ),
    # False while the name only comes from related-article snippets: a name from
    # an article's own document always replaces a snippet's name.
    Column(
        "named_by_document",
        Boolean,
        nullable=False,
        server_default="0",
        comment="True when the name comes from an article's own document; false while it "
        "only comes from related-article snippets (a document's name replaces those).",
    ),
    Column(
        "named_by_source",
        Boolean,
        nullable=False,
        server_default="0",
        comment="True while a source declares the provider (source_providers): its name "
        "and logos are then the declared ones.",
    ),
    *_timestamps("provider"),
    comment="News publishers (the `provider` of a document or of a related snippet), "
    "one row per domain.",
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True, comment="Surrogate key."),
    Column(
        "url",
        Text,
        nullable=False,
        unique=True,
        comment="The image URL as the document gives it (trimmed); its identity.",
    ),
    Column("width", Integer, comment="Width in pixels: the largest any document reports."),
    Column("height", Integer, comment="Height in pixels: the largest any document reports."),
    *_timestamps("image"),
    comment="Images of articles and provider logos, one row per URL.",
)


def _logo_table(name: str, position: str, comment: str) -> Table:
    return Table(
        name,
        metadata,
        Column(
            "provider_id",
            Integer,
            ForeignKey("providers.id", ondelete="CASCADE"),
            primary_key=True,
            comment="The provider (providers.id).",
        ),
        Column(
            "image_id",
            Integer,
            ForeignKey("images.id"),
            primary_key=True,
            index=True,
            comment="The logo image (images.id).",
        ),
        Column("position", Integer, nullable=False, comment=position),
        comment=comment,
    )


provider_images = _logo_table(
    "provider_images",
    "0-based index in the `images` list it comes from (the smallest).",
    "Provider logos: those of the organization files that declare the provider "
    "(source_providers), else those of its documents (provider_document_images).",
)

# What documents say of a provider's logos, kept apart from provider_images so that a
# declaration can replace them and, when withdrawn, give them back.
provider_document_images = _logo_table(
    "provider_document_images",
    "0-based index in a document's `provider.images` list (the smallest).",
    "Provider logos as documents give them (`provider.images`); provider_images "
    "holds these unless a source declares the provider.",
)

topics = Table(
    "topics",
    metadata,
    Column("id", Integer, primary_key=True, comment="Surrogate key."),
    Column(
        "slug",
        String(255),
        nullable=False,
        unique=True,
        comment='The topic\'s identity, blind to case and spacing: `" Machine  Learning"` '
        "is `machine-learning`.",
    ),
    Column(
        "name",
        Text,
        nullable=False,
        comment="Display name, whitespace-collapsed (the smallest variant by code point "
        "when documents spell it differently).",
    ),
    *_timestamps("topic"),
    comment="Topics (the `topics` list of documents), one row per slug.",
)

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True, comment="Surrogate key."),
    Column(
        "url",
        Text,
        nullable=False,
        unique=True,
        comment="Canonical URL, the article's identity: `webUrl`, else `originalUrl`, "
        "normalized (https, lowercase host without `www.`, no fragment or tracking "
        "parameters, no trailing `/`).",
    ),
    Column("web_url", Text, comment="`webUrl` as the document gives it (trimmed)."),
    Column("original_url", Text, comment="`originalUrl` as the document gives it (trimmed)."),
    Column("amp_web_url", Text, comment="`ampWebUrl`: the AMP page (trimmed)."),
    Column("cdn_amp_web_url", Text, comment="`cdnAmpWebUrl`: the AMP page on a CDN (trimmed)."),
    Column("title", Text, comment="`title`; for a stub, the snippet's title."),
    Column("excerpt", Text, comment="`excerpt`: the summary; for a stub, the snippet's."),
    Column("body", Text, comment="The Markdown after the front-matter (NULL when empty)."),
    Column("category", Text, comment="`category` (e.g. `news`)."),
    Column("type", Text, comment="`type` (e.g. `article`, `video`)."),
    Column(
        "published_at",
        UTCDateTime(),
        index=True,
        comment="`publishedDateTime` in UTC (a date without a zone is UTC).",
    ),
    Column("quality", BigInteger, comment="`quality`: the source's quality score."),
    Column("heat", BigInteger, comment="`heat`: the source's popularity score."),
    Column(
        "is_published",
        Boolean,
        comment="`published` as the document gives it (NULL when absent). Unrelated to is_removed.",
    ),
    Column("is_removed", Boolean, nullable=False, server_default="0", comment=REMOVED),
    Column("is_stub", Boolean, nullable=False, server_default="0", comment=STUB),
    Column(
        "provider_id",
        Integer,
        ForeignKey("providers.id"),
        index=True,
        comment="The publisher (providers.id).",
    ),
    Column(
        "provider_name",
        Text,
        comment="The provider's name as this article's document gives it (for a stub: as "
        "the snippet it shows does); providers.document_name is the smallest of these.",
    ),
    Column("featured_content", JSON, comment="`featuredContent` as given (JSON)."),
    Column("secured", Text, comment="`secured` as given."),
    # Front-matter keys the model does not know, kept so nothing in the source is lost.
    Column(
        "extra",
        JSON,
        comment="Front-matter keys the model does not know, by dotted path (e.g. "
        "`provider.logo`, `images[0].alt`), so nothing in the source is lost (JSON).",
    ),
    # The source file whose content the row holds: its source and its path relative to
    # the source's root. NULL for stubs and tombstones, which no file describes.
    Column(
        "source_id",
        Integer,
        # No foreign key: adding one would make SQLite copy the whole table (and its
        # children through ON DELETE CASCADE); sources are never deleted by a run.
        index=True,
        comment="The source (sources.id) of the file whose document the row holds (the "
        "winner among the files with this URL); NULL for stubs and tombstones.",
    ),
    Column(
        "source_path",
        Text,
        comment="Path (relative to its source's root) of the file whose document the "
        "row holds; NULL for stubs and tombstones, which no file describes.",
    ),
    # sha256 of the normalized record: equal fingerprints mean nothing to write.
    Column(
        "fingerprint",
        String(64),
        comment="Internal: sha256 of what was loaded; equal on a re-run means nothing to write.",
    ),
    *_timestamps("article"),
    Index("ix_articles_updated_at", "updated_at"),
    comment="News articles: one row per canonical URL, full articles (from their own "
    "document) and stubs (is_stub). Live full articles: `NOT is_stub AND NOT is_removed` "
    "(the view article_overview).",
)

article_topics = Table(
    "article_topics",
    metadata,
    Column(
        "article_id",
        Integer,
        ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The article (articles.id).",
    ),
    Column(
        "topic_id",
        Integer,
        ForeignKey("topics.id"),
        primary_key=True,
        index=True,
        comment="The topic (topics.id).",
    ),
    Column(
        "position",
        Integer,
        nullable=False,
        comment="0-based index in the document's `topics` list: ORDER BY it for the "
        "document's order (a repeated topic keeps its first index).",
    ),
    Column(
        "name",
        Text,
        comment="The topic as this document spells it (whitespace-collapsed; a repeated "
        "topic keeps its first spelling); topics.name is the smallest spelling.",
    ),
    comment="Topics of each article, in document order.",
)

article_images = Table(
    "article_images",
    metadata,
    Column(
        "article_id",
        Integer,
        ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The article (articles.id).",
    ),
    Column(
        "image_id",
        Integer,
        ForeignKey("images.id"),
        primary_key=True,
        index=True,
        comment="The image (images.id).",
    ),
    Column(
        "position",
        Integer,
        nullable=False,
        comment="0-based index in the document's `images` list.",
    ),
    Column("title", Text, comment="The image's `title` in this document."),
    Column("is_cached", Boolean, comment="The image's `isCached` in this document."),
    Column("width", Integer, comment="The image's `width` in this document."),
    Column("height", Integer, comment="The image's `height` in this document."),
    comment="Images of each article (the document's `images` list).",
)

# What each document says of its provider's logos: provider_document_images is their
# union over the provider's articles, so it follows the files that exist now.
article_provider_images = Table(
    "article_provider_images",
    metadata,
    Column(
        "article_id",
        Integer,
        ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The article whose document gives the logo (articles.id).",
    ),
    Column(
        "image_id",
        Integer,
        ForeignKey("images.id"),
        primary_key=True,
        index=True,
        comment="The logo image (images.id).",
    ),
    Column(
        "position",
        Integer,
        nullable=False,
        comment="0-based index in the document's `provider.images` list.",
    ),
    Column("width", Integer, comment="The logo's `width` in this document."),
    Column("height", Integer, comment="The logo's `height` in this document."),
    comment="Provider logos as each article's document gives them (`provider.images`); "
    "provider_document_images gathers them per provider.",
)

# Entities whose derived values a committed write may have changed: each batch adds
# what it touched, the end of a run recomputes them all at once (etl.load.aggregates).
pending_aggregates = Table(
    "pending_aggregates",
    metadata,
    Column(
        "kind",
        String(16),
        primary_key=True,
        comment="`provider`, `topic` or `image`: the table of the entity.",
    ),
    Column("entity_id", Integer, primary_key=True, comment="The entity's id in that table."),
    comment="Providers, topics and images whose names, logos or sizes a load changed the "
    "references of, recomputed at the end of the run (left by a stopped run: by the next). "
    "Empty after a completed run.",
)

related_articles = Table(
    "related_articles",
    metadata,
    Column(
        "article_id",
        Integer,
        ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The article whose document lists the link (articles.id).",
    ),
    Column(
        "related_article_id",
        Integer,
        ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
        comment="The article linked to (articles.id): a full article or a stub.",
    ),
    Column(
        "position",
        Integer,
        nullable=False,
        comment="0-based index in the document's `related` list.",
    ),
    # The snippet as the referencing document shows it; stubs are built from these.
    Column("snippet_title", Text, comment="The entry's `title` (snippet)."),
    Column("snippet_excerpt", Text, comment="The entry's `excerpt` (snippet)."),
    Column(
        "snippet_published_at",
        UTCDateTime(),
        comment="The entry's `publishedDateTime` in UTC (snippet).",
    ),
    Column("snippet_web_url", Text, comment="The entry's URL as given (before normalization)."),
    Column(
        "snippet_provider_domain",
        String(255),
        comment="The entry's provider domain, normalized (snippet).",
    ),
    Column("snippet_provider_name", Text, comment="The entry's provider name (snippet)."),
    comment="Links from an article to the articles its document lists under `related`, "
    "with the snippet the document shows (self-links and repeats dropped).",
)

source_files = Table(
    "source_files",
    metadata,
    Column(
        "source_id",
        Integer,
        ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The source (tree) the file belongs to.",
    ),
    Column(
        "path",
        String(700),
        primary_key=True,
        comment="The file's path relative to its source's root.",
    ),
    Column(
        "content_hash",
        String(64),
        nullable=False,
        comment="sha256 of the file's bytes when last read.",
    ),
    # The file's size and mtime when it was hashed: equal on the next run means
    # unchanged without reading it. NULL when the mtime was too recent to trust.
    Column(
        "size",
        BigInteger,
        comment="The file's size in bytes when hashed (NULL if it was modified within "
        "2 s of that).",
    ),
    Column(
        "mtime_ns",
        BigInteger,
        comment="The file's modification time in ns when hashed (NULL if modified within "
        "2 s of that); size and mtime equal on a re-run mean unchanged, not read.",
    ),
    Column(
        "article_id",
        Integer,
        ForeignKey("articles.id", ondelete="SET NULL"),
        index=True,
        comment="The article at the file's canonical URL (articles.id). Two files with "
        "one URL both point to it; the document that wins supplies the article's data.",
    ),
    Column("canonical_url", Text, comment="The canonical URL of the file's document."),
    Column(
        "published_at",
        UTCDateTime(),
        comment="The file's `publishedDateTime` (decides which of two files with one URL wins).",
    ),
    Column(
        "loaded_at",
        UTCDateTime(),
        nullable=False,
        comment="When the file's content was last loaded (UTC).",
    ),
    Column("last_run_id", Integer, comment="The run (etl_runs.id) that last loaded the file."),
    comment="Every input file loaded, one row per path. An article whose files are all "
    "gone is marked is_removed by `etl run --prune`, which also deletes their rows.",
)

etl_runs = Table(
    "etl_runs",
    metadata,
    Column("id", Integer, primary_key=True, comment="Run number."),
    Column("started_at", UTCDateTime(), nullable=False, comment="Start of the run (UTC)."),
    Column("finished_at", UTCDateTime(), comment="End of the run (UTC); NULL while running."),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="`running`, `succeeded`, `partial` (some documents rejected), `failed` or "
        "`interrupted` (stopped by a signal, or its process died).",
    ),
    Column("arguments", JSON, comment="The run's options (paths, prune, shard, ...) (JSON)."),
    Column(
        "files_seen",
        Integer,
        nullable=False,
        server_default="0",
        comment="Files found under the run's PATHS (in its shard).",
    ),
    Column(
        "files_skipped_unchanged",
        Integer,
        nullable=False,
        server_default="0",
        comment="Files not loaded because they did not change since their last load (same "
        "size and mtime, or same content).",
    ),
    Column(
        "articles_inserted",
        Integer,
        nullable=False,
        server_default="0",
        comment="Full articles the run's transactions made of rows that were not full "
        "articles before them (new, a stub filled, or a tombstone back).",
    ),
    Column(
        "articles_updated",
        Integer,
        nullable=False,
        server_default="0",
        comment="Full articles the run's transactions rewrote with another document "
        "(another fingerprint).",
    ),
    Column(
        "articles_unchanged",
        Integer,
        nullable=False,
        server_default="0",
        comment="Files the run loaded whose article already held exactly their document "
        "(nothing written).",
    ),
    Column(
        "articles_removed",
        Integer,
        nullable=False,
        server_default="0",
        comment="Full articles the run's transactions left described by no file "
        "(tombstones, or stubs when links point at them).",
    ),
    Column(
        "stubs_created",
        Integer,
        nullable=False,
        server_default="0",
        comment="Stubs the run's transactions made of rows that were not stubs before "
        "them (new link targets, tombstones linked again).",
    ),
    Column(
        "stubs_deleted",
        Integer,
        nullable=False,
        server_default="0",
        comment="Stubs the run's transactions ended: deleted (no link references them), "
        "filled by their own document, or made tombstones.",
    ),
    Column(
        "links_written",
        Integer,
        nullable=False,
        server_default="0",
        comment="The links (related_articles rows) of the articles the run inserted or "
        "updated, as each transaction wrote them.",
    ),
    Column(
        "documents_rejected",
        Integer,
        nullable=False,
        server_default="0",
        comment="Documents rejected (see rejected_documents).",
    ),
    Column(
        "warnings",
        Integer,
        nullable=False,
        server_default="0",
        comment="Warnings, e.g. related entries without a usable URL, dropped.",
    ),
    Column(
        "duplicates",
        Integer,
        nullable=False,
        server_default="0",
        comment="Files the run loaded that lose their URL to another file (the later "
        "`publishedDateTime` wins; ties: the greater source name, then path).",
    ),
    Column(
        "links_added",
        Integer,
        nullable=False,
        server_default="0",
        comment="related_articles rows the run's transactions added (the article's "
        "links before the transaction did not have them).",
    ),
    Column(
        "links_removed",
        Integer,
        nullable=False,
        server_default="0",
        comment="related_articles rows the run's transactions removed.",
    ),
    Column("error", Text, comment="Why a failed or interrupted run stopped."),
    Index("ix_etl_runs_started_at", "started_at"),
    comment="One row per `etl run`. Each count is added by the transaction that commits "
    "what it counts, so a stopped run keeps the counts of what it committed.",
)

# A source's topic taxonomy (``_data/topics/NN-slug.yaml``): each site keeps its own
# hierarchy over the shared topics (identified, as everywhere, by the slug of the name).
source_topics = Table(
    "source_topics",
    metadata,
    Column(
        "source_id",
        Integer,
        ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The source (site) whose taxonomy this entry is.",
    ),
    Column(
        "topic_id",
        Integer,
        ForeignKey("topics.id"),
        primary_key=True,
        index=True,
        comment="The topic (identified, as everywhere, by the slug of its name).",
    ),
    Column(
        "parent_topic_id",
        Integer,
        ForeignKey("topics.id"),
        index=True,
        comment="Its parent in this source's hierarchy (`parent`, by name); NULL for a root.",
    ),
    Column(
        "parent_name",
        Text,
        comment="`parent` as the entry writes it (whitespace-collapsed); it names the "
        "topic when this taxonomy has no entry of its own for it.",
    ),
    # The NN- prefix of the taxonomy file's name, which orders the site's taxonomy.
    Column(
        "position",
        Integer,
        comment="The `NN-` prefix of the taxonomy file's name, which orders the site's taxonomy.",
    ),
    Column("name", Text, nullable=False, comment="The name as the taxonomy writes it."),
    Column("shortname", Text, comment="`shortname` as given."),
    Column(
        "taxonomy_id", Text, comment="`_id` as given (the slug of the name on every site checked)."
    ),
    Column("keywords", JSON, comment="`keywords` (JSON list)."),
    Column("hashtags", JSON, comment="`hashtags` (JSON list)."),
    Column("images", JSON, comment="`images` (JSON)."),
    Column("services", JSON, comment="`services`: a map of URLs (JSON)."),
    Column("extra", JSON, comment="Other keys of the entry (JSON)."),
    Column(
        "file",
        String(700),
        nullable=False,
        comment="The taxonomy file, relative to the source's root.",
    ),
    comment="Each source's topic taxonomy (`_data/topics/NN-slug.yaml`): its own hierarchy over "
    "the shared topics.",
)

# The organizations a source declares (``_data/organizations/<domain>.md``): providers
# that stay while declared, whose declared name and logos beat what documents say.
source_providers = Table(
    "source_providers",
    metadata,
    Column(
        "source_id",
        Integer,
        ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The source (site) that declares the organization.",
    ),
    Column(
        "provider_id",
        Integer,
        ForeignKey("providers.id"),
        primary_key=True,
        index=True,
        comment="The provider it declares.",
    ),
    Column(
        "name",
        Text,
        nullable=False,
        comment="The name the organization file gives (beats names from documents).",
    ),
    Column("images", JSON, comment="The organization's logos as declared (JSON)."),
    Column("extra", JSON, comment="Other keys of the organization file (JSON)."),
    Column(
        "file",
        String(700),
        nullable=False,
        comment="The organization file, relative to the source's root.",
    ),
    comment="The organizations each source declares (`_data/organizations/<domain>.md`): "
    "providers kept while declared.",
)

rejected_documents = Table(
    "rejected_documents",
    metadata,
    Column("id", Integer, primary_key=True, comment="Surrogate key."),
    Column(
        "run_id",
        Integer,
        ForeignKey("etl_runs.id", ondelete="CASCADE"),
        index=True,
        comment="The run that rejected it (etl_runs.id).",
    ),
    Column("source_path", Text, nullable=False, comment="The file rejected."),
    Column("error", Text, nullable=False, comment="Why it was rejected."),
    Column("line", Integer, comment="Line of a YAML error, if any."),
    Column("column", Integer, comment="Column of a YAML error, if any."),
    Column("content_hash", String(64), comment="sha256 of the file's bytes, if read."),
    Column("rejected_at", UTCDateTime(), nullable=False, comment="When (UTC)."),
    comment="Documents a run refused, with the reason; a fixed file loads on the next run.",
)


# The change feed (etl/query/feed.py). Rows are written only by database triggers on
# ``articles`` (created by migration 0006), never by the load code, so every writer
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
        comment="Position in the feed: strictly increasing in commit order.",
    ),
    # upsert (the row exists, not removed), remove (is_removed), delete (row gone):
    # the state of the article after the change.
    Column(
        "op",
        String(8),
        nullable=False,
        comment="`upsert` (the row exists, not removed), `remove` (is_removed), `delete` (row "
        "gone): the article's state after the change.",
    ),
    Column(
        "article_id",
        Integer,
        nullable=False,
        comment="The article changed (no foreign key: it may be deleted).",
    ),
    Column("url", Text, nullable=False, comment="Its canonical URL."),
    Column("is_stub", Boolean, nullable=False, comment="Whether it is a stub after the change."),
    Column(
        "run_id",
        Integer,
        comment="The run that made the change; NULL for a change made outside a run.",
    ),
    Column(
        "committed_at",
        UTCDateTime(),
        nullable=False,
        comment="When the change was written, inside its committing transaction (UTC).",
    ),
    comment="The change feed: one row per committed change to an article, written by triggers on "
    "articles (see `etl changes`).",
)

# One row (id 1): the newest cursor compaction removed. A consumer whose cursor is
# older must resynchronise; the feed never skips entries silently.
change_feed_state = Table(
    "change_feed_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="Always 1: one row."),
    Column(
        "compacted_through",
        BigInteger,
        nullable=False,
        server_default="0",
        comment="The newest cursor compaction removed: a consumer with an older cursor must "
        "resynchronise.",
    ),
    Column("compacted_at", UTCDateTime(), comment="When the last compaction ran (UTC)."),
    comment="The change feed's compaction watermark (one row).",
)


# Full-text search over articles' title and excerpt (migration 0009, SQLite's made again by
# 0010; etl/query/fulltext.py queries it). Each backend has its own kind of object, so none is
# modelled above: Alembic's autogenerate (env.py, and the test that proves the
# migrations match this module) leaves out exactly these names, via include_name().
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
    """Alembic's ``include_name`` hook: everything but the search index's objects."""
    if type_ == "table":
        return name not in SEARCH_TABLES
    if type_ == "index":
        return name not in SEARCH_INDEXES
    if type_ == "column":
        return name not in SEARCH_COLUMNS
    return True


def with_mysql_table_options() -> MetaData:
    """``metadata``, every table carrying ``MYSQL_TABLE_OPTIONS`` (imports the MySQL dialect).

    For code that writes MySQL DDL from these tables: Alembic's autogenerate then
    renders the options into a new table's migration. Calling it again changes nothing.
    """
    for table in metadata.tables.values():
        table.dialect_kwargs.update(MYSQL_TABLE_OPTIONS)
    return metadata
