"""The ``etl`` group: its help (exit codes), the shared options, Ctrl-C and closed pipes,
and which module defines each command (imported when the command is asked for)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import click

from etl.cli.common import EXIT_OK, EXIT_SIGINT, fail
from etl.cli.options import group_options, settings
from etl.runner import logs, parse_ahead

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# The module whose decorators add each command to the group. Importing one is the
# command's cost: `etl run` parses its command line before SQLAlchemy is imported.
COMMAND_MODULES = {
    "run": "etl.cli.run_command",
    "changes": "etl.cli.changes_command",
    "db": "etl.cli.db_commands",
    "runs": "etl.cli.read_commands",
    "rejects": "etl.cli.read_commands",
    "schema": "etl.cli.read_commands",
    "search": "etl.cli.read_commands",
}


def load_commands() -> None:
    """Import every command's module (``etl.__main__`` does, with the collector paused)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(module)


def quiet_exit_on_closed_pipe() -> NoReturn:
    """stdout's reader went away (``etl ... | head``): nothing more to say, exit 0.

    stdout is pointed at /dev/null so that the interpreter's final flush does not
    raise (and print) the same error again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(EXIT_OK)


class Group(click.Group):
    """Ctrl-C outside a run (which handles its own signals): exit 130, as shells expect,
    instead of click's "Aborted!" and 1. A closed stdout pipe: exit 0, quietly, instead
    of click's 1 (which the README reserves for rejected documents). Commands are
    imported when asked for (``COMMAND_MODULES``)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_commands()
        return super().list_commands(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:  # `etl --help | head -1` prints while the arguments are parsed
            return super().parse_args(ctx, args)
        except BrokenPipeError:
            quiet_exit_on_closed_pipe()
        except click.ClickException as exc:
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("etl: interrupted", err=True)
            ctx.exit(EXIT_SIGINT)
        except BrokenPipeError:
            quiet_exit_on_closed_pipe()
        except click.ClickException as exc:
            _usage_error(exc)


def _usage_error(exc: click.ClickException) -> NoReturn:
    """With --log-format json, a usage error is a JSON line too; else click's text."""
    if logs.is_json():
        fail(exc.format_message(), exc.exit_code)
    raise exc


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS)
@group_options
@click.version_option(package_name="news-etl")
def main() -> None:
    """Load Jekyll news front-matter into a normalized SQL database.

    Every option of `etl run` can also be set by the environment variable shown in
    `etl run --help` (ETL_*). -v/-q, --log-format, --database-url, --connect-timeout
    and --json go before or after the subcommand.

    \b
    Exit codes:
      0        success
      1        documents rejected
      2        usage or configuration error (fix it; retrying does not help)
      3        database unreachable, connection lost, or a worker died (retry later)
      4        etl changes: the cursor is older than the change log kept
      130/143  stopped by SIGINT/SIGTERM
    """
    settings().apply_logging()
    if click.get_current_context().invoked_subcommand != "run":
        parse_ahead.stop()  # started by etl.__main__ for a command line that had "run"
