"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 02:43:28.102809
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import etl.db.schema

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_etl_runs()
    _create_images()
    _create_providers()
    _create_topics()
    _create_articles()
    _create_provider_images()
    _create_rejected_documents()
    _create_article_images()
    _create_article_topics()
    _create_related_articles()
    _create_source_files()


def _create_etl_runs() -> None:
    op.create_table(
        "etl_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", etl.db.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", etl.db.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=True),
        sa.Column("files_seen", sa.Integer(), server_default="0", nullable=False),
        sa.Column("files_skipped_unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("articles_inserted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("articles_updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("articles_unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("articles_removed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stubs_created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stubs_deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("links_written", sa.Integer(), server_default="0", nullable=False),
        sa.Column("documents_rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("warnings", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_etl_runs")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        batch_op.create_index("ix_etl_runs_started_at", ["started_at"], unique=False)


def _create_images() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("url", name=op.f("uq_images_url")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def _create_providers() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("named_by_document", sa.Boolean(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("domain", name=op.f("uq_providers_domain")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def _create_topics() -> None:
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topics")),
        sa.UniqueConstraint("slug", name=op.f("uq_topics_slug")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def _create_articles() -> None:
    op.create_table(
        "articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("web_url", sa.Text(), nullable=True),
        sa.Column("original_url", sa.Text(), nullable=True),
        sa.Column("amp_web_url", sa.Text(), nullable=True),
        sa.Column("cdn_amp_web_url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("published_at", etl.db.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("quality", sa.BigInteger(), nullable=True),
        sa.Column("heat", sa.BigInteger(), nullable=True),
        sa.Column("is_published", sa.Boolean(), nullable=True),
        sa.Column("is_removed", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("is_stub", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("featured_content", sa.JSON(), nullable=True),
        sa.Column("secured", sa.Text(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_articles_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_articles")),
        sa.UniqueConstraint("url", name=op.f("uq_articles_url")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_articles_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_articles_published_at"), ["published_at"], unique=False
        )


def _create_provider_images() -> None:
    op.create_table(
        "provider_images",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_provider_images_image_id_images")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_provider_images_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "image_id", name=op.f("pk_provider_images")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("provider_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_images_image_id"), ["image_id"], unique=False)


def _create_rejected_documents() -> None:
    op.create_table(
        "rejected_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("column", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("rejected_at", etl.db.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["etl_runs.id"],
            name=op.f("fk_rejected_documents_run_id_etl_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_documents")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("rejected_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejected_documents_run_id"), ["run_id"], unique=False)


def _create_article_images() -> None:
    op.create_table(
        "article_images",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("is_cached", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_images_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_article_images_image_id_images")
        ),
        sa.PrimaryKeyConstraint("article_id", "image_id", name=op.f("pk_article_images")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("article_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_images_image_id"), ["image_id"], unique=False)


def _create_article_topics() -> None:
    op.create_table(
        "article_topics",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_topics_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_article_topics_topic_id_topics")
        ),
        sa.PrimaryKeyConstraint("article_id", "topic_id", name=op.f("pk_article_topics")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("article_topics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_topics_topic_id"), ["topic_id"], unique=False)


def _create_related_articles() -> None:
    op.create_table(
        "related_articles",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("related_article_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("snippet_title", sa.Text(), nullable=True),
        sa.Column("snippet_excerpt", sa.Text(), nullable=True),
        sa.Column("snippet_published_at", etl.db.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("snippet_web_url", sa.Text(), nullable=True),
        sa.Column("snippet_provider_domain", sa.String(length=255), nullable=True),
        sa.Column("snippet_provider_name", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_related_articles_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["related_article_id"],
            ["articles.id"],
            name=op.f("fk_related_articles_related_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "article_id", "related_article_id", name=op.f("pk_related_articles")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("related_articles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_related_articles_related_article_id"),
            ["related_article_id"],
            unique=False,
        )


def _create_source_files() -> None:
    op.create_table(
        "source_files",
        sa.Column("path", sa.String(length=700), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True),
        sa.Column("published_at", etl.db.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("loaded_at", etl.db.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_source_files_article_id_articles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_source_files")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    with op.batch_alter_table("source_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_files_article_id"), ["article_id"], unique=False
        )


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first fails on MariaDB,
    # where an index that backs a foreign key cannot be dropped on its own.
    for table in (
        "source_files",
        "related_articles",
        "article_topics",
        "article_images",
        "rejected_documents",
        "provider_images",
        "articles",
        "topics",
        "providers",
        "images",
        "etl_runs",
    ):
        op.drop_table(table)
