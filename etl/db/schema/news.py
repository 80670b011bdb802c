"""The news tables: providers, images, topics, articles and what links them.

Owns every table the load writes from documents (``etl.load``): the entities, an
article's topics, images, provider logos and related links, and the entities whose
aggregates wait to be recomputed (``pending_aggregates``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from etl.db.schema.base import UTCDateTime, metadata, timestamps

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
    *timestamps("provider"),
    comment="News publishers (the `provider` of a document or of a related snippet), "
    "one row per domain.",
)

# MariaDB keeps the unique keys on articles.url and images.url (TEXT) as hashed "long
# unique" keys, which its optimizer never uses to find a row: each lookup by URL read the
# whole table. Migration 0013 adds these B-tree indexes on the URL's first 255
# characters, on MariaDB only (elsewhere the unique key finds rows); not modelled here,
# so Alembic's comparison leaves them out (etl.db.schema.search.include_name).
MARIADB_URL_LOOKUPS = {"ix_articles_url_lookup": "articles", "ix_images_url_lookup": "images"}

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
    *timestamps("image"),
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
    *timestamps("topic"),
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
    *timestamps("article"),
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
