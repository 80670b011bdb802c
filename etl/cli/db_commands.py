"""``etl db ...``: schema migrations (Alembic): upgrade, downgrade, current, history."""

from __future__ import annotations

import sys

import click
from sqlalchemy import Engine

from etl.cli.common import EXIT_USAGE, HINT, fail, guarded, with_engine
from etl.cli.group import main
from etl.cli.options import DATABASE, settings, shared
from etl.db import database, migrating


def _current(database_url: str | None, connect_timeout: float) -> str | None:
    """The database's revision; None for an empty database or a missing SQLite file
    (which is not created)."""
    path = guarded(lambda: database.sqlite_file(database_url))
    if path is not None and not path.exists():
        return None
    return with_engine(database_url, connect_timeout, database.current_revision, read_only=True)


@main.group(short_help="Schema migrations (Alembic): upgrade, downgrade, current, history.")
@shared(*DATABASE)
def db() -> None:
    """Schema migrations (Alembic): upgrade, downgrade, current, history."""


@db.command("upgrade", short_help="Upgrade the schema (default: to the newest revision).")
@click.argument("revision", default="head")
@click.option(
    "--sql",
    is_flag=True,
    help="Print the SQL the database lacks instead of running it (Alembic offline mode).",
)
@click.option(
    "--from",
    "start",
    metavar="REV",
    help="With --sql: the revision the database is at (base: empty), without connecting.",
)
@shared(*DATABASE)
def db_upgrade(revision: str, sql: bool, start: str | None) -> None:
    """Upgrade the schema to REVISION (default: head).

    With --sql, print the SQL from the database's current revision (or --from REV) to
    REVISION, for a DBA to apply; nothing when the database is current.
    """
    options = settings()
    url, timeout = options.database_url, options.connect_timeout
    if start is not None and not sql:
        raise click.UsageError("--from REV goes with --sql")
    if sql:
        ctx = click.get_current_context()
        ctx.meta[HINT] = "pass --from REV to print the SQL without connecting"
        current = _current(url, timeout) if start is None else start
        del ctx.meta[HINT]
        if current == "base":
            current = None
        text = guarded(lambda: migrating.pending_sql(url, current, revision))
        if text is None:
            where = f"from {start}" if start is not None else f"the database is at {current}"
            click.echo(f"etl: nothing to upgrade: {where}", err=True)
            return
        click.echo(text, nl=False)
        return
    with_engine(url, timeout, lambda engine: database.upgrade(engine, revision))
    click.echo(f"upgraded to {revision}")


def _confirm_drop(engine: Engine, revision: str, yes: bool) -> bool:
    """Whether to go on with a downgrade: yes when it drops no data, or the operator said
    so (--yes, or at the prompt on a terminal). Refuses (exit 2) off a terminal."""
    current = database.current_revision(engine)
    try:
        undone = migrating.downgraded(current, revision)
        dropping = migrating.dropping_data(undone)
    except Exception:  # a relative or unknown target: Alembic says more below
        undone = dropping = [revision]
    if not dropping or yes:
        return True
    what = (
        "drops every table"
        if revision == "base"
        else f"undoes {', '.join(undone)}, which drops data ({', '.join(dropping)})"
    )
    if not sys.stdin.isatty():
        fail(f"downgrading to {revision} {what}: pass --yes to do it", EXIT_USAGE)
    return click.confirm(f"Downgrading to {revision} {what}. Go on?", default=False)


@db.command("downgrade", short_help="Downgrade the schema to REVISION (base: drop all).")
@click.argument("revision")
@click.option(
    "--yes",
    is_flag=True,
    help="Do it even though it drops data (needed off a terminal; base drops every table).",
)
@shared(*DATABASE)
def db_downgrade(revision: str, yes: bool) -> None:
    """Downgrade the schema to REVISION ("base" drops every table).

    A downgrade that drops data asks first on a terminal; elsewhere it needs --yes.
    """
    options = settings()
    url = options.database_url
    guarded(lambda: database.require_existing_file(url))

    def downgrade(engine: Engine) -> bool:
        if not _confirm_drop(engine, revision, yes):
            return False
        database.downgrade(engine, revision)
        return True

    if with_engine(url, options.connect_timeout, downgrade):
        click.echo(f"downgraded to {revision}")
    else:
        click.echo("nothing done", err=True)


@db.command("current", short_help="Print the database's schema revision.")
@shared(*DATABASE)
def db_current() -> None:
    """Print the database's schema revision."""
    options = settings()
    path = guarded(lambda: database.sqlite_file(options.database_url))
    if path is not None and not path.exists():
        click.echo(f"none (no database file at {path})")
        return
    current = _current(options.database_url, options.connect_timeout)
    head = guarded(database.head_revision)
    click.echo(f"{current or 'none (empty database)'}{' (head)' if current == head else ''}")


@db.command("history", short_help="List the migrations, newest first.")
@shared(*DATABASE)
def db_history() -> None:
    """List the migrations, newest first; given a database (--database-url or
    ETL_DATABASE_URL), mark the revision it is at."""
    options = settings()
    url = options.database_url
    current = _current(url, options.connect_timeout) if url else None
    for line in guarded(database.history):
        revision = line.split()[0]
        click.echo(f"{line}  (current)" if current and revision == current else line)
