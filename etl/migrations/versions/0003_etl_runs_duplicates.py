"""etl_runs.duplicates: files that lost to another file with the same canonical URL.

With it, a run's counts add up: files_seen = skipped unchanged + inserted + updated
+ unchanged + duplicates + rejected.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        batch_op.drop_column("duplicates")
