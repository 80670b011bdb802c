"""Operations: the installed package, dry runs, scheduler configuration, small errors.

How an operator meets the tool: a wheel installed into a fresh environment used from
another directory; a dry run that computes a real run's summary and writes nothing;
``ETL_*`` variables; a connect timeout against a server that never answers; one-line
errors. Signals and runs left by a killed process are in ``tests/test_interruptions.py``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import make_url

import etl
from etl.cli import load_commands
from etl.cli import main as cli_main
from etl.db import database
from etl.db.schema import etl_runs, rejected_documents
from tests.helpers import ROOT, SEEDS, SLOW_CLI_TIMEOUT, run_etl, start_etl
from tests.snapshots import snapshot


def ledger_rows(url: str) -> tuple[int, int]:
    """How many runs and rejections the database records."""
    engine = create_engine(database.resolve_url(url))
    try:
        with engine.connect() as conn:
            runs = conn.execute(select(func.count()).select_from(etl_runs)).scalar_one()
            rejects = conn.execute(select(func.count()).select_from(rejected_documents))
            return runs, rejects.scalar_one()
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(database.resolve_url(url))
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


# --- the package, installed from a wheel, used from another directory ------------------------


def _build_wheel(tmp_path: Path) -> Path:
    """The package's wheel, built from a copy: setuptools writes build/ and *.egg-info
    beside the sources, and a test writes only under its temporary directory."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "etl", source / "etl", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=SLOW_CLI_TIMEOUT,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("news_etl-*.whl")
    return wheel


