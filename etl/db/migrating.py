"""What a migration command would do, before it does it: the SQL a database lacks
(``etl db upgrade --sql``) and whether a downgrade drops data (``etl db downgrade``).

A migration whose downgrade keeps every row (it drops only an index or a view) says so
with ``DOWNGRADE_KEEPS_DATA = True`` in its module; any other downgrade, including those
of migrations that do not say, counts as dropping data.

Also the SQL that makes an empty database's schema, which ``etl.db.head_schema`` keeps
per dialect: ``python -m etl.db.migrating`` records it again after a migration is added.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from etl.db import head_schema
from etl.db.database import ConfigurationError, alembic_config
from etl.db.schema import SCHEMA_REVISION

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def downgraded(current: str | None, target: str) -> list[str]:
    """The revisions a downgrade from ``current`` to ``target`` undoes, newest first."""
    if current is None or current == target:
        return []
    scripts = _scripts()
    if target == "base":
        lower = "base"
    else:
        script = scripts.get_revision(target)
        if script is None:
            raise ConfigurationError(f"no such revision {target!r}")
        lower = script.revision
    return [
        script.revision
        for script in scripts.iterate_revisions(current, lower)
        if script.revision != lower
    ]


def dropping_data(revisions: list[str]) -> list[str]:
    """Of ``revisions``, those whose downgrade drops data (tables, columns, rows)."""
    scripts = _scripts()
    dropping = []
    for revision in revisions:
        script = scripts.get_revision(revision)
        if not getattr(script.module, "DOWNGRADE_KEEPS_DATA", False):
            dropping.append(revision)
    return dropping


def pending_sql(url: str | URL | None, start: str | None, target: str = "head") -> str | None:
    """The SQL (Alembic offline mode) that takes a database from ``start`` (None: an
    empty one) to ``target``; None when there is nothing to do."""
    from alembic import command

    scripts = _scripts()
    resolved = scripts.get_revision(target) if target != "head" else None
    head = resolved.revision if resolved is not None else scripts.get_current_head()
    if start == head:
        return None
    config = alembic_config(url=url)
    buffer = io.StringIO()
    config.output_buffer = buffer
    with redirect_stdout(buffer):
        command.upgrade(config, f"{start}:{target}" if start else target, sql=True)
    return buffer.getvalue()


# --- the head schema's recordings (etl.db.head_schema) ---------------------------------

# Recorded dialect -> the URL whose dialect Alembic renders it for: MariaDB's is the
# mysql dialect's rendering, which is what an online upgrade through a mysql:// URL runs.
HEAD_DIALECT_URLS = {
    "postgresql": "postgresql+psycopg://",
    "mariadb": "mysql+pymysql://",
    "sqlite": "sqlite://",
}


class _Statements:
    """An output buffer for Alembic's offline mode that keeps each statement apart."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def write(self, text: str) -> None:
        statement = text.strip()
        # Comments (which migration) and the transaction's BEGIN and COMMIT: create()
        # runs the statements in a transaction of its own.
        if not statement or statement.startswith("--") or statement in ("BEGIN;", "COMMIT;"):
            return
        self.statements.append(statement.removesuffix(";"))

    def flush(self) -> None:
        pass


def head_statements(dialect: str) -> list[str]:
    """The statements that take an empty ``dialect`` database to the head revision."""
    from alembic import command

    config = alembic_config(url=HEAD_DIALECT_URLS[dialect])
    buffer = _Statements()
    config.output_buffer = buffer  # type: ignore[assignment]
    command.upgrade(config, "head", sql=True)
    return buffer.statements


def record_head_schema() -> list[Path]:
    """Record :func:`head_statements` for every dialect of ``etl.db.head_schema``."""
    written = []
    for dialect in head_schema.DIALECTS:
        path = head_schema.path_of(dialect)
        path.parent.mkdir(exist_ok=True)
        data = {"revision": SCHEMA_REVISION, "statements": head_statements(dialect)}
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in record_head_schema():
        print(written_path)
