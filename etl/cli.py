"""The ``etl`` command: a thin click layer over the API (``etl.pipeline``, ``etl.ledger``,
``etl.database``): options, environment variables, output and exit codes.

Exit codes (documented in the README):
0 success; 1 finished, but some documents were rejected; 2 usage or
configuration error; 3 fatal error (database unreachable, run aborted);
4 ``etl changes``: the cursor is older than the change log kept (resynchronise);
130 / 143 stopped by SIGINT / SIGTERM (128 + the signal number).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from etl import database, ledger, pipeline
from etl.database import ConfigurationError, DatabaseUnavailable
from etl.extract import DEFAULT_MAX_FILE_BYTES
from etl.records import RunInterrupted

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_FATAL, EXIT_RESYNC = 0, 1, 2, 3, 4
EXIT_SIGINT = 130  # 128 + SIGINT, as shells report a job stopped by Ctrl-C
EXIT_SIGTERM = 143  # 128 + SIGTERM (RunInterrupted.exit_code gives either)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

DATABASE_OPTION = click.option(
    "--database-url",
    envvar="ETL_DATABASE_URL",
    show_envvar=True,
    default=None,
    help=f"SQLAlchemy URL [default: {database.DEFAULT_DATABASE_URL}]",
)

CONNECT_TIMEOUT_OPTION = click.option(
    "--connect-timeout",
    envvar="ETL_CONNECT_TIMEOUT",
    show_envvar=True,
    type=click.FloatRange(min=0, min_open=True),
    default=database.DEFAULT_CONNECT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for a PostgreSQL or MariaDB server to accept a connection.",
)

F = TypeVar("F", bound=Callable[..., Any])


def _adjust_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """-v/-q count wherever they are given (before or after the subcommand)."""
    if not value:
        return
    meta = ctx.find_root().meta
    step = value if param.name == "verbose" else -value
    meta["etl.verbosity"] = meta.get("etl.verbosity", 0) + step
    level = logging.WARNING - 10 * meta["etl.verbosity"]
    logging.getLogger().setLevel(max(logging.DEBUG, min(level, logging.CRITICAL)))


def verbosity_options(envvar: bool = False) -> Callable[[F], F]:
    """``-v``/``-q``: on the group (with ETL_VERBOSE/ETL_QUIET) and on every command."""

    def decorate(function: F) -> F:
        for name, short, text in (
            ("quiet", "-q", "Less logging (repeatable)."),
            ("verbose", "-v", "More logging (repeatable)."),
        ):
            function = click.option(
                short,
                f"--{name}",
                name,
                count=True,
                expose_value=False,
                is_eager=True,
                callback=_adjust_verbosity,
                envvar=f"ETL_{name.upper()}" if envvar else None,
                show_envvar=envvar,
                help=text,
            )(function)
        return function

    return decorate


def _json_default(value: Any) -> Any:
    """Datetimes in ISO 8601 with their zone (all are UTC); anything else as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _fail(message: str, code: int) -> NoReturn:
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


