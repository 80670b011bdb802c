"""The README documents the command as it is (in the manner of sqlite-utils' test_docs.py).

Every ``etl`` command (found by walking the click group) and every option appears in the
README, and its exit-code table lists exactly the codes ``etl.cli`` defines. A new
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
        # list_commands/get_command: the group imports a command's module when asked.
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
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
    assert defined, "etl.cli defines no EXIT_* constants"
    table = readme_exit_codes()
    undocumented = sorted(set(defined) - set(table))
    unknown = sorted(set(table) - set(defined))
    assert not undocumented, "exit codes missing from the README's table: " + ", ".join(
        f"{code} ({defined[code]})" for code in undocumented
    )
    assert not unknown, "the README's exit-code table lists codes etl.cli does not define: " + (
        ", ".join(str(code) for code in unknown)
    )
    assert all(table.values()), f"an exit code without its meaning: {table}"


# --- help = README ---------------------------------------------------------------------------


def environment_variables() -> dict[str, list[str]]:
    """Every ``ETL_*`` variable a command reads -> the commands that read it."""
    found: dict[str, list[str]] = {}
    for name, command in commands():
        for param in command.params:
            envvars = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
            for envvar in envvars:
                if envvar:
                    found.setdefault(str(envvar), []).append(name)
    return found


def test_every_environment_variable_is_in_the_readme_and_every_documented_one_exists() -> None:
    read = environment_variables()
    assert {"ETL_SOURCE", "ETL_MAX_PRUNE", "ETL_DATABASE_URL", "ETL_LOG_FORMAT"} <= set(read)
    missing = sorted(name for name in read if not mentioned(name))
    assert not missing, f"environment variables the README never mentions: {missing}"
    documented = set(re.findall(r"\bETL_[A-Z_]+\b", README)) - {
        name for name in re.findall(r"\bETL_TEST_[A-Z_]+\b", README)
    }
    unknown = sorted(documented - set(read))
    assert not unknown, f"the README documents variables no command reads: {unknown}"


def test_every_documented_option_exists() -> None:
    """The README's ``etl COMMAND ... --option`` lines name options the command has."""
    found = dict(commands())
    wrong = []
    for line in README.splitlines():
        match = re.match(r"\s*(?:\S*/)?etl((?: [a-z]+)*)(.*)", line)
        if not match or "#" in match[1]:
            continue
        words = match[1].split()
        path = "etl"
        while words and f"{path} {words[0]}" in found:
            path = f"{path} {words.pop(0)}"
        if path == "etl" and not match[1]:
            continue
        command = found[path]
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for option in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", match[2].split("#")[0]):
            if option not in options and path != "etl":
                wrong.append(f"{path} {option}")
    assert not wrong, f"options the README gives that the command does not have: {wrong}"


@pytest.mark.parametrize("name", [name for name, _ in commands()])
def test_help_renders_without_stray_markup(name: str) -> None:
    command = dict(commands())[name]
    with click.Context(command, info_name=name) as ctx:
        text = command.get_help(ctx)
    for markup in ("``", ":func:", ":class:", "\\b"):
        assert markup not in text, f"{name} --help shows {markup!r}:\n{text}"


def test_top_level_help_lists_every_exit_code() -> None:
    with click.Context(cli.main, info_name="etl") as ctx:
        text = cli.main.get_help(ctx)
    codes = {value for key, value in vars(cli).items() if key.startswith("EXIT_")}
    listed = {int(code) for code in re.findall(r"^\s+(\d+)(?:/\d+)?\s", text, re.M)}
    listed |= {int(code) for code in re.findall(r"^\s+\d+/(\d+)\s", text, re.M)}
    assert codes <= listed, f"exit codes missing from `etl --help`: {sorted(codes - listed)}"


def test_article_overview_columns_are_all_in_the_readme_table() -> None:
    from etl.db.views import VIEWS

    rows = {match[1]: match[2] for match in re.finditer(r"^\| `(\w+)` \| (.*) \|$", README, re.M)}
    assert "article_overview" in rows, "the README's views table has no article_overview row"
    # Column names count only inside backticks: the row's prose says "sources" too.
    named = set(re.findall(r"\w+", " ".join(re.findall(r"`([^`]*)`", rows["article_overview"]))))
    [view] = [view for view in VIEWS if view.name == "article_overview"]
    missing = [column.name for column in view.columns if column.name not in named]
    assert not missing, f"article_overview: columns the README does not list: {missing}"
