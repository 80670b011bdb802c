"""Counts per transaction: a run's counts are added by each transaction as it commits.

- ``etl_run_articles`` and ``etl_run_links`` are dropped: they held, for the end of a
  run, the state of what it changed, and the counts are now made by each transaction
  from the rows it touches (etl.load.tally). Scratch rows left by running runs mean nothing
  to the new code, so nothing is kept.
- The descriptions of ``etl_runs`` and its counters say what they count now.

The downgrade creates the scratch tables again (empty: the counts of the runs that are
still going when it runs are then made the old way only for what they change after it).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 01:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from etl.db.comments import set_comments

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

# The descriptions of etl_runs and its counters as of revision 0009 (the new ones are
# etl/db/schema/'s).
OLD_DESCRIPTIONS = {
    "articles_inserted": (
        "Net: full articles after the run that were not before it (new, a stub filled, or a "
        "tombstone back)."
    ),
    "articles_updated": "Net: full articles before and after the run whose content changed.",
    "articles_unchanged": (
        "Articles the run's files describe (or it touched) that are as they were."
    ),
    "articles_removed": (
        "Net: full articles before the run that no file describes after it (tombstones, or stubs "
        "when links point at them)."
    ),
    "stubs_created": "Net: stubs after the run that were not stubs before it.",
    "stubs_deleted": (
        "Net: stubs before the run that are gone (no link references them) after it."
    ),
    "links_written": (
        "The links (related_articles rows) of the articles the run inserted or updated."
    ),
    "duplicates": (
        "Files read by the run that lose their URL to another file (the later `publishedDateTime` "
        "wins; ties: the greater source name, then path)."
    ),
    "links_added": "related_articles rows that exist after the run and did not before it.",
    "links_removed": "related_articles rows that existed before the run and do not after it.",
}
OLD_TABLE = "One row per `etl run`."


# The scratch tables as of revision 0009, for the downgrade.
RUN_ARTICLES = (
    "Internal scratch rows of running runs: each changed article's state before the run (net "
    "counts)."
)
RUN_LINKS = (
    "Internal scratch rows of running runs: the links of changed articles before the run (net "
    "counts)."
)


def upgrade() -> None:
    op.drop_table("etl_run_links")
    op.drop_table("etl_run_articles")
    set_comments(op, {"etl_runs": list(OLD_DESCRIPTIONS)})


def downgrade() -> None:
    op.create_table(
        "etl_run_articles",
        sa.Column("run_id", sa.Integer(), nullable=False, comment="The running run."),
        sa.Column(
            "article_id", sa.Integer(), nullable=False, comment="An article the run changed."
        ),
        sa.Column(
            "before_state",
            sa.String(length=16),
            nullable=False,
            comment="Its state before the run first changed it: absent, stub, tombstone or full.",
        ),
        sa.Column("before_fingerprint", sa.String(length=64), comment="Its fingerprint then."),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["etl_runs.id"],
            name=op.f("fk_etl_run_articles_run_id_etl_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "article_id", name=op.f("pk_etl_run_articles")),
        comment=RUN_ARTICLES,
        **MYSQL,
    )
    op.create_table(
        "etl_run_links",
        sa.Column("run_id", sa.Integer(), nullable=False, comment="The running run."),
        sa.Column(
            "article_id", sa.Integer(), nullable=False, comment="An article the run changed."
        ),
        sa.Column(
            "related_article_id",
            sa.Integer(),
            nullable=False,
            comment="A link target it had before the run first changed it.",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["etl_runs.id"],
            name=op.f("fk_etl_run_links_run_id_etl_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "article_id", "related_article_id", name=op.f("pk_etl_run_links")
        ),
        comment=RUN_LINKS,
        **MYSQL,
    )
    if op.get_context().dialect.name == "sqlite":
        return  # no comments
    for name, description in OLD_DESCRIPTIONS.items():
        op.alter_column(
            "etl_runs",
            name,
            existing_type=sa.Integer(),
            existing_nullable=False,
            existing_server_default="0",
            comment=description,
        )
    op.create_table_comment("etl_runs", OLD_TABLE)