def _install_into_a_fresh_venv(wheel: Path, venv: Path) -> Path:
    """A fresh environment at ``venv`` holding only ``wheel``: its site-packages. The
    dependencies come from the test environment's site-packages as a plain path (its .pth
    files, among them the editable install of the checkout, are not processed there)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site_packages / "test_dependencies.pth").write_text("\n".join(deps) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    install = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=SLOW_CLI_TIMEOUT,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return site_packages


@pytest.mark.slow
def test_wheel_install_runs_every_command_from_another_directory(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    site_packages = _install_into_a_fresh_venv(_build_wheel(tmp_path), venv)
    python = venv / "bin" / "python"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import etl; print(etl.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(site_packages)), where  # the wheel, not the checkout
    exe = [str(venv / "bin" / "etl")]
    news = tmp_path / "news"
    shutil.copytree(SEEDS, news)

    def etl_(*args: str) -> subprocess.CompletedProcess[str]:
        return run_etl(*args, cwd=elsewhere, exe=exe)

    result = etl_("run")
    assert result.returncode == 2, result.stderr
    assert "no PATH given" in result.stderr and "Traceback" not in result.stderr
    assert not list(elsewhere.iterdir()), "a failed run left a file behind"

    result = etl_("run", str(news), "-v")
    assert result.returncode == 0, result.stderr
    assert "19 articles inserted" in result.stdout
    # The head schema's recordings ship in the wheel: no Alembic for a new database.
    assert "schema created at revision" in result.stderr
    assert "Running upgrade" not in result.stderr
    assert "succeeded" in etl_("runs").stdout
    assert etl_("rejects").stdout.strip() == "no rejected documents"
    assert etl_("db", "current").stdout.strip() == f"{etl.db.schema.SCHEMA_REVISION} (head)"
    history = etl_("db", "history")
    assert history.returncode == 0 and "0001  initial schema" in history.stdout
    offline = etl_("db", "upgrade", "--sql", "--from", "base")
    assert offline.returncode == 0 and "CREATE TABLE articles" in offline.stdout
    downgrade = etl_("db", "downgrade", "base", "--yes")
    assert downgrade.returncode == 0, downgrade.stderr
    assert etl_("db", "current").stdout.strip() == "none (empty database)"
    not_etl = etl_("runs")
    assert not_etl.returncode == 2 and "not an etl database" in not_etl.stderr
    upgrade = etl_("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert etl_("db", "current").stdout.strip() == f"{etl.db.schema.SCHEMA_REVISION} (head)"
    for result in (history, offline, downgrade, upgrade):
        assert "Traceback" not in result.stderr


# --- dry runs ---------------------------------------------------------------------------------


def _edit_tree(tree: Path) -> None:
    """An edit, a deletion, a new file and a broken one: every counter moves."""
    files = sorted(tree.glob("*.md"))
    text_ = files[0].read_text(encoding="utf-8")
    files[0].write_text(text_.replace("title:", "title: Edited -", 1), encoding="utf-8")
    files[1].unlink()
    new = files[2].read_text(encoding="utf-8")
    web_url = next(line for line in new.splitlines() if line.startswith("webUrl:"))
    new = new.replace(web_url, "webUrl: https://example.com/a-new-story", 1)
    (tree / "zzz_new.md").write_text(new, encoding="utf-8")
    (tree / "zzz_broken.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")


def test_dry_run_computes_the_real_runs_summary_and_writes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    tree = tmp_path / "news"
    shutil.copytree(SEEDS, tree)
    etl.run([tree], db_url)
    _edit_tree(tree)
    before, ledger_before = snapshot(db_url), ledger_rows(db_url)

    dry = etl.run([tree], db_url, prune=True, dry_run=True)
    assert dry.dry_run and dry.status == "partial"
    assert snapshot(db_url) == before
    assert ledger_rows(db_url) == ledger_before  # not even its own run row

    real = etl.run([tree], db_url, prune=True)
    assert dry.counts() == real.counts()
    assert (dry.status, dry.rejected) == (real.status, real.rejected)
    assert real.articles_updated and real.articles_inserted and real.articles_removed


def test_dry_run_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    tree = tmp_path / "news"
    shutil.copytree(SEEDS, tree)
    etl.run([tree], db_url)
    _edit_tree(tree)
    before, ledger_before = snapshot(db_url), ledger_rows(db_url)
    args = ("run", str(tree), "--database-url", db_url, "--prune")
    dry = run_etl(*args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 1, dry.stderr  # a document is rejected, as in the real run
    assert "dry run: nothing written" in dry.stdout
    assert snapshot(db_url) == before and ledger_rows(db_url) == ledger_before
    real = run_etl(*args, cwd=tmp_path)
    assert dry.stdout.split(" [")[0] == real.stdout.split(" [")[0]  # the same counts


def test_dry_run_on_an_empty_database_creates_nothing(db_url: str, tmp_path: Path) -> None:
    backend = make_url(db_url).get_backend_name()
    if backend != "sqlite":
        assert not table_names(db_url)
    if backend in ("mysql", "mariadb"):
        # MariaDB commits DDL: a dry run needs the schema in place.
        with pytest.raises(database.ConfigurationError, match="etl db upgrade"):
            etl.run([SEEDS], db_url, dry_run=True)
    else:
        summary = etl.run([SEEDS], db_url, dry_run=True)
        assert summary.articles_inserted == 19
    path = database.sqlite_file(db_url)
    if path is not None:
        assert not path.exists()
    else:
        assert not table_names(db_url)


# --- configuration for schedulers -----------------------------------------------------------------


def test_every_run_option_reads_an_etl_environment_variable() -> None:
    load_commands()  # the group imports a command's module when the command is asked for
    command = cli_main.commands["run"]
    for param in command.params:
        if param.name in ("help", "verbose", "quiet"):
            continue  # -v/-q: ETL_VERBOSE and ETL_QUIET are read once, by the group
        assert param.envvar and str(param.envvar).startswith("ETL_"), param.name
    # The group takes the shared options (etl.cli.options), each with its variable.
    assert {str(param.envvar) for param in cli_main.params if param.envvar} == {
        "ETL_VERBOSE",
        "ETL_QUIET",
        "ETL_LOG_FORMAT",
        "ETL_DATABASE_URL",
        "ETL_CONNECT_TIMEOUT",
        "ETL_JSON",
    }


def test_run_is_configured_from_the_environment(sqlite_url: str, tmp_path: Path) -> None:
    env = {
        "ETL_PATHS": f"{SEEDS}",
        "ETL_DATABASE_URL": sqlite_url,
        "ETL_JSON": "1",
        "ETL_DRY_RUN": "1",
        "ETL_SHARD": "0/2",
        "ETL_BATCH_SIZE": "3",
        "ETL_WORKERS": "1",
    }
    result = run_etl("run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True
    assert 0 < summary["files_seen"] < 21  # one shard of the seeds
    assert not Path(make_url(sqlite_url).database or "").exists()


def test_verbosity_flags_work_after_the_subcommand(sqlite_url: str, tmp_path: Path) -> None:
    args = ("run", str(SEEDS), "--database-url", sqlite_url, "--workers", "1")
    verbose = run_etl("-q", *args, "-vv", cwd=tmp_path)  # -q, then -vv: INFO
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO etl.db.database: schema created" in verbose.stderr  # a new database's
    quiet = run_etl(*args, "-q", "-q", "-q", "--full-refresh", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert run_etl("runs", "--database-url", sqlite_url, "-v", cwd=tmp_path).returncode == 0


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A local TCP port whose listener never accepts nor answers: the handshake completes in
    the kernel, then nothing (a server hung, or a firewall that drops packets)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_an_unreachable_database_fails_within_the_connect_timeout(
    scheme: str, blackhole_port: int, tmp_path: Path
) -> None:
    url = f"{scheme}://etl@127.0.0.1:{blackhole_port}/news"
    args = ("--database-url", url, "--connect-timeout", "2")
    commands = (("run", str(SEEDS)), ("runs",), ("db", "current"))
    # All at once: each waits out its own timeout, and one wait is enough for the test.
    procs = [
        start_etl(
            *command, *args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    try:
        for command, proc in zip(commands, procs, strict=True):
            # Far beyond the 2 s timeout: without one, the command would hang until killed.
            try:
                _, stderr = proc.communicate(timeout=SLOW_CLI_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"etl {command[0]} hung on an unanswering server")
            assert proc.returncode == 3, stderr
            assert "Traceback" not in stderr and "127.0.0.1" in stderr
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_postgresql_engine_does_not_ask_for_hstore(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No column is an hstore: the engine does not ask the server for the type when it
    first connects (a savepoint, a catalog query, a release: each run's engine did).
    An engine made without the option does ask, which shows the spy sees the
    question."""
    asked: list[str] = []
    dialect_class: Any = type(database.make_engine(pg_url).dialect)
    fetch = dialect_class._type_info_fetch

    def spy(self: Any, connection: Any, name: str) -> Any:
        asked.append(name)
        return fetch(self, connection, name)

    monkeypatch.setattr(dialect_class, "_type_info_fetch", spy)
    for engine, expected in (
        (create_engine(database.resolve_url(pg_url)), ["hstore"]),
        (database.make_engine(pg_url), []),
    ):
        asked.clear()
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        finally:
            engine.dispose()
        assert asked == expected


