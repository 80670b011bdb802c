"""The README documents the command as it is (in the manner of sqlite-utils' test_docs.py).

Every ``etl`` command (found by walking the click group) and every option appears in the
README, and its exit-code table lists exactly the codes ``etl/cli.py`` defines. A new
command or option fails here until the README says how to use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest

from etl import cli
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands(
    command: click.Command = cli.main, path: tuple[str, ...] = ("etl",)
) -> Iterator[tuple[str, click.Command]]:
    """``("etl db upgrade", command)`` for the group and everything under it, recursively."""
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                yield from commands(sub, (*path, name))


def mentioned(text: str) -> bool:
    """``text`` is in the README as a whole word (``--json`` is not ``--json-lines``)."""
    return re.search(rf"(?<![\w-]){re.escape(text)}(?![\w-])", README) is not None


def test_walk_finds_the_commands() -> None:
    """Guard for the walk itself: it reaches nested commands and their options."""
    found = dict(commands())
    assert {"etl", "etl run", "etl db", "etl db upgrade"} <= set(found)
    assert "--database-url" in {
        name for param in found["etl db upgrade"].params for name in param.opts
    }


def test_every_command_is_in_the_readme() -> None:
    missing = [name for name, _ in commands() if not mentioned(name)]
    assert not missing, "commands the README never mentions (as the text `etl ...`): " + ", ".join(
        missing
    )


def test_every_option_is_in_the_readme() -> None:
    """Each option by one of its names at least (``-v`` or ``--verbose``)."""
    missing = [
        f"{name} {' / '.join(param.opts + param.secondary_opts)}"
        for name, command in commands()
        for param in command.params
        if isinstance(param, click.Option)
        and not param.hidden
        and param.name != "help"
        and not any(mentioned(opt) for opt in param.opts + param.secondary_opts)
    ]
    assert not missing, "options the README never mentions: " + "; ".join(missing)


def readme_exit_codes() -> dict[int, str]:
    """The README's exit-code table (under a heading "Exit codes"): code -> meaning."""
    lines = iter(README.splitlines())
    for line in lines:
        if re.fullmatch(r"#+\s+Exit codes\s*", line):
            break
    else:
        pytest.fail("the README has no 'Exit codes' heading")
    table: dict[int, str] = {}
    for line in lines:
        if line.startswith("#"):
            break
        row = re.fullmatch(r"\|\s*(\d+)\s*\|\s*(.*?)\s*\|", line.strip())
        if row:
            table[int(row[1])] = row[2]
        elif table and not line.startswith("|"):
            break  # the end of the table
    return table


def test_exit_code_table_matches_the_code() -> None:
    defined = {
        value: name
        for name, value in vars(cli).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }
    assert defined, "etl/cli.py defines no EXIT_* constants"
    table = readme_exit_codes()
    undocumented = sorted(set(defined) - set(table))
    unknown = sorted(set(table) - set(defined))
    assert not undocumented, "exit codes missing from the README's table: " + ", ".join(
        f"{code} ({defined[code]})" for code in undocumented
    )
    assert not unknown, "the README's exit-code table lists codes etl/cli.py does not define: " + (
        ", ".join(str(code) for code in unknown)
    )
    assert all(table.values()), f"an exit code without its meaning: {table}"
