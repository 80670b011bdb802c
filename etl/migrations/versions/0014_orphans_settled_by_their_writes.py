"""Orphans: deleted once here, then by the writes that make them.

Before this revision, every run ended by sweeping the providers, topics and images that
nothing references. Now the write that takes an entity's last reference deletes it
(``etl.load.aggregates.recompute``), so no run sweeps. A run that a version before this
one stopped after writing a taxonomy, and before its end, could leave such entities
behind: they are deleted here, as that version's next run would have. Nothing else
changes, and a downgrade has nothing to undo.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOWNGRADE_KEEPS_DATA = True

# table -> what may reference its rows (table, column), as of this revision.
REFERENCES = {
    "topics": [
        ("article_topics", "topic_id"),
        ("source_topics", "topic_id"),
        ("source_topics", "parent_topic_id"),
    ],
    "providers": [("articles", "provider_id"), ("source_providers", "provider_id")],
    "images": [
        ("article_images", "image_id"),
        ("article_provider_images", "image_id"),
        ("provider_images", "image_id"),
        ("provider_document_images", "image_id"),
    ],
}
LOGOS = ("provider_images", "provider_document_images")  # a provider's own rows


def _unreferenced(table: str) -> str:
    return " AND ".join(
        f"NOT EXISTS (SELECT 1 FROM {other} WHERE {other}.{column} = {table}.id)"
        for other, column in REFERENCES[table]
    )


def upgrade() -> None:
    op.execute(f"DELETE FROM topics WHERE {_unreferenced('topics')}")
    # MariaDB cannot delete from a table its own subquery reads: the ids go through a
    # derived table it materializes.
    orphans = f"SELECT id FROM (SELECT id FROM providers WHERE {_unreferenced('providers')}) o"
    for table in LOGOS:
        op.execute(f"DELETE FROM {table} WHERE provider_id IN ({orphans})")
    op.execute(f"DELETE FROM providers WHERE id IN ({orphans})")
    op.execute(f"DELETE FROM images WHERE {_unreferenced('images')}")


def downgrade() -> None:
    pass
