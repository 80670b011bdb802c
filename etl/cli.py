"""The ``etl`` command: a thin click layer over ``etl.pipeline`` and ``etl.database``.

Exit codes (documented in the README):
0 success; 1 finished, but some documents were rejected; 2 usage or
configuration error; 3 fatal error (database unreachable, run aborted).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click
from sqlalchemy import desc, select
from sqlalchemy.exc import SQLAlchemyError

from etl import database, pipeline
from etl.database import ConfigurationError, DatabaseUnavailable
from etl.extract import DEFAULT_MAX_FILE_BYTES
from etl.schema import etl_runs, rejected_documents

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3

DATABASE_OPTION = click.option(
    "--database-url",
    envvar="ETL_DATABASE_URL",
    default=None,
    help=f"SQLAlchemy URL [env ETL_DATABASE_URL; default {database.DEFAULT_DATABASE_URL}]",
)


def _configure_logging(verbose: int, quiet: int) -> None:
    level = logging.WARNING + 10 * (quiet - verbose)
    logging.basicConfig(
        level=max(logging.DEBUG, min(level, logging.CRITICAL)),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail(message: str, code: int) -> None:
    click.echo(f"etl: error: {message}", err=True)
    sys.exit(code)


class _Progress:
    """A tqdm bar on a terminal, created when the pipeline knows the total; nothing otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm  # only a terminal gets a bar: cron runs skip the import

            self.bar = tqdm(total=total, unit="doc", file=sys.stderr, leave=False)
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less logging (repeatable).")
@click.version_option(package_name="news-etl")
def main(verbose: int, quiet: int) -> None:
    """Load Jekyll news front-matter into a normalized SQL database."""
    _configure_logging(verbose, quiet)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@DATABASE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as one JSON object.")
@click.option(
    "--full-refresh", is_flag=True, help="Reprocess files even if their content is unchanged."
)
@click.option(
    "--prune", is_flag=True, help="Mark articles whose source files all disappeared as removed."
)
@click.option("--shard", metavar="K/N", help="Only files whose path hash falls in shard K of N.")
@click.option(
    "--workers", type=click.IntRange(min=1), help="Parser processes [default: CPU count]."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=pipeline.DEFAULT_BATCH_SIZE,
    show_default=True,
)
@click.option(
    "--max-file-size",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_FILE_BYTES,
    show_default=True,
    help="Reject files larger than this many bytes.",
)
@click.option(
    "--no-migrate", is_flag=True, help="Do not upgrade the schema; fail if it is not current."
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar [default: on a terminal]."
)
def run(
    paths: tuple[str, ...],
    database_url: str | None,
    as_json: bool,
    full_refresh: bool,
    prune: bool,
    shard: str | None,
    workers: int | None,
    batch_size: int,
    max_file_size: int,
    no_migrate: bool,
    progress: bool | None,
) -> None:
    """Load PATHS (files or directories; default: seeds/) into the database."""
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(show and logging.getLogger().level <= logging.WARNING)
    try:
        summary = pipeline.run(
            list(paths) or None,
            database_url,
            full_refresh=full_refresh,
            prune=prune,
            shard=shard,
            workers=workers,
            batch_size=batch_size,
            max_file_bytes=max_file_size,
            migrate=not no_migrate,
            progress=bar,
        )
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)
    except (DatabaseUnavailable, pipeline.RunAborted) as exc:
        _fail(str(exc), EXIT_FATAL)
    except SQLAlchemyError as exc:
        _fail(f"run aborted: {database.describe_error(exc)}", EXIT_FATAL)
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), default=str))
    else:
        for item in summary.rejected[:20]:
            click.echo(f"rejected: {item}", err=True)
        if len(summary.rejected) > 20:
            click.echo(
                f"... and {len(summary.rejected) - 20} more (etl rejects {summary.run_id})",
                err=True,
            )
        click.echo(summary.line())
    sys.exit(EXIT_REJECTED if summary.documents_rejected else EXIT_OK)


