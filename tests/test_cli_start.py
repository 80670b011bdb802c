"""How ``etl`` starts: the command line is parsed with click and the options only, and
``etl run`` asks the parse-ahead helper for its survey then, before SQLAlchemy and the
pipeline are imported (``etl.__main__``, ``etl.cli.run_command.survey_ahead``); each
command's module is imported when the command is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl.cli import group, load_commands, main, run_command
from etl.runner import parse_ahead
from tests.helpers import run_python


def test_the_command_line_is_parsed_before_sqlalchemy_is_imported() -> None:
    code = (
        "import sys\n"
        "import etl.cli, etl.cli.run_command\n"
        "etl.cli.run_command.survey_ahead(['run', '--shard', '1/2', '.'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'psycopg', 'pymysql', 'pydantic', 'yaml', 'alembic'}))\n"
    )
    result = run_python(code, timeout=60)
    assert result.stdout.split() == ["[]"], result.stderr


def test_each_command_is_defined_in_the_module_the_group_names() -> None:
    load_commands()
    assert sorted(main.commands) == sorted(group.COMMAND_MODULES)
    for name, command in main.commands.items():
        assert command.callback is not None
        defined = getattr(command.callback, "__module__", None)
        if name == "db":  # a group: its subcommands' callbacks say where they live
            defined = next(iter(command.commands.values())).callback.__module__  # type: ignore[attr-defined]
        assert defined == group.COMMAND_MODULES[name], name


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """What survey_ahead asks the parse-ahead helper for (no helper is started)."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(parse_ahead, "survey", lambda *args: calls.append(args))
    for name in ("ETL_PATHS", "ETL_SOURCE", "ETL_SHARD", "ETL_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    return calls


@pytest.mark.parametrize(
    ("argv", "request_"),
    [
        (["run", "a"], (["a"], None, None)),
        (["run", "a", "b/"], (["a", "b/"], None, None)),
        (["-v", "run", "--source", "s", "--shard", "1/4", "a"], (["a"], "s", (1, 4))),
        (["--database-url", "sqlite://", "run", "--json", "a"], (["a"], None, None)),
        (["--database-url", "run", "run", "a"], (["a"], None, None)),  # a URL named run
        (["run", "--workers", "2", "a"], (["a"], None, None)),
        (["run", "--workers", "1", "a"], None),  # all in this process: nobody to ask
        (["run"], None),  # the checkout's seeds: the run asks when it knows them
        (["run", "--shard", "9/2", "a"], None),  # the run reports the bad shard
        (["run", "--no-such-option", "a"], None),
        (["run", "--help"], None),
        (["runs", "a"], None),
        (["search", "run"], None),
        (["--version"], None),
        ([], None),
    ],
)
def test_etl_run_asks_for_the_survey_its_run_will_ask_for(
    argv: list[str], request_: tuple[Any, ...] | None, asked: list[tuple[Any, ...]]
) -> None:
    run_command.survey_ahead(argv)
    assert asked == ([] if request_ is None else [request_])


def test_paths_and_options_from_the_environment_are_asked_for_too(
    asked: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ETL_PATHS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("ETL_SHARD", "0/3")
    monkeypatch.setenv("ETL_SOURCE", "news")
    run_command.survey_ahead(["run"])
    assert asked == [([str(tmp_path / "a"), str(tmp_path / "b")], "news", (0, 3))]
