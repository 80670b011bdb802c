"""The change feed: article_changes, written by triggers on articles; canonical SQLite times.

Every INSERT, UPDATE and DELETE on ``articles`` is recorded by database triggers,
whoever writes (the loader, a prune, a DBA), so the feed does not depend on the
load code. An UPDATE is recorded only when a column a consumer sees changed, or
the fingerprint was replaced by another (the document changed, perhaps only its
topics, images or links); not for ``created_at``, ``updated_at`` or the
fingerprint being cleared or refilled (the stub rebuild mark) alone. ``op`` is the state
after the change: ``remove`` when ``is_removed`` is true, else ``upsert``;
``delete`` for a deleted row. The run id comes from the writer transaction:
PostgreSQL ``set_config('etl.run_id', ..., true)``, MariaDB ``@etl_run_id``;
on SQLite (triggers cannot read a connection's temporary state) the writer
transaction fills it in before it commits. PostgreSQL triggers are per
statement, over transition tables, and send ``NOTIFY news_etl`` with the newest
cursor (delivered at commit). A migration that adds an article column consumers
see must recreate the update triggers with it (``_UPDATE_COLUMNS``).

SQLite timestamps not in the canonical form ``YYYY-MM-DD HH:MM:SS.ffffff``
(rows given the server default ``CURRENT_TIMESTAMP``, say) are rewritten to it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 03:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import etl.db.schema

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The article columns whose change is a change for consumers (not fingerprint,
# created_at, updated_at: internal marks and clocks).
_UPDATE_COLUMNS = (
    "url",
    "web_url",
    "original_url",
    "amp_web_url",
    "cdn_amp_web_url",
    "title",
    "excerpt",
    "body",
    "category",
    "type",
    "published_at",
    "quality",
    "heat",
    "is_published",
    "is_removed",
    "is_stub",
    "provider_id",
    "featured_content",
    "secured",
    "extra",
    "source_path",
)
_JSON_COLUMNS = {"featured_content", "extra"}  # PostgreSQL json has no equality

# Every UTCDateTime column of the tables before this revision.
_TIMESTAMP_COLUMNS = {
    "providers": ("created_at", "updated_at"),
    "images": ("created_at", "updated_at"),
    "topics": ("created_at", "updated_at"),
    "articles": ("published_at", "created_at", "updated_at"),
    "related_articles": ("snippet_published_at",),
    "source_files": ("published_at", "loaded_at"),
    "etl_runs": ("started_at", "finished_at"),
    "rejected_documents": ("rejected_at",),
}

_INSERT = "INSERT INTO article_changes (op, article_id, url, is_stub, run_id, committed_at)"
_EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "article_changes",
        sa.Column(
            "cursor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("is_stub", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("committed_at", etl.db.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cursor", name=op.f("pk_article_changes")),
        sqlite_autoincrement=True,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_table(
        "change_feed_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("compacted_through", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("compacted_at", etl.db.schema.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_feed_state")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.execute("INSERT INTO change_feed_state (id, compacted_through) VALUES (1, 0)")
    backend = op.get_context().dialect.name
    if backend == "postgresql":
        _create_postgresql_triggers()
    elif backend in ("mysql", "mariadb"):
        _create_mysql_triggers()
    else:
        _normalize_sqlite_timestamps()
        _create_sqlite_triggers()


def downgrade() -> None:
    backend = op.get_context().dialect.name
    for event in _EVENTS:
        if backend == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS article_changes_{event} ON articles")
            op.execute(f"DROP FUNCTION IF EXISTS etl_article_changes_{event}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS article_changes_{event}")
    op.drop_table("change_feed_state")
    op.drop_table("article_changes")


def _changed(old: str, new: str, backend: str) -> str:
    """SQL true when rows ``old`` and ``new`` differ for a consumer.

    A consumer-visible column differs, or the document changed: one fingerprint
    replaced by another (its topics, images or links may be all that changed).
    Clearing the fingerprint (the load's "rebuild this stub" mark) and a stub's
    rebuild that refills it are not changes by themselves.
    """
    document = (
        f"({old}.fingerprint IS NOT NULL AND {new}.fingerprint IS NOT NULL "
        f"AND {old}.fingerprint <> {new}.fingerprint)"
    )
    if backend == "postgresql":

        def column(row: str, name: str) -> str:
            return f"{row}.{name}::text" if name in _JSON_COLUMNS else f"{row}.{name}"

        olds = ", ".join(column(old, name) for name in _UPDATE_COLUMNS)
        news = ", ".join(column(new, name) for name in _UPDATE_COLUMNS)
        return f"(ROW({olds}) IS DISTINCT FROM ROW({news}) OR {document})"
    if backend == "mysql":
        same = " AND ".join(f"{old}.{c} <=> {new}.{c}" for c in _UPDATE_COLUMNS)
        return f"(NOT ({same}) OR {document})"
    return " OR ".join([*(f"{old}.{c} IS NOT {new}.{c}" for c in _UPDATE_COLUMNS), document])


def _create_postgresql_triggers() -> None:
    run_id = "NULLIF(current_setting('etl.run_id', true), '')::integer"
    selects = {
        "insert": (
            "new_rows",
            f"SELECT CASE WHEN n.is_removed THEN 'remove' ELSE 'upsert' END, n.id, n.url, "
            f"n.is_stub, {run_id}, statement_timestamp() FROM new_rows n ORDER BY n.id",
        ),
        "update": (
            "old_rows",
            f"SELECT CASE WHEN n.is_removed THEN 'remove' ELSE 'upsert' END, n.id, n.url, "
            f"n.is_stub, {run_id}, statement_timestamp() "
            f"FROM new_rows n JOIN old_rows o ON o.id = n.id "
            f"WHERE {_changed('o', 'n', 'postgresql')} ORDER BY n.id",
        ),
        "delete": (
            "old_rows",
            f"SELECT 'delete', o.id, o.url, o.is_stub, {run_id}, statement_timestamp() "
            f"FROM old_rows o ORDER BY o.id",
        ),
    }
    for event, (_, query) in selects.items():
        op.execute(
            f"CREATE FUNCTION etl_article_changes_{event}() RETURNS trigger "
            "LANGUAGE plpgsql AS $body$\n"
            "BEGIN\n"
            f"  {_INSERT}\n  {query};\n"
            "  IF FOUND THEN\n"
            "    PERFORM pg_notify('news_etl', currval('article_changes_cursor_seq')::text);\n"
            "  END IF;\n"
            "  RETURN NULL;\n"
            "END\n"
            "$body$"
        )
        tables = {
            "insert": "NEW TABLE AS new_rows",
            "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
            "delete": "OLD TABLE AS old_rows",
        }[event]
        op.execute(
            f"CREATE TRIGGER article_changes_{event} AFTER {event.upper()} ON articles "
            f"REFERENCING {tables} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION etl_article_changes_{event}()"
        )


def _create_mysql_triggers() -> None:
    now = "UTC_TIMESTAMP()"
    op.execute(
        "CREATE TRIGGER article_changes_insert AFTER INSERT ON articles FOR EACH ROW "
        f"{_INSERT} VALUES (IF(NEW.is_removed, 'remove', 'upsert'), NEW.id, NEW.url, "
        f"NEW.is_stub, @etl_run_id, {now})"
    )
    op.execute(
        "CREATE TRIGGER article_changes_update AFTER UPDATE ON articles FOR EACH ROW "
        f"{_INSERT} SELECT IF(NEW.is_removed, 'remove', 'upsert'), NEW.id, NEW.url, "
        f"NEW.is_stub, @etl_run_id, {now} FROM DUAL "
        f"WHERE {_changed('OLD', 'NEW', 'mysql')}"
    )
    op.execute(
        "CREATE TRIGGER article_changes_delete AFTER DELETE ON articles FOR EACH ROW "
        f"{_INSERT} VALUES ('delete', OLD.id, OLD.url, OLD.is_stub, @etl_run_id, {now})"
    )


# SQLite's clock in the canonical form: 'now' is milliseconds, padded to six digits.
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"


def _create_sqlite_triggers() -> None:
    state = "CASE WHEN NEW.is_removed THEN 'remove' ELSE 'upsert' END"
    op.execute(
        "CREATE TRIGGER article_changes_insert AFTER INSERT ON articles FOR EACH ROW BEGIN "
        f"{_INSERT} VALUES ({state}, NEW.id, NEW.url, NEW.is_stub, NULL, {_SQLITE_NOW}); END"
    )
    op.execute(
        "CREATE TRIGGER article_changes_update AFTER UPDATE ON articles FOR EACH ROW "
        f"WHEN {_changed('OLD', 'NEW', 'sqlite')} BEGIN "
        f"{_INSERT} VALUES ({state}, NEW.id, NEW.url, NEW.is_stub, NULL, {_SQLITE_NOW}); END"
    )
    op.execute(
        "CREATE TRIGGER article_changes_delete AFTER DELETE ON articles FOR EACH ROW BEGIN "
        f"{_INSERT} VALUES ('delete', OLD.id, OLD.url, OLD.is_stub, NULL, {_SQLITE_NOW}); END"
    )


def _normalize_sqlite_timestamps() -> None:
    """Rewrite stored times not in the canonical form (a no-op on rows this ETL wrote)."""
    for table, columns in _TIMESTAMP_COLUMNS.items():
        for column in columns:
            canonical = f"strftime('%Y-%m-%d %H:%M:%f', {column}) || '000'"
            op.execute(
                f"UPDATE {table} SET {column} = {canonical} "
                f"WHERE {column} IS NOT NULL "
                f"AND (length({column}) <> 26 OR substr({column}, 11, 1) <> ' ') "
                f"AND strftime('%f', {column}) IS NOT NULL"
            )