@main.command()
@DATABASE_OPTION
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
def runs(database_url: str | None, limit: int, as_json: bool) -> None:
    """List recent runs."""
    rows = _query(database_url, select(etl_runs).order_by(desc(etl_runs.c.id)).limit(limit))
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    for row in rows:
        click.echo(
            f"{row['id']:>5}  {row['started_at']:%Y-%m-%d %H:%M:%S}  {row['status']:<9}  "
            f"files={row['files_seen']} skipped={row['files_skipped_unchanged']} "
            f"inserted={row['articles_inserted']} updated={row['articles_updated']} "
            f"unchanged={row['articles_unchanged']} rejected={row['documents_rejected']}"
        )


@main.command()
@click.argument("run_id", required=False, type=int)
@DATABASE_OPTION
@click.option("--json", "as_json", is_flag=True)
def rejects(run_id: int | None, database_url: str | None, as_json: bool) -> None:
    """List rejected documents of RUN_ID (default: the latest run)."""
    query = select(rejected_documents).order_by(rejected_documents.c.id)
    if run_id is None:
        latest = select(etl_runs.c.id).order_by(desc(etl_runs.c.id)).limit(1).scalar_subquery()
        query = query.where(rejected_documents.c.run_id == latest)
    else:
        query = query.where(rejected_documents.c.run_id == run_id)
    rows = _query(database_url, query)
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    for row in rows:
        where = (
            row["source_path"]
            if row["line"] is None
            else f"{row['source_path']}:{row['line']}:{row['column']}"
        )
        click.echo(f"run {row['run_id']}  {where}: {row['error']}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the dictionary as JSON.")
def schema(as_json: bool) -> None:
    """Print the data dictionary: tables, views, columns, types, keys, descriptions.

    Markdown with a Mermaid ER diagram (docs/schema.md is this output). Needs no
    database: the dictionary is the same on every backend.
    """
    from etl import dictionary  # only this command needs it

    click.echo(dictionary.to_json() if as_json else dictionary.markdown(), nl=False)


def _query(database_url: str | None, query: Any) -> list[dict[str, Any]]:
    def fetch(engine: Any) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    return _with_engine(database_url, fetch)


@main.group()
def db() -> None:
    """Schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@DATABASE_OPTION
@click.option(
    "--sql", is_flag=True, help="Print the SQL instead of running it (Alembic offline mode)."
)
def db_upgrade(revision: str, database_url: str | None, sql: bool) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    if sql:
        click.echo(database.upgrade_sql(database_url, revision), nl=False)
        return
    _with_engine(database_url, lambda engine: database.upgrade(engine, revision))
    click.echo(f"upgraded to {revision}")


@db.command("downgrade")
@click.argument("revision")
@DATABASE_OPTION
def db_downgrade(revision: str, database_url: str | None) -> None:
    """Downgrade the schema to REVISION (``base`` drops every table)."""
    _with_engine(database_url, lambda engine: database.downgrade(engine, revision))
    click.echo(f"downgraded to {revision}")


@db.command("current")
@DATABASE_OPTION
def db_current(database_url: str | None) -> None:
    """Print the database's schema revision."""
    current = _with_engine(database_url, database.current_revision)
    head = database.head_revision()
    click.echo(f"{current or 'none (empty database)'}{' (head)' if current == head else ''}")


@db.command("history")
def db_history() -> None:
    """List the migrations, newest first."""
    for line in database.history():
        click.echo(line)


def _with_engine(database_url: str | None, action: Any) -> Any:
    """Run ``action(engine)``; config and database errors become one line and an exit code."""
    try:
        engine = database.make_engine(database_url)
        try:
            return action(engine)
        finally:
            engine.dispose()
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)
    except SQLAlchemyError as exc:
        where = database.redact(database.resolve_url(database_url))
        _fail(f"database {where}: {database.describe_error(exc)}", EXIT_FATAL)