# --- small errors -------------------------------------------------------------------------------


def test_ledger_commands_on_a_missing_sqlite_file_create_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.sqlite3'}"
    for command in (("runs",), ("rejects",), ("rejects", "3"), ("db", "downgrade", "base")):
        result = run_etl(*command, "--database-url", url, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert "not an etl database, run `etl db upgrade`" in result.stderr.replace(":", ",")
    current = run_etl("db", "current", "--database-url", url, cwd=tmp_path)
    assert current.returncode == 0 and current.stdout.startswith("none")
    assert not list(tmp_path.iterdir())


def test_ledger_commands_on_a_database_without_the_schema(db_url: str, tmp_path: Path) -> None:
    path = database.sqlite_file(db_url)
    if path is not None:
        path.touch()  # an empty file
    for command in (("runs",), ("rejects",)):
        result = run_etl(*command, "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "is not an etl database: run `etl db upgrade`" in result.stderr
    with pytest.raises(database.NotAnEtlDatabase):
        etl.runs(db_url)


def test_unknown_run_and_no_rejections(sqlite_url: str, tmp_path: Path) -> None:
    etl.run([SEEDS], sqlite_url)
    unknown = run_etl("rejects", "999", "--database-url", sqlite_url, cwd=tmp_path)
    assert unknown.returncode == 2 and "no run 999" in unknown.stderr
    none = run_etl("rejects", "--database-url", sqlite_url, cwd=tmp_path)
    assert (none.returncode, none.stdout) == (0, "no rejected documents\n")
    assert etl.rejections(database_url=sqlite_url) == []
    (run,) = etl.runs(sqlite_url)
    assert run["status"] == "succeeded" and run["articles_inserted"] == 19
    with pytest.raises(database.ConfigurationError, match="no run 999"):
        etl.rejections(999, sqlite_url)


def test_every_option_has_help_and_the_command_list_is_not_truncated() -> None:
    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Parameter]]:
        for param in command.params:
            yield path, param
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    load_commands()
    for path, param in walk(cli_main, "etl"):
        if isinstance(param, click.Option):
            assert param.help, f"{path} {param.opts[0]} has no help text"
    result = run_etl("--help", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    listing = result.stdout
    commands = listing.split("Commands:")[1]
    assert "..." not in commands
    for name, command in cli_main.commands.items():
        assert command.short_help and command.short_help in " ".join(listing.split()), name


def test_mariadb_connections_share_one_tls_context_where_no_tls_option_is_given(
    mariadb_url: str,
) -> None:
    """PyMySQL builds a TLS context per connection (36 ms: the system's certificate
    store) to try TLS where the server offers it; this process builds it once, and
    connections still only try TLS, as PyMySQL's would."""
    import ssl

    first, second = database.make_engine(mariadb_url), database.make_engine(mariadb_url)
    try:
        raws = [first.raw_connection(), first.raw_connection(), second.raw_connection()]
        drivers: list[Any] = [raw.dbapi_connection for raw in raws]
        assert len({id(driver) for driver in drivers}) == 3
        assert len({id(driver.ctx) for driver in drivers}) == 1
        assert all(driver.ssl and not driver._ssl_required for driver in drivers)
        assert drivers[0].ctx.verify_mode == ssl.CERT_NONE
        for raw in raws:
            raw.close()
        # A TLS option of the URL's gets a context of its own, made by PyMySQL.
        given = {"verify_mode": "required", "check_hostname": False}
        kind: Any = type(drivers[0])
        own = kind.__new__(kind)._create_ssl_ctx(given)
        assert own is not drivers[0].ctx and own.verify_mode == ssl.CERT_REQUIRED
    finally:
        first.dispose()
        second.dispose()
