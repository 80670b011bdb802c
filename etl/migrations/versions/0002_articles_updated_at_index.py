"""Index articles.updated_at for downstream services that poll for changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 03:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
# Its downgrade drops only what is derived from other rows (etl db downgrade asks no --yes).
DOWNGRADE_KEEPS_DATA = True
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.create_index("ix_articles_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_index("ix_articles_updated_at")
