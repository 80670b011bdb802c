"""What each file contributed, so aggregates follow the files that exist now.

Providers' names and logos, topics' names and images' sizes were upserted as "the
smallest (largest) value ever seen while the row exists". They are now recomputed
from the rows that reference them, and those rows keep what their file said:

- ``articles.provider_name``: the provider's name as the article's document (a stub:
  its snippet) gives it;
- ``article_topics.name``: the topic as the document spells it;
- ``article_images.width``/``height``: the image's size in the document;
- ``article_provider_images``: the document's provider logos, with position and size;
- ``source_topics.parent_name``: the parent as the taxonomy entry writes it.

Backfill, as well as the existing rows allow: each referencing row gets the current
aggregate (the provider's ``document_name``, the topic's ``name``, the image's size),
and each full article the logos its provider has from documents. So nothing changes
at the upgrade, and each value becomes exactly what its file says when the file is
read again. The next run reads every file again (the stored stamps and hashes are
cleared) and, the rules version being new, writes every article again: from then on
every aggregate is exact, with no manual step. Every site's taxonomy is read again by
its next run (its stamp is cleared) for ``parent_name``.

Columns are added in place (no table copy on SQLite).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The descriptions as of this revision (etl/db/schema/ holds the current ones).
PROVIDER_NAME = (
    "The provider's name as this article's document gives it (for a stub: as the snippet "
    "it shows does); providers.document_name is the smallest of these."
)
TOPIC_NAME = (
    "The topic as this document spells it (whitespace-collapsed; a repeated topic keeps "
    "its first spelling); topics.name is the smallest spelling."
)
PARENT_NAME = (
    "`parent` as the entry writes it (whitespace-collapsed); it names the topic when this "
    "taxonomy has no entry of its own for it."
)

PENDING = (
    "Providers, topics and images whose names, logos or sizes a load changed the "
    "references of, recomputed at the end of the run (left by a stopped run: by the next). "
    "Empty after a completed run."
)


def upgrade() -> None:
    op.add_column("articles", sa.Column("provider_name", sa.Text(), comment=PROVIDER_NAME))
    op.add_column("article_topics", sa.Column("name", sa.Text(), comment=TOPIC_NAME))
    for column in ("width", "height"):
        op.add_column(
            "article_images",
            sa.Column(column, sa.Integer(), comment=f"The image's `{column}` in this document."),
        )
    op.add_column("source_topics", sa.Column("parent_name", sa.Text(), comment=PARENT_NAME))
    op.create_table(
        "article_provider_images",
        sa.Column(
            "article_id",
            sa.Integer(),
            sa.ForeignKey(
                "articles.id",
                name="fk_article_provider_images_article_id_articles",
                ondelete="CASCADE",
            ),
            primary_key=True,
            comment="The article whose document gives the logo (articles.id).",
        ),
        sa.Column(
            "image_id",
            sa.Integer(),
            sa.ForeignKey("images.id", name="fk_article_provider_images_image_id_images"),
            primary_key=True,
            comment="The logo image (images.id).",
        ),
        sa.Column(
            "position",
            sa.Integer(),
            nullable=False,
            comment="0-based index in the document's `provider.images` list.",
        ),
        sa.Column("width", sa.Integer(), comment="The logo's `width` in this document."),
        sa.Column("height", sa.Integer(), comment="The logo's `height` in this document."),
        sa.PrimaryKeyConstraint("article_id", "image_id", name="pk_article_provider_images"),
        comment="Provider logos as each article's document gives them (`provider.images`); "
        "provider_document_images gathers them per provider.",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_article_provider_images_image_id", "article_provider_images", ["image_id"])
    op.create_table(
        "pending_aggregates",
        sa.Column(
            "kind",
            sa.String(16),
            primary_key=True,
            comment="`provider`, `topic` or `image`: the table of the entity.",
        ),
        sa.Column(
            "entity_id", sa.Integer(), primary_key=True, comment="The entity's id in that table."
        ),
        sa.PrimaryKeyConstraint("kind", "entity_id", name="pk_pending_aggregates"),
        comment=PENDING,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    _backfill()


def _backfill() -> None:
    op.execute(
        "UPDATE articles SET provider_name = (SELECT p.document_name FROM providers p "
        "WHERE p.id = articles.provider_id) WHERE provider_id IS NOT NULL"
    )
    op.execute(
        "UPDATE article_topics SET name = (SELECT t.name FROM topics t "
        "WHERE t.id = article_topics.topic_id)"
    )
    for column in ("width", "height"):
        op.execute(
            f"UPDATE article_images SET {column} = (SELECT i.{column} FROM images i "
            "WHERE i.id = article_images.image_id)"
        )
    op.execute(
        sa.text(
            "INSERT INTO article_provider_images (article_id, image_id, position, width, height) "
            "SELECT a.id, d.image_id, d.position, i.width, i.height FROM articles a "
            "JOIN provider_document_images d ON d.provider_id = a.provider_id "
            "JOIN images i ON i.id = d.image_id WHERE a.is_stub = :no"
        ).bindparams(no=False)
    )
    op.execute("UPDATE sources SET taxonomy_stamp = NULL")
    # Every file is read and written again by the next run (under the new rules version),
    # so the backfilled values above last only until then: no manual step after upgrading.
    op.execute("UPDATE source_files SET content_hash = '', size = NULL, mtime_ns = NULL")


def downgrade() -> None:
    op.drop_table("pending_aggregates")
    op.drop_table("article_provider_images")
    op.drop_column("source_topics", "parent_name")
    op.drop_column("article_images", "height")
    op.drop_column("article_images", "width")
    op.drop_column("article_topics", "name")
    op.drop_column("articles", "provider_name")
