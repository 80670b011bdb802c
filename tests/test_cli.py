"""One CLI: the shared options in any position, contradictions refused, closed pipes,
several search words, and the migration commands' guards; run as the operator would
(``python -m etl`` in a subprocess)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from etl.cli import options
from etl.db import database
from etl.db.schema import SCHEMA_REVISION
from tests.helpers import SEEDS, connect, run_etl, run_python, start_etl


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An SQLite database with the seeds loaded (commands here only read it)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'etl.sqlite3'}"
    result = run_etl("run", str(SEEDS), "--database-url", url)
    assert result.returncode == 0, result.stderr
    return url


@pytest.mark.parametrize(
    "args",
    [
        ("--database-url", "{url}", "runs", "--json"),
        ("runs", "--database-url", "{url}", "--json"),
        ("--json", "runs", "--database-url", "{url}"),
        ("-v", "runs", "--json", "-q", "--database-url", "{url}"),
        ("changes", "--latest", "-v", "--connect-timeout", "5", "--database-url", "{url}"),
        ("--connect-timeout", "5", "changes", "--latest", "--database-url", "{url}"),
        ("search", "azure", "--json", "--connect-timeout", "5", "--database-url", "{url}"),
        ("--database-url", "{url}", "db", "current", "--connect-timeout", "5"),
        ("db", "history", "--database-url", "{url}"),
        ("rejects", "--json", "--log-format", "json", "--database-url", "{url}"),
        ("schema", "--json", "-q"),
        ("changes", "--latest", "--json", "--database-url", "{url}"),
        ("--json", "changes", "--compact", "--keep", "365", "--database-url", "{url}"),
    ],
    ids=" ".join,
)
def test_shared_options_are_accepted_in_any_position(loaded: str, args: tuple[str, ...]) -> None:
    result = run_etl(*(loaded if arg == "{url}" else arg for arg in args))
    assert result.returncode == 0, result.stderr
    if "--json" in args:
        json.loads(result.stdout)


def test_the_later_value_wins_and_the_command_line_beats_the_environment(
    loaded: str, tmp_path: Path
) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.sqlite3'}"
    later = run_etl("--database-url", missing, "runs", "--database-url", loaded)
    assert later.returncode == 0, later.stderr
    env = run_etl("runs", "--database-url", loaded, env={"ETL_DATABASE_URL": missing})
    assert env.returncode == 0, env.stderr
    group_env = run_etl("--database-url", loaded, "runs", env={"ETL_DATABASE_URL": missing})
    assert group_env.returncode == 0, group_env.stderr


def test_db_history_marks_the_databases_revision(loaded: str) -> None:
    result = run_etl("db", "history", "--database-url", loaded)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    marked = [line for line in lines if line.endswith("  (current)")]
    assert marked == [lines[0]] and lines[0].startswith(f"{SCHEMA_REVISION}  ")  # the head
    assert "(current)" not in run_etl("db", "history").stdout  # no database given


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("changes", "--latest", "--since", "5"), "--latest does not go with --since"),
        (("changes", "--latest", "--follow"), "--latest does not go with --follow"),
        (("changes", "--compact", "--keep", "1", "--limit", "3"), "--compact does not go with"),
        (("changes", "--latest", "--compact", "--keep", "1"), "exclude each other"),
        (("changes", "--keep", "1"), "--compact and --keep DAYS go together"),
        (("run", str(SEEDS), "--max-prune", "0.9"), "--max-prune SHARE goes with --prune"),
        (("db", "upgrade", "--from", "0008"), "--from REV goes with --sql"),
        (("--json", "db", "upgrade"), "does not take --json"),
        (("--json", "db", "history"), "does not take --json"),
        (("--database-url", "{url}", "schema"), "does not take --database-url"),
        (("search",), "Missing argument"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else value,
)
def test_contradictory_options_are_refused(
    loaded: str, args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    result = run_etl(*(loaded if arg == "{url}" else arg for arg in args), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not list(tmp_path.iterdir())  # nothing created, nothing run


@pytest.mark.parametrize(
    "args",
    [
        ("run", str(SEEDS), "--json", "--full-refresh"),
        ("runs",),
        ("rejects",),
        ("changes",),
        ("changes", "--latest"),
        ("search", "azure", "--limit", "1000"),
        ("schema",),
        ("db", "history"),
        ("db", "current"),
        ("db", "upgrade", "--sql", "--from", "base"),
        ("runs", "--help"),
        ("--help",),
        ("--version",),
    ],
    ids=" ".join,
)
def test_every_command_ends_quietly_on_a_closed_pipe(loaded: str, args: tuple[str, ...]) -> None:
    """``etl ... | head -0``: the reader is gone before the first line is written."""
    without = ("schema", "--help", "--version")
    database = () if args[0] in without else ("--database-url", loaded)
    process = start_etl(*args, *database, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert stderr == ""


def test_search_takes_several_words(loaded: str) -> None:
    apart = run_etl("search", "azure", "kubernetes", "--json", "--database-url", loaded)
    quoted = run_etl("search", "azure kubernetes", "--json", "--database-url", loaded)
    assert apart.returncode == quoted.returncode == 0, apart.stderr
    assert json.loads(apart.stdout) == json.loads(quoted.stdout)
    one = json.loads(run_etl("search", "azure", "--json", "--database-url", loaded).stdout)
    assert len(json.loads(apart.stdout)) <= len(one)


def test_short_words_get_a_hint_on_mariadb_only(db_url: str) -> None:
    assert run_etl("run", str(SEEDS), "--database-url", db_url).returncode == 0
    short = run_etl("search", "AI", "of", "--database-url", db_url)
    assert short.returncode == 0, short.stderr
    hinted = "innodb_ft_min_token_size" in short.stderr
    assert hinted is db_url.startswith("mysql"), short.stderr
    if hinted:
        assert "shorter than 3 characters" in short.stderr
    longer = run_etl("search", "AI", "azure", "--database-url", db_url)
    assert "innodb_ft_min_token_size" not in longer.stderr


# --- migrations --------------------------------------------------------------------------------


def _tables(url: str) -> set[str]:
    with connect(url) as conn:
        return set(inspect(conn).get_table_names())


def _steps_down(stop: str) -> list[tuple[str, str, bool]]:
    """(revision, the one below it, whether its downgrade keeps data), newest first,
    from the head down to ``stop``: what each step of a downgrade undoes."""
    scripts = ScriptDirectory.from_config(database.alembic_config())
    steps = []
    for script in scripts.walk_revisions():
        if script.revision == stop:
            break
        keeps = bool(getattr(script.module, "DOWNGRADE_KEEPS_DATA", False))
        steps.append((script.revision, str(script.down_revision), keeps))
    return steps


def test_downgrades_that_drop_data_need_yes_off_a_terminal(db_url: str) -> None:
    assert run_etl("db", "upgrade", "--database-url", db_url).returncode == 0
    before = _tables(db_url)
    refused = run_etl("db", "downgrade", "base", "--database-url", db_url)
    assert refused.returncode == 2, refused.stderr
    assert "drops every table: pass --yes" in refused.stderr
    assert _tables(db_url) == before
    steps = _steps_down("0006")
    # Both kinds are walked: one that keeps data (an index, views) and one that drops it.
    assert {keeps for _, _, keeps in steps} == {True, False}
    for revision, below, keeps in steps:
        step = run_etl("db", "downgrade", below, "--database-url", db_url)
        if keeps:  # it drops only what is derived from other rows: no --yes needed
            assert step.returncode == 0, (revision, step.stderr)
            continue
        assert step.returncode == 2 and f"drops data ({revision})" in step.stderr, step.stderr
        forced = run_etl("db", "downgrade", below, "--yes", "--database-url", db_url)
        assert forced.returncode == 0, forced.stderr
    done = run_etl("db", "downgrade", "base", "--yes", "--database-url", db_url)
    assert done.returncode == 0, done.stderr
    assert not _tables(db_url) - {"alembic_version"}


def test_upgrade_sql_prints_only_what_the_database_lacks(db_url: str, tmp_path: Path) -> None:
    assert run_etl("db", "upgrade", "--database-url", db_url).returncode == 0
    current = run_etl("db", "upgrade", "--sql", "--database-url", db_url)
    assert current.returncode == 0, current.stderr
    assert current.stdout == ""
    assert f"nothing to upgrade: the database is at {SCHEMA_REVISION}" in current.stderr
    [(head, below, _), (_, further, _)] = _steps_down(stop="")[:2]
    down = run_etl("db", "downgrade", below, "--yes", "--database-url", db_url)
    assert down.returncode == 0, down.stderr
    behind = run_etl("db", "upgrade", "--sql", "--database-url", db_url)
    assert behind.returncode == 0, behind.stderr
    assert f"Running upgrade {below} -> {head}" in behind.stdout
    assert f"Running upgrade {further} -> {below}" not in behind.stdout
    # --from: without reaching the database (nothing listens on port 1).
    scheme = db_url.split(":", 1)[0]
    unreachable = f"{scheme}://etl@127.0.0.1:1/news" if scheme != "sqlite" else db_url
    if scheme != "sqlite":
        refused = run_etl("db", "upgrade", "--sql", "--database-url", unreachable)
        assert refused.returncode == 3
        assert "pass --from REV to print the SQL without connecting" in refused.stderr
    offline = run_etl("db", "upgrade", "--sql", "--from", below, "--database-url", unreachable)
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout == behind.stdout
    everything = run_etl("db", "upgrade", "--sql", "--from", "base", "--database-url", unreachable)
    assert "Running upgrade  -> 0001" in everything.stdout
    nothing = run_etl("db", "upgrade", "--sql", "--from", head, "--database-url", unreachable)
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert f"nothing to upgrade: from {head}" in nothing.stderr  # no database was asked


def test_upgrade_sql_of_a_missing_sqlite_file_is_the_whole_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    result = run_etl("db", "upgrade", "--sql", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Running upgrade  -> 0001" in result.stdout
    assert not list(tmp_path.iterdir())


def test_a_downgrade_that_drops_data_asks_on_a_terminal(sqlite_url: str) -> None:
    """On a terminal the operator is asked; "n" keeps everything, "y" downgrades."""
    assert run_etl("db", "upgrade", "--database-url", sqlite_url).returncode == 0
    before = _tables(sqlite_url)
    for answer, expected in (("n", before), ("y", {"alembic_version"})):
        controller, terminal = pty.openpty()
        try:
            process = start_etl(
                "db",
                "downgrade",
                "base",
                "--database-url",
                sqlite_url,
                stdin=terminal,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            os.write(controller, f"{answer}\n".encode())
            stdout, stderr = process.communicate(timeout=120)
        finally:
            os.close(controller)
            os.close(terminal)
        assert process.returncode == 0, stderr
        assert "Downgrading to base drops every table. Go on?" in stdout
        assert _tables(sqlite_url) | {"alembic_version"} == expected | {"alembic_version"}


@pytest.mark.parametrize(
    ("argv", "url"),
    [
        (["run", "--database-url", "postgresql://a/b", "news/"], "postgresql://a/b"),
        (["--database-url=mysql://a/b", "runs"], "mysql://a/b"),
        (["--database-url", "sqlite://", "run", "--database-url", "mysql://x/y"], "mysql://x/y"),
        (["run", "news/", "--", "--database-url", "postgresql://a/b"], None),
        (["run", "--database-url"], None),
        (["run", "news/"], None),
    ],
)
def test_the_database_url_a_command_line_names(argv: list[str], url: str | None) -> None:
    assert options.database_url_in(argv) == url


@pytest.mark.parametrize(
    ("argv", "imported"),
    [
        (["run", "--database-url", "postgresql://nobody@127.0.0.1:1/none"], True),
        (["run", "--database-url", "sqlite:///x.sqlite3"], False),
        (["run", "--database-url", "not a url at all"], False),
        (["run", "--database-url", "oracle://nobody@nowhere/x"], False),  # no such driver
    ],
)
def test_etl_imports_the_named_driver_with_the_cli(argv: list[str], imported: bool) -> None:
    """Before the command runs, while the collector is paused (``etl.__main__``); what
    cannot be imported is the command's to report, not this step's."""
    code = (
        "import sys\n"
        "from etl.cli.options import warm_driver\n"
        "warm_driver(sys.argv[1:])\n"
        "print('psycopg' in sys.modules)\n"
    )
    result = run_python(code, *argv)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(imported)]
