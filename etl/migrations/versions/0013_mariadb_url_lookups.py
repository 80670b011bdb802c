"""MariaDB: an index that finds articles and images by URL.

The unique keys on ``articles.url`` and ``images.url`` (``TEXT``) are, on MariaDB, "long
unique" keys kept as a hash, which its optimizer never uses to find a row: every lookup
by URL read the whole table, so a load's time grew with the square of the articles
(a full load of ten times the corpus spent 21 s of its 85 in them). This adds a B-tree
index on the first 255 characters of each URL, which lookups by URL use (and then
compare the whole value). PostgreSQL and SQLite find rows through the unique key
itself and get nothing.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# index -> table, as of this revision (etl.db.schema.news.MARIADB_URL_LOOKUPS).
LOOKUPS = {"ix_articles_url_lookup": "articles", "ix_images_url_lookup": "images"}
PREFIX = 255  # characters: 1,020 bytes in utf8mb4, under InnoDB's 3,072-byte key limit


def _mariadb() -> bool:
    return op.get_context().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if _mariadb():
        for index, table in LOOKUPS.items():
            op.execute(f"CREATE INDEX {index} ON {table} (url({PREFIX}))")


def downgrade() -> None:
    if _mariadb():
        for index, table in LOOKUPS.items():
            op.execute(f"DROP INDEX {index} ON {table}")
