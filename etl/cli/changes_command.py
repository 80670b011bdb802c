"""``etl changes``: the change feed, its newest cursor, and its compaction."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from etl.cli.common import (
    EXIT_RESYNC,
    EXIT_SIGINT,
    dumps,
    fail,
    guarded,
    with_engine,
)
from etl.cli.group import main
from etl.cli.options import DATABASE, settings, shared
from etl.db.database import require_existing_file
from etl.records import RunInterrupted
from etl.runner.interrupts import stop_on_signals

if TYPE_CHECKING:
    from etl.query.feed import Change

# Options that only make sense when reading the feed (not with --latest or --compact).
_READING = ("since", "limit", "follow", "poll_interval")


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (
        ParameterSource.COMMANDLINE,
        ParameterSource.ENVIRONMENT,
    )


def _check(ctx: click.Context, latest: bool, compact: bool, keep: float | None) -> None:
    """Refuse options that contradict each other (exit 2) instead of ignoring one."""
    if compact != (keep is not None):
        raise click.UsageError("--compact and --keep DAYS go together")
    if latest and compact:
        raise click.UsageError("--latest and --compact exclude each other")
    mode = "--latest" if latest else "--compact" if compact else None
    if mode:
        clashing = [name for name in _READING if _given(ctx, name)]
        if clashing:
            names = ", ".join(f"--{name.replace('_', '-')}" for name in clashing)
            raise click.UsageError(f"{mode} does not go with {names}")


@main.command(short_help="Print the change feed: changes to articles after a cursor.")
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
@shared(*DATABASE, "as_json")
def changes(
    since: int,
    limit: int | None,
    follow: bool,
    poll_interval: float,
    latest: bool,
    compact: bool,
    keep: float | None,
) -> None:
    """Print the changes to articles after cursor --since, oldest first (the change feed).

    With --json, one JSON object per line. --follow stops on SIGINT (exit 130) or
    SIGTERM (exit 143).
    """
    from etl.query import feed

    _check(click.get_current_context(), latest, compact, keep)
    options = settings()
    url, timeout = options.database_url, options.connect_timeout
    try:
        if compact:
            assert keep is not None
            days = keep
            guarded(lambda: require_existing_file(url))  # compacting creates no database
            done = with_engine(
                url, timeout, lambda e: feed.compact(keep=timedelta(days=days), engine=e)
            )
            text = (
                f"removed {done.removed} changes; consumers need a cursor of at least "
                f"{done.compacted_through}"
            )
            click.echo(dumps(dataclasses.asdict(done)) if options.as_json else text)
            return
        if latest:
            cursor = with_engine(
                url, timeout, lambda e: feed.latest_cursor(engine=e), read_only=True
            )
            click.echo(json.dumps({"cursor": cursor}) if options.as_json else cursor)
            return
        with stop_on_signals(follow):
            with_engine(
                url,
                timeout,
                lambda e: _print(
                    feed.changes(
                        since=since,
                        limit=limit,
                        follow=follow,
                        poll_interval=poll_interval,
                        engine=e,
                    ),
                    options.as_json,
                ),
                read_only=True,
            )
    except feed.CursorTooOld as exc:
        fail(str(exc), EXIT_RESYNC)
    except RunInterrupted as exc:  # --follow stopped by SIGINT or SIGTERM
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_SIGINT)


def _print(stream: Iterator[Change], as_json: bool) -> None:
    for change in stream:
        if as_json:
            click.echo(json.dumps(change.to_dict()))
        else:
            click.echo(
                f"{change.cursor}  {change.committed_at.isoformat()}  {change.op:<6}  "
                f"{change.article_id}  {change.url}{'  (stub)' if change.is_stub else ''}"
            )
