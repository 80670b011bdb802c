"""SQLite's search index where Datasette and sqlite-utils find it, over live full articles only.

Datasette (``_search=``) and sqlite-utils (``sqlite-utils search``) find the FTS table of
``articles`` by the spelling ``content="articles"`` (or ``content=[articles]``) in its
``CREATE VIRTUAL TABLE``; 0009 spelled it ``content='articles'``, so neither found it.
Both search the whole FTS table and join its rowid to ``articles``' (= ``articles.id``,
an ``INTEGER PRIMARY KEY``) with no filter of their own, so the index now holds exactly
what ``etl search`` returns: live full articles (``NOT is_stub AND NOT is_removed``).
Stubs and removed articles (documents that say ``removed: true``, tombstones) are not
indexed, and an article enters or leaves the index when it becomes or stops being one.

- The virtual table is created again with the new spelling and filled from the live
  full articles (not FTS5's ``'rebuild'``, which would index every row of ``articles``).
- Its ``rank`` is ``bm25(10.0, 1.0)``, the weights ``etl search`` uses, so a client that
  orders by ``rank`` (``sqlite-utils search``) ranks a title match above an excerpt match.
- The triggers keep their names; each indexes or un-indexes a row by its flags. An
  external-content FTS5 ``'delete'`` must be given the values that were indexed: a row
  is un-indexed only if it was live, with its old title and excerpt, which are what was
  indexed (a change of either while live re-indexes it).

PostgreSQL and MariaDB are unchanged (the tools read SQLite only). The downgrade puts
back 0009's table, triggers and its full index (every row of ``articles``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
# Its downgrade drops only what is derived from other rows (etl db downgrade asks no --yes).
DOWNGRADE_KEEPS_DATA = True
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROP = [
    "DROP TRIGGER IF EXISTS articles_fts_insert",
    "DROP TRIGGER IF EXISTS articles_fts_update",
    "DROP TRIGGER IF EXISTS articles_fts_delete",
    "DROP TABLE IF EXISTS articles_fts",
]

_UPGRADE = [
    *_DROP,
    'CREATE VIRTUAL TABLE articles_fts USING fts5(title, excerpt, content="articles", '
    'content_rowid="id", tokenize="unicode61")',
    "INSERT INTO articles_fts (articles_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)')",
    "CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles FOR EACH ROW "
    "WHEN NOT NEW.is_stub AND NOT NEW.is_removed BEGIN "
    "INSERT INTO articles_fts (rowid, title, excerpt) VALUES (NEW.id, NEW.title, NEW.excerpt); "
    "END",
    "CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, excerpt, is_stub, is_removed "
    "ON articles FOR EACH ROW WHEN OLD.title IS NOT NEW.title OR OLD.excerpt IS NOT NEW.excerpt "
    "OR OLD.is_stub IS NOT NEW.is_stub OR OLD.is_removed IS NOT NEW.is_removed BEGIN "
    "INSERT INTO articles_fts (articles_fts, rowid, title, excerpt) "
    "SELECT 'delete', OLD.id, OLD.title, OLD.excerpt WHERE NOT OLD.is_stub AND NOT OLD.is_removed; "
    "INSERT INTO articles_fts (rowid, title, excerpt) "
    "SELECT NEW.id, NEW.title, NEW.excerpt WHERE NOT NEW.is_stub AND NOT NEW.is_removed; "
    "END",
    "CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles FOR EACH ROW "
    "WHEN NOT OLD.is_stub AND NOT OLD.is_removed BEGIN "
    "INSERT INTO articles_fts (articles_fts, rowid, title, excerpt) "
    "VALUES ('delete', OLD.id, OLD.title, OLD.excerpt); "
    "END",
    "INSERT INTO articles_fts (rowid, title, excerpt) "
    "SELECT id, title, excerpt FROM articles WHERE NOT is_stub AND NOT is_removed",
]

# 0009's statements, frozen.
_DOWNGRADE = [
    *_DROP,
    "CREATE VIRTUAL TABLE articles_fts USING fts5("
    "title, excerpt, content='articles', content_rowid='id', tokenize='unicode61')",
    "CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles FOR EACH ROW BEGIN "
    "INSERT INTO articles_fts (rowid, title, excerpt) VALUES (NEW.id, NEW.title, NEW.excerpt); "
    "END",
    "CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, excerpt ON articles "
    "FOR EACH ROW WHEN OLD.title IS NOT NEW.title OR OLD.excerpt IS NOT NEW.excerpt BEGIN "
    "INSERT INTO articles_fts (articles_fts, rowid, title, excerpt) "
    "VALUES ('delete', OLD.id, OLD.title, OLD.excerpt); "
    "INSERT INTO articles_fts (rowid, title, excerpt) VALUES (NEW.id, NEW.title, NEW.excerpt); "
    "END",
    "CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles FOR EACH ROW BEGIN "
    "INSERT INTO articles_fts (articles_fts, rowid, title, excerpt) "
    "VALUES ('delete', OLD.id, OLD.title, OLD.excerpt); "
    "END",
    "INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')",
]


def _run(statements: list[str]) -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    _run(_UPGRADE)


def downgrade() -> None:
    _run(_DOWNGRADE)
