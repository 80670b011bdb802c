"""``etl run``: load files into the database.

Imports the pipeline (and with it SQLAlchemy) only when the command runs: before that,
:func:`survey_ahead` parses the command line and has the parse-ahead helper find and
stamp the run's files while the rest is imported (``etl.__main__``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from etl.cli.common import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_REJECTED,
    dumps,
    fail,
    guarded,
)
from etl.cli.group import main
from etl.cli.options import DATABASE, settings, shared
from etl.extract.extract import DEFAULT_MAX_FILE_BYTES
from etl.extract.sources import parse_shard
from etl.records import ConfigurationError, RunAborted, RunInterrupted, RunSummary
from etl.runner import parse_ahead
from etl.runner.defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_PRUNE

F = TypeVar("F", bound=Callable[..., Any])


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


def _env_option(name: str, *decls: str, **options: Any) -> Callable[[F], F]:
    """An option of ``etl run`` read from ``ETL_<NAME>`` too."""
    return click.option(*decls, envvar=f"ETL_{name}", show_envvar=True, **options)


@main.command(short_help="Load files or directories into the database.")
@click.argument(
    "paths", nargs=-1, type=click.Path(path_type=str), envvar="ETL_PATHS", required=False
)
@_env_option(
    "SOURCE",
    "--source",
    metavar="NAME",
    help="The source (tree) the PATHS belong to [default: one per root, named by its path].",
)
@_env_option(
    "FULL_REFRESH",
    "--full-refresh",
    is_flag=True,
    help="Reprocess files even if their content is unchanged.",
)
@_env_option(
    "PRUNE",
    "--prune",
    is_flag=True,
    help="Forget files of this run's sources that are gone from under its PATHS.",
)
@_env_option(
    "MAX_PRUNE",
    "--max-prune",
    metavar="SHARE",
    type=click.FloatRange(min=0, max=1),
    default=DEFAULT_MAX_PRUNE,
    show_default=True,
    help="--prune refuses to forget more than this share of a source's files.",
)
@_env_option(
    "SHARD",
    "--shard",
    metavar="K/N",
    help="Only files whose path hash falls in shard K of N (0 <= K < N).",
)
@_env_option(
    "WORKERS",
    "--workers",
    type=click.IntRange(min=1),
    help="Parser processes [default: CPU count].",
)
@_env_option(
    "BATCH_SIZE",
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Documents written per transaction.",
)
@_env_option(
    "MAX_FILE_SIZE",
    "--max-file-size",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_FILE_BYTES,
    show_default=True,
    help="Reject files larger than this many bytes.",
)
@_env_option(
    "NO_MIGRATE",
    "--no-migrate",
    is_flag=True,
    help="Do not upgrade the schema; fail if it is not current.",
)
@_env_option(
    "DRY_RUN",
    "--dry-run",
    is_flag=True,
    help="Read, check and count everything as a run would, then roll back: write nothing.",
)
@_env_option(
    "PROGRESS",
    "--progress/--no-progress",
    default=None,
    help="Progress bar [default: on a terminal].",
)
@shared(*DATABASE, "as_json")
def run(
    paths: tuple[str, ...],
    source: str | None,
    full_refresh: bool,
    prune: bool,
    max_prune: float,
    shard: str | None,
    workers: int | None,
    batch_size: int,
    max_file_size: int,
    no_migrate: bool,
    dry_run: bool,
    progress: bool | None,
) -> None:
    """Load PATHS (files or directories) into the database.

    PATHS may also come from ETL_PATHS (separated by ":"). In the project checkout
    the default is its seeds/ directory; an installed package has no default.
    """
    ctx = click.get_current_context()
    if ctx.get_parameter_source("max_prune") is ParameterSource.COMMANDLINE and not prune:
        raise click.UsageError("--max-prune SHARE goes with --prune")
    options = settings()
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(show and options.verbosity >= 0)  # -q: no bar either

    def load() -> RunSummary:
        from etl.runner import pipeline

        try:
            return pipeline.run(
                list(paths) or None,
                options.database_url,
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
                connect_timeout=options.connect_timeout,
            )
        except RunAborted as exc:  # a worker died: a re-run may heal it
            fail(str(exc), EXIT_FATAL)

    try:
        # Configuration, Alembic and database errors: the one ladder every command uses.
        summary = guarded(load, options.database_url)
    except RunInterrupted as exc:
        bar.close()
        done = exc.summary
        run_note = f"; run {done.run_id} recorded as interrupted" if done and done.run_id else ""
        if dry_run:
            run_note = "; dry run: nothing written"
        fail(f"stopped by {exc.signal_name}{run_note}", exc.exit_code)
    finally:
        bar.close()
    # Each rejected document was logged as it was rejected (`etl rejects` lists them).
    click.echo(dumps(summary.to_dict()) if options.as_json else summary.line())
    sys.exit(EXIT_REJECTED if summary.documents_rejected else EXIT_OK)


def survey_ahead(argv: Sequence[str]) -> None:
    """If ``argv`` (``sys.argv[1:]``) runs ``etl run`` over PATHS, have the parse-ahead
    helper survey them now (``etl.runner.parse_ahead.survey``), as the run itself will
    ask: before SQLAlchemy is imported, instead of after. Parsed by click as the
    command will parse it, without complaint: what is wrong is the command's to report.
    A run given no PATHS (the checkout's seeds) asks when it runs."""
    args = list(argv)
    try:
        with main.make_context("etl", args, resilient_parsing=True) as ctx:
            # The group stops at the command's name; ctx.args is what follows it.
            named = len(args) - len(ctx.args) - 1
            if named < 0 or args[named] != "run":
                return
            with run.make_context("run", list(ctx.args), parent=ctx, resilient_parsing=True) as sub:
                params = dict(sub.params)
        shard = parse_shard(params["shard"]) if params.get("shard") else None
    except (click.ClickException, ConfigurationError):
        return
    if params.get("paths") and params.get("workers") != 1:
        parse_ahead.survey(list(params["paths"]), params.get("source"), shard)
