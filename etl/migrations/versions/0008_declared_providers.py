"""Declared providers: a source's organization files name providers and give their logos.

- ``providers.document_name``: the name documents give (what ``name`` held until now);
  ``name`` becomes the declared name while a source declares the provider.
- ``providers.named_by_source``: true while a source declares it.
- ``provider_document_images``: the logos documents give, kept apart so a declaration
  can replace them in ``provider_images`` and give them back when withdrawn. Filled
  from ``provider_images``, which only documents wrote before this revision.
- Every source's taxonomy is read again by its next run (the stamp is cleared), and a
  downgrade empties ``source_topics`` and ``source_providers``, which the code of 0007
  does not maintain.

Columns are added in place (no table copy on SQLite: a copy of ``providers`` would
cascade deletes into ``provider_images``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The descriptions as of this revision (etl/db/schema/ holds the current ones).
NAME = (
    "Display name. A source's organization file (`_data/organizations`) names it when "
    "one declares it (the smallest declared name if sites disagree); otherwise it is "
    "document_name."
)
OLD_NAME = (
    "Display name, URL-decoded and whitespace-collapsed. When documents disagree, the "
    "smallest name (by code point) wins."
)
DOCUMENT_NAME = (
    "The name documents give, URL-decoded and whitespace-collapsed: an article's own "
    "document beats a related snippet, and among equals the smallest name (by code "
    "point) wins. NULL for a provider only an organization file names."
)
NAMED_BY_SOURCE = (
    "True while a source declares the provider (source_providers): its name and logos "
    "are then the declared ones."
)
PROVIDER_IMAGES = (
    "Provider logos: those of the organization files that declare the provider "
    "(source_providers), else those of its documents (provider_document_images)."
)
OLD_PROVIDER_IMAGES = "Provider logos (`provider.images` of the provider's documents)."
POSITION = "0-based index in the `images` list it comes from (the smallest)."
OLD_POSITION = "0-based index in the document's `provider.images` list."


def _comments() -> bool:
    return op.get_bind().dialect.name != "sqlite"


def upgrade() -> None:
    op.add_column("providers", sa.Column("document_name", sa.Text(), comment=DOCUMENT_NAME))
    op.add_column(
        "providers",
        sa.Column(
            "named_by_source",
            sa.Boolean(),
            nullable=False,
            server_default="0",
            comment=NAMED_BY_SOURCE,
        ),
    )
    op.execute("UPDATE providers SET document_name = name")
    # Read every site's taxonomy again: declarations now name providers.
    op.execute("UPDATE sources SET taxonomy_stamp = NULL")
    op.create_table(
        "provider_document_images",
        sa.Column(
            "provider_id",
            sa.Integer(),
            sa.ForeignKey(
                "providers.id",
                name="fk_provider_document_images_provider_id_providers",
                ondelete="CASCADE",
            ),
            primary_key=True,
            comment="The provider (providers.id).",
        ),
        sa.Column(
            "image_id",
            sa.Integer(),
            sa.ForeignKey("images.id", name="fk_provider_document_images_image_id_images"),
            primary_key=True,
            comment="The logo image (images.id).",
        ),
        sa.Column(
            "position",
            sa.Integer(),
            nullable=False,
            comment="0-based index in a document's `provider.images` list (the smallest).",
        ),
        comment="Provider logos as documents give them (`provider.images`); "
        "provider_images holds these unless a source declares the provider.",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index(
        "ix_provider_document_images_image_id", "provider_document_images", ["image_id"]
    )
    op.execute(
        "INSERT INTO provider_document_images (provider_id, image_id, position) "
        "SELECT provider_id, image_id, position FROM provider_images"
    )
    if _comments():
        _describe(NAME, PROVIDER_IMAGES, POSITION)


def downgrade() -> None:
    # The code of 0007 knows nothing of declarations (its clean-up would find providers
    # and topics only a taxonomy row refers to): the taxonomy rows go, and are read
    # again from the files after the next upgrade.
    op.execute("DELETE FROM source_topics")
    op.execute("DELETE FROM source_providers")
    op.execute("UPDATE sources SET taxonomy_stamp = NULL")
    # provider_images goes back to what documents gave.
    declared = sa.text("SELECT id FROM providers WHERE named_by_source = :yes")
    op.execute(
        sa.text(f"DELETE FROM provider_images WHERE provider_id IN ({declared.text})").bindparams(
            yes=True
        )
    )
    op.execute(
        sa.text(
            "INSERT INTO provider_images (provider_id, image_id, position) "
            "SELECT provider_id, image_id, position FROM provider_document_images "
            f"WHERE provider_id IN ({declared.text})"
        ).bindparams(yes=True)
    )
    op.drop_table("provider_document_images")
    # The documents' name comes back as the only one.
    op.execute("UPDATE providers SET name = document_name WHERE document_name IS NOT NULL")
    op.drop_column("providers", "named_by_source")
    op.drop_column("providers", "document_name")
    if _comments():
        _describe(OLD_NAME, OLD_PROVIDER_IMAGES, OLD_POSITION)


def _describe(name: str, provider_images: str, position: str) -> None:
    op.alter_column(
        "providers", "name", existing_type=sa.Text(), existing_nullable=False, comment=name
    )
    op.alter_column(
        "provider_images",
        "position",
        existing_type=sa.Integer(),
        existing_nullable=False,
        comment=position,
    )
    op.create_table_comment("provider_images", provider_images)
