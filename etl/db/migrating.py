"""What a migration command would do, before it does it: the SQL a database lacks
(``etl db upgrade --sql``) and whether a downgrade drops data (``etl db downgrade``).

A migration whose downgrade keeps every row (it drops only an index or a view) says so
with ``DOWNGRADE_KEEPS_DATA = True`` in its module; any other downgrade, including those
of migrations that do not say, counts as dropping data.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from etl.db.database import ConfigurationError, alembic_config

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