class _Group(click.Group):
    """Ctrl-C outside a run (which handles its own signals): exit 130, as shells expect,
    instead of click's "Aborted!" and 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("etl: interrupted", err=True)
            ctx.exit(EXIT_SIGINT)


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@verbosity_options(envvar=True)
@click.version_option(package_name="news-etl")
def main() -> None:
    """Load Jekyll news front-matter into a normalized SQL database.

    Every option of `etl run` can also be set by the environment variable shown in
    `etl run --help` (ETL_*). Exit codes: 0 success, 1 documents rejected, 2 usage or
    configuration error, 3 database unreachable or run aborted, 130/143 stopped by
    SIGINT/SIGTERM.
    """
    logging.basicConfig(
        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=False
    )


@main.command(short_help="Load files or directories into the database.")
@click.argument(
    "paths", nargs=-1, type=click.Path(path_type=str), envvar="ETL_PATHS", required=False
)
@DATABASE_OPTION
@click.option(
    "--source",
    metavar="NAME",
    envvar="ETL_SOURCE",
    show_envvar=True,
    help="The source (tree) the PATHS belong to [default: one per root, named by its path].",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="ETL_JSON",
    show_envvar=True,
    help="Print the run summary as one JSON object.",
)
@click.option(
    "--full-refresh",
    is_flag=True,
    envvar="ETL_FULL_REFRESH",
    show_envvar=True,
    help="Reprocess files even if their content is unchanged.",
)
@click.option(
    "--prune",
    is_flag=True,
    envvar="ETL_PRUNE",
    show_envvar=True,
    help="Forget files of this run's sources that are gone from under its PATHS.",
)
@click.option(
    "--max-prune",
    metavar="SHARE",
    type=click.FloatRange(min=0, max=1),
    default=pipeline.DEFAULT_MAX_PRUNE,
    show_default=True,
    envvar="ETL_MAX_PRUNE",
    show_envvar=True,
    help="--prune refuses to forget more than this share of a source's files.",
)
@click.option(
    "--shard",
    metavar="K/N",
    envvar="ETL_SHARD",
    show_envvar=True,
    help="Only files whose path hash falls in shard K of N (0 <= K < N).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    envvar="ETL_WORKERS",
    show_envvar=True,
    help="Parser processes [default: CPU count].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=pipeline.DEFAULT_BATCH_SIZE,
    show_default=True,
    envvar="ETL_BATCH_SIZE",
    show_envvar=True,
    help="Documents written per transaction.",
)
@click.option(
    "--max-file-size",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_FILE_BYTES,
    show_default=True,
    envvar="ETL_MAX_FILE_SIZE",
    show_envvar=True,
    help="Reject files larger than this many bytes.",
)
@click.option(
    "--no-migrate",
    is_flag=True,
    envvar="ETL_NO_MIGRATE",
    show_envvar=True,
    help="Do not upgrade the schema; fail if it is not current.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    envvar="ETL_DRY_RUN",
    show_envvar=True,
    help="Read, check and count everything as a run would, then roll back: write nothing.",
)
@CONNECT_TIMEOUT_OPTION
@click.option(
    "--progress/--no-progress",
    default=None,
    envvar="ETL_PROGRESS",
    show_envvar=True,
    help="Progress bar [default: on a terminal].",
)
@verbosity_options()
def run(
    paths: tuple[str, ...],
    database_url: str | None,
    source: str | None,
    as_json: bool,
    full_refresh: bool,
    prune: bool,
    max_prune: float,
    shard: str | None,
    workers: int | None,
    batch_size: int,
    max_file_size: int,
    no_migrate: bool,
    dry_run: bool,
    connect_timeout: float,
    progress: bool | None,
) -> None:
    """Load PATHS (files or directories) into the database.

    PATHS may also come from ETL_PATHS (separated by ":"). In the project checkout
    the default is its seeds/ directory; an installed package has no default.
    """
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(show and logging.getLogger().getEffectiveLevel() <= logging.WARNING)
    try:
        summary = pipeline.run(
            list(paths) or None,
            database_url,
            source=source,
            full_refresh=full_refresh,
            prune=prune,
            max_prune=max_prune,
            shard=shard,
            workers=workers,
            batch_size=batch_size,
            max_file_bytes=max_file_size,
            migrate=not no_migrate,
            progress=bar,
            dry_run=dry_run,
            connect_timeout=connect_timeout,
        )
    except RunInterrupted as exc:
        bar.close()
        done = exc.summary
        run_note = f"; run {done.run_id} recorded as interrupted" if done and done.run_id else ""
        if dry_run:
            run_note = "; dry run: nothing written"
        _fail(f"stopped by {exc.signal_name}{run_note}", exc.exit_code)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)
    except (DatabaseUnavailable, pipeline.RunAborted) as exc:
        _fail(str(exc), EXIT_FATAL)
    except SQLAlchemyError as exc:
        _fail(f"run aborted: {database.describe_error(exc)}", EXIT_FATAL)
    except Exception as exc:
        _fail_if_alembic(exc)
        raise
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), default=_json_default))
    else:
        for item in summary.rejected[:20]:
            click.echo(f"rejected: {item}", err=True)
        if len(summary.rejected) > 20:
            more = "etl run --json" if dry_run else f"etl rejects {summary.run_id}"
            click.echo(f"... and {len(summary.rejected) - 20} more ({more})", err=True)
        click.echo(summary.line())
    sys.exit(EXIT_REJECTED if summary.documents_rejected else EXIT_OK)


@main.command(short_help="List recent runs (etl_runs), newest first.")
@DATABASE_OPTION
@CONNECT_TIMEOUT_OPTION
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many runs to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as one JSON array.")
@verbosity_options()
def runs(database_url: str | None, connect_timeout: float, limit: int, as_json: bool) -> None:
    """List recent runs (etl_runs), newest first."""
    rows = _reading(
        database_url,
        lambda: ledger.runs(database_url, limit=limit, connect_timeout=connect_timeout),
    )
    if as_json:
        click.echo(json.dumps(rows, default=_json_default))
        return
    if not rows:
        click.echo("no runs")
    for row in rows:
        click.echo(
            f"{row['id']:>5}  {row['started_at']:%Y-%m-%d %H:%M:%S}  {row['status']:<11}  "
            f"files={row['files_seen']} skipped={row['files_skipped_unchanged']} "
            f"inserted={row['articles_inserted']} updated={row['articles_updated']} "
            f"unchanged={row['articles_unchanged']} rejected={row['documents_rejected']}"
        )


@main.command(short_help="List the rejected documents of a run (default: the latest).")
@click.argument("run_id", required=False, type=int)
@DATABASE_OPTION
@CONNECT_TIMEOUT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the rejections as one JSON array.")
@verbosity_options()
def rejects(
    run_id: int | None, database_url: str | None, connect_timeout: float, as_json: bool
) -> None:
    """List the documents RUN_ID (default: the latest run) rejected, and why."""
    rows = _reading(
        database_url,
        lambda: ledger.rejections(run_id, database_url, connect_timeout=connect_timeout),
    )
    if as_json:
        click.echo(json.dumps(rows, default=_json_default))
        return
    if not rows:
        click.echo("no rejected documents")
    for row in rows:
        where = (
            row["source_path"]
            if row["line"] is None
            else f"{row['source_path']}:{row['line']}:{row['column']}"
        )
        click.echo(f"run {row['run_id']}  {where}: {row['error']}")


@main.command(short_help="Print the data dictionary (tables, views, columns, descriptions).")
@click.option("--json", "as_json", is_flag=True, help="Print the dictionary as JSON.")
@click.option(
    "--datasette-metadata",
    is_flag=True,
    help="Print Datasette's metadata.json for a SQLite database: descriptions, search, facets.",
)
@click.option(
    "--database-name",
    default="etl",
    show_default=True,
    metavar="NAME",
    help="With --datasette-metadata: Datasette's name for the database (its file name "
    "without the extension).",
)
def schema(as_json: bool, datasette_metadata: bool, database_name: str) -> None:
    """Print the data dictionary: tables, views, columns, types, keys, descriptions.

    Markdown with a Mermaid ER diagram (docs/schema.md is this output). Needs no
    database: the dictionary is the same on every backend.
    """
    if as_json and datasette_metadata:
        _fail("--json and --datasette-metadata: choose one", EXIT_USAGE)
    if datasette_metadata:
        from etl import datasette_metadata as datasette  # only this option needs it

        click.echo(datasette.to_json(database_name), nl=False)
        return
    from etl import dictionary  # only this command needs it

    click.echo(dictionary.to_json() if as_json else dictionary.markdown(), nl=False)


@main.command(short_help="Print the change feed: changes to articles after a cursor.")
@DATABASE_OPTION
@click.option(
    "--since",
    metavar="CURSOR",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only changes after this cursor (the last one you processed).",
)
@click.option("--limit", metavar="N", type=click.IntRange(min=1), help="Stop after N changes.")
@click.option("--follow", is_flag=True, help="Keep waiting for new changes until interrupted.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--poll-interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds between polls with --follow (PostgreSQL waits for NOTIFY instead).",
)
@click.option("--latest", is_flag=True, help="Print the newest cursor and exit.")
@click.option("--compact", is_flag=True, help="Delete changes older than --keep days, then exit.")
@click.option("--keep", metavar="DAYS", type=click.FloatRange(min=0), help="With --compact.")
def changes(
    database_url: str | None,
    since: int,
    limit: int | None,
    follow: bool,
    as_json: bool,
    poll_interval: float,
    latest: bool,
    compact: bool,
    keep: float | None,
) -> None:
    """Print the changes to articles after cursor --since, oldest first (the change feed)."""
    from etl import feed

    if compact != (keep is not None):
        _fail("--compact and --keep DAYS go together", EXIT_USAGE)
    try:
        if compact:
            assert keep is not None
            done = feed.compact(database_url, keep=timedelta(days=keep))
            click.echo(
                f"removed {done.removed} changes; consumers need a cursor of at least "
                f"{done.compacted_through}"
            )
            return
        if latest:
            click.echo(feed.latest_cursor(database_url))
            return
        stream = feed.changes(
            database_url, since=since, limit=limit, follow=follow, poll_interval=poll_interval
        )
        for change in stream:
            if as_json:
                click.echo(json.dumps(change.to_dict()))
            else:
                click.echo(
                    f"{change.cursor}  {change.committed_at.isoformat()}  {change.op:<6}  "
                    f"{change.article_id}  {change.url}{'  (stub)' if change.is_stub else ''}"
                )
    except feed.CursorTooOld as exc:
        _fail(str(exc), EXIT_RESYNC)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)
    except SQLAlchemyError as exc:
        _fail_database(database_url, exc)
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)
    except BrokenPipeError:  # `etl changes | head`
        sys.stderr.close()
        sys.exit(EXIT_OK)


@main.command(short_help="Search live full articles by words of their title and excerpt.")
@click.argument("query")
@DATABASE_OPTION
@CONNECT_TIMEOUT_OPTION
@click.option(
    "--limit",
    metavar="N",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most N results.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON array.")
@verbosity_options()
def search(
    query: str, database_url: str | None, connect_timeout: float, limit: int, as_json: bool
) -> None:
    """Search live full articles whose title and excerpt contain every word of QUERY.

    Most relevant first (title matches before excerpt matches). Punctuation and search
    operators in QUERY are ignored: only its words count.
    """
    from etl import fulltext

    results = _reading(
        database_url,
        lambda: fulltext.search(query, database_url, limit=limit, connect_timeout=connect_timeout),
    )
    if as_json:
        click.echo(json.dumps([result.to_dict() for result in results]))
        return
    if not results:
        click.echo("no articles found")
    for result in results:
        published = f"{result.published_at:%Y-%m-%d}" if result.published_at else "----------"
        title = " ".join((result.title or "(no title)").split())
        provider = f"  ({result.provider_name})" if result.provider_name else ""
        click.echo(f"{published}  {title}{provider}  {result.url}")


def _reading(database_url: str | None, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)
    except SQLAlchemyError as exc:
        _fail_database(database_url, exc)


@main.group(short_help="Schema migrations (Alembic): upgrade, downgrade, current, history.")
@verbosity_options()
def db() -> None:
    """Schema migrations (Alembic): upgrade, downgrade, current, history."""


@db.command("upgrade", short_help="Upgrade the schema (default: to the newest revision).")
@click.argument("revision", default="head")
@DATABASE_OPTION
@CONNECT_TIMEOUT_OPTION
@click.option(
    "--sql", is_flag=True, help="Print the SQL instead of running it (Alembic offline mode)."
)
@verbosity_options()
def db_upgrade(revision: str, database_url: str | None, connect_timeout: float, sql: bool) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    if sql:
        click.echo(_guarded(lambda: database.upgrade_sql(database_url, revision)), nl=False)
        return
    _with_engine(database_url, connect_timeout, lambda engine: database.upgrade(engine, revision))
    click.echo(f"upgraded to {revision}")


@db.command("downgrade", short_help="Downgrade the schema to REVISION (base: drop all).")
@click.argument("revision")
@DATABASE_OPTION
@CONNECT_TIMEOUT_OPTION
@verbosity_options()
def db_downgrade(revision: str, database_url: str | None, connect_timeout: float) -> None:
    """Downgrade the schema to REVISION (``base`` drops every table)."""
    _guarded(lambda: database.require_existing_file(database_url))
    _with_engine(database_url, connect_timeout, lambda engine: database.downgrade(engine, revision))
    click.echo(f"downgraded to {revision}")


@db.command("current", short_help="Print the database's schema revision.")
@DATABASE_OPTION
@CONNECT_TIMEOUT_OPTION
@verbosity_options()
def db_current(database_url: str | None, connect_timeout: float) -> None:
    """Print the database's schema revision."""
    path = _guarded(lambda: database.sqlite_file(database_url))
    if path is not None and not path.exists():
        click.echo(f"none (no database file at {path})")
        return
    current = _with_engine(database_url, connect_timeout, database.current_revision)
    head = _guarded(database.head_revision)
    click.echo(f"{current or 'none (empty database)'}{' (head)' if current == head else ''}")


