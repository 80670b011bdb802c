"""Full-text search over articles' title and excerpt, maintained by the database itself.

- SQLite: an external-content FTS5 table ``articles_fts(title, excerpt)`` (rowid =
  articles.id; it stores no copy of the text), filled from the existing rows and kept
  in sync by triggers on ``articles``. The update trigger fires only when title or
  excerpt change, so the load's other updates cost nothing.
- PostgreSQL: a GIN index ``ix_articles_search`` over a weighted ``tsvector``
  expression of title (weight A) and excerpt (weight B). No trigger and no column:
  PostgreSQL maintains the index, and a query uses it when it repeats the expression.
- MariaDB: InnoDB ``FULLTEXT`` indexes ``ft_articles_search (search_title,
  search_excerpt)`` (what a search matches) and ``ft_articles_search_title
  (search_title)`` (to rank title matches first), maintained by InnoDB at commit. The
  two columns are stored, invisible (not in ``SELECT *``) generated columns: title and
  excerpt in lowercase. A FULLTEXT index of the binary-collated columns themselves would
  be case-sensitive: InnoDB indexes the words of rows written after the index exists as
  they are written, and compares the query's words byte for byte. InnoDB creates one
  FULLTEXT index per ALTER.

None of these is modelled in etl.db.schema (each backend's is a different kind of
object); ``etl.db.schema.SEARCH_TABLES`` and ``SEARCH_INDEXES`` name them for Alembic's
autogenerate. The statements are frozen here as of this revision (etl/query/fulltext.py
holds the queries; its PostgreSQL expression must stay the one indexed here).

A later migration that rebuilds ``articles`` on SQLite by a table copy (batch mode)
drops the triggers on it, these and the change feed's alike: it must create them again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
# Its downgrade drops only what is derived from other rows (etl db downgrade asks no --yes).
DOWNGRADE_KEEPS_DATA = True
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE = [
    "CREATE VIRTUAL TABLE articles_fts USING fts5("
    "title, excerpt, content='articles', content_rowid='id', tokenize='unicode61')",
    "CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles FOR EACH ROW BEGIN "
    "INSERT INTO articles_fts (rowid, title, excerpt) VALUES (NEW.id, NEW.title, NEW.excerpt); "
    "END",
    # The FTS5 'delete' command removes the old row's tokens: it must be given the values
    # that were indexed, which the triggers guarantee.
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
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS articles_fts_insert",
    "DROP TRIGGER IF EXISTS articles_fts_update",
    "DROP TRIGGER IF EXISTS articles_fts_delete",
    "DROP TABLE IF EXISTS articles_fts",
]

_POSTGRESQL_DOCUMENT = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(excerpt, '')), 'B')"
)
_POSTGRESQL = [f"CREATE INDEX ix_articles_search ON articles USING gin (({_POSTGRESQL_DOCUMENT}))"]
_POSTGRESQL_DOWN = ["DROP INDEX IF EXISTS ix_articles_search"]

_MARIADB_TEXT = "TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
_MARIADB = [
    f"ALTER TABLE articles "
    f"ADD COLUMN search_title {_MARIADB_TEXT} AS (LOWER(title)) STORED INVISIBLE "
    "COMMENT 'Search index only (FULLTEXT): the title in lowercase.', "
    f"ADD COLUMN search_excerpt {_MARIADB_TEXT} AS (LOWER(excerpt)) STORED INVISIBLE "
    "COMMENT 'Search index only (FULLTEXT): the excerpt in lowercase.'",
    "ALTER TABLE articles ADD FULLTEXT INDEX ft_articles_search (search_title, search_excerpt)",
    "ALTER TABLE articles ADD FULLTEXT INDEX ft_articles_search_title (search_title)",
]
_MARIADB_DOWN = [
    "ALTER TABLE articles DROP INDEX ft_articles_search_title",
    "ALTER TABLE articles DROP INDEX ft_articles_search",
    "ALTER TABLE articles DROP COLUMN search_excerpt, DROP COLUMN search_title",
]


def _statements(upgrade: bool) -> list[str]:
    backend = op.get_context().dialect.name
    if backend == "postgresql":
        return _POSTGRESQL if upgrade else _POSTGRESQL_DOWN
    if backend in ("mysql", "mariadb"):
        return _MARIADB if upgrade else _MARIADB_DOWN
    return _SQLITE if upgrade else _SQLITE_DOWN


def upgrade() -> None:
    for statement in _statements(upgrade=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(upgrade=False):
        op.execute(statement)
