"""Sources: several trees (Jekyll sites) in one database, their taxonomies, net run counts.

- ``sources(id, name unique, root)``; ``source_files`` gains ``source_id`` and is keyed
  by ``(source_id, path)``; ``articles.source_id`` names the source of the winning file.
- State recorded before sources existed (``source_files`` rows with paths relative to
  whatever directory was given) belongs to a source named ``legacy`` with an empty
  root. The first run whose source is new adopts it (renames it and sets its root),
  so a single-tree deployment upgrades without reloading anything.
- ``source_topics`` and ``source_providers``: each source's taxonomy and organizations.
- ``etl_run_articles`` / ``etl_run_links``: scratch rows of running runs (net counts).
- ``etl_runs.links_added`` and ``.links_removed``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 04:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import etl.db.schema

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
# The `legacy` source's id (a subquery): state recorded before sources existed is its.
LEGACY = "(SELECT id FROM sources WHERE name = 'legacy')"


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column(
            name,
            etl.db.schema.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        )
        for name in ("created_at", "updated_at")
    ]


def _source_files(key: list[str]) -> sa.Table:
    """``source_files`` as it is with ``key`` as its primary key (SQLite's table copy)."""
    with_source = "source_id" in key
    return sa.Table(
        "source_files",
        sa.MetaData(),
        sa.Column("source_id", sa.Integer(), nullable=not with_source),
        sa.Column("path", sa.String(length=700), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True),
        sa.Column("published_at", etl.db.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("loaded_at", etl.db.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name="fk_source_files_article_id_articles",
            ondelete="SET NULL",
        ),
        *(
            [
                sa.ForeignKeyConstraint(
                    ["source_id"],
                    ["sources.id"],
                    name="fk_source_files_source_id_sources",
                    ondelete="CASCADE",
                )
            ]
            if with_source
            else []
        ),
        sa.PrimaryKeyConstraint(*key, name="pk_source_files"),
        sa.Index("ix_source_files_article_id", "article_id"),
    )


def _rekey_source_files(key: list[str]) -> None:
    """Make ``key`` the primary key of ``source_files`` (with the source's foreign key
    when ``source_id`` is part of it)."""
    with_source = "source_id" in key
    if op.get_context().dialect.name == "sqlite":
        # SQLite cannot alter a primary key: the table is copied into this structure.
        with op.batch_alter_table("source_files", recreate="always", copy_from=_source_files(key)):
            pass
        return
    if not with_source:
        op.drop_constraint("fk_source_files_source_id_sources", "source_files", "foreignkey")
    # A primary-key column cannot be made nullable: the key goes first.
    op.drop_constraint("pk_source_files", "source_files", type_="primary")
    op.alter_column(
        "source_files", "source_id", existing_type=sa.Integer(), nullable=not with_source
    )
    op.create_primary_key("pk_source_files", "source_files", key)
    if with_source:
        op.create_foreign_key(
            "fk_source_files_source_id_sources",
            "source_files",
            "sources",
            ["source_id"],
            ["id"],
            ondelete="CASCADE",
        )


def upgrade() -> None:
    _create_sources()
    _source_files_by_source()
    _articles_source_id()
    _create_source_topics()
    _create_source_providers()
    _create_run_scratch_tables()
    _add_link_counters()


def _create_sources() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("taxonomy_stamp", sa.String(length=64), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_sources_name")),
        **MYSQL,
    )
    # Pre-existing files belong to the `legacy` source (only if there are any).
    op.execute(
        "INSERT INTO sources (name, root, created_at, updated_at) "
        "SELECT 'legacy', '', MIN(loaded_at), MAX(loaded_at) FROM source_files "
        "HAVING COUNT(*) > 0"
    )


def _source_files_by_source() -> None:
    """``source_files`` keyed by (source_id, path), its rows the ``legacy`` source's."""
    with op.batch_alter_table("source_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
    op.execute(f"UPDATE source_files SET source_id = {LEGACY}")
    _rekey_source_files(["source_id", "path"])


def _articles_source_id() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_articles_source_id"), ["source_id"], unique=False)
    op.execute(f"UPDATE articles SET source_id = {LEGACY} WHERE source_path IS NOT NULL")


def _create_source_topics() -> None:
    op.create_table(
        "source_topics",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("parent_topic_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("shortname", sa.Text(), nullable=True),
        sa.Column("taxonomy_id", sa.Text(), nullable=True),
        sa.Column("keywords", sa.JSON(), nullable=True),
        sa.Column("hashtags", sa.JSON(), nullable=True),
        sa.Column("images", sa.JSON(), nullable=True),
        sa.Column("services", sa.JSON(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("file", sa.String(length=700), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_topic_id"],
            ["topics.id"],
            name=op.f("fk_source_topics_parent_topic_id_topics"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_source_topics_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_source_topics_topic_id_topics")
        ),
        sa.PrimaryKeyConstraint("source_id", "topic_id", name=op.f("pk_source_topics")),
        **MYSQL,
    )
    with op.batch_alter_table("source_topics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_topics_parent_topic_id"), ["parent_topic_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_source_topics_topic_id"), ["topic_id"], unique=False)


def _create_source_providers() -> None:
    op.create_table(
        "source_providers",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("images", sa.JSON(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("file", sa.String(length=700), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_source_providers_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_source_providers_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "provider_id", name=op.f("pk_source_providers")),
        **MYSQL,
    )
    with op.batch_alter_table("source_providers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_providers_provider_id"), ["provider_id"], unique=False
        )


def _create_run_scratch_tables() -> None:
    """Scratch rows of running runs, for their net counts."""
    op.create_table(
        "etl_run_articles",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("before_state", sa.String(length=16), nullable=False),
        sa.Column("before_fingerprint", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["etl_runs.id"],
            name=op.f("fk_etl_run_articles_run_id_etl_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "article_id", name=op.f("pk_etl_run_articles")),
        **MYSQL,
    )
    op.create_table(
        "etl_run_links",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("related_article_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["etl_runs.id"],
            name=op.f("fk_etl_run_links_run_id_etl_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "article_id", "related_article_id", name=op.f("pk_etl_run_links")
        ),
        **MYSQL,
    )


def _add_link_counters() -> None:
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("links_added", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("links_removed", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    # Not a batch copy on SQLite: dropping etl_runs would cascade to rejected_documents.
    op.drop_column("etl_runs", "links_removed")
    op.drop_column("etl_runs", "links_added")
    for table in ("etl_run_links", "etl_run_articles", "source_providers", "source_topics"):
        op.drop_table(table)
    op.drop_index("ix_articles_source_id", table_name="articles")
    # SQLite's own DROP COLUMN (3.35+): a batch copy of `articles` would drop the table,
    # and ON DELETE CASCADE would empty its child tables with it.
    op.drop_column("articles", "source_id")
    # Paths were unique before sources: of one path in several sources, the row of the
    # oldest source stays.
    op.execute(
        "DELETE FROM source_files WHERE source_id > "
        "(SELECT m FROM (SELECT MIN(s2.source_id) AS m, s2.path FROM source_files s2 "
        "GROUP BY s2.path) AS firsts WHERE firsts.path = source_files.path)"
    )
    _rekey_source_files(["path"])
    with op.batch_alter_table("source_files", schema=None) as batch_op:
        batch_op.drop_column("source_id")
    op.drop_table("sources")