@db.command("history", short_help="List the migrations, newest first.")
@verbosity_options()
def db_history() -> None:
    """List the migrations, newest first."""
    for line in _guarded(database.history):
        click.echo(line)


T = TypeVar("T")


def _guarded(action: Callable[[], T]) -> T:
    """Configuration problems (and Alembic's refusals) become one line and exit 2."""
    try:
        return action()
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        _fail_if_alembic(exc)
        raise


def _with_engine(
    database_url: str | None, connect_timeout: float, action: Callable[[Engine], T]
) -> T:
    """Run ``action(engine)``; config and database errors become one line and an exit code."""
    path = _guarded(lambda: database.sqlite_file(database_url))
    existed = path is None or path.exists()
    try:
        engine = database.make_engine(database_url, connect_timeout=connect_timeout)
        try:
            return _guarded(lambda: action(engine))
        finally:
            engine.dispose()
            if not existed:
                database.discard_if_empty(path)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)
    except SQLAlchemyError as exc:
        _fail_database(database_url, exc)


def _fail_database(database_url: str | None, exc: SQLAlchemyError) -> NoReturn:
    where = database.redact(database.resolve_url(database_url))
    _fail(f"database {where}: {database.describe_error(exc)}", EXIT_FATAL)


def _fail_if_alembic(exc: Exception) -> None:
    """Alembic's own errors (an unknown revision, a database at a revision this code does
    not know) are the operator's to fix: one line, exit 2."""
    if type(exc).__module__.startswith("alembic"):
        _fail(f"{type(exc).__name__}: {exc}", EXIT_USAGE)
