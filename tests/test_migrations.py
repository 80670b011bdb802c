"""The schema comes from Alembic migrations, and they match etl.schema on every backend."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from etl import database
from etl.schema import metadata
from tests.conftest import ROOT


def _diff(url: str) -> list:
    engine = database.make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "target_metadata": metadata}
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_migrations_match_models(db_url: str) -> None:
    engine = database.make_engine(db_url)
    database.upgrade(engine)
    engine.dispose()
    assert _diff(db_url) == []


def test_upgrade_downgrade_round_trip(db_url: str) -> None:
    engine = database.make_engine(db_url)
    try:
        database.upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables
        database.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        database.upgrade(engine)
        assert database.current_revision(engine) == database.head_revision()
    finally:
        engine.dispose()
    assert _diff(db_url) == []


def test_alembic_command_line_upgrades(sqlite_url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={sqlite_url}", "upgrade", "head"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    engine = database.make_engine(sqlite_url)
    try:
        assert database.current_revision(engine) == database.head_revision()
    finally:
        engine.dispose()


def test_etl_db_commands(sqlite_url: str) -> None:
    def etl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "etl", *args], capture_output=True, text=True, cwd=ROOT
        )

    assert "none" in etl("db", "current", "--database-url", sqlite_url).stdout
    assert etl("db", "upgrade", "--database-url", sqlite_url).returncode == 0
    assert "(head)" in etl("db", "current", "--database-url", sqlite_url).stdout
    assert database.head_revision() in etl("db", "history").stdout
    sql = etl("db", "upgrade", "--sql", "--database-url", "postgresql://u@h/db").stdout
    assert "CREATE TABLE articles" in sql
    assert "pg_advisory" not in sql


def test_upgrade_keeps_rows_loaded_at_the_previous_revision(db_url: str) -> None:
    """Data written under revision N-1 survives the upgrade to head unchanged.

    The rows are loaded at head, the schema is taken back to the previous revision
    (rows must survive the downgrade too), then upgraded again.
    """
    from etl import run
    from tests.conftest import SEEDS
    from tests.helpers import snapshot

    run([SEEDS], db_url)
    loaded = snapshot(db_url)
    engine = database.make_engine(db_url)
    try:
        script_head = database.head_revision()
        previous = next(
            rev.down_revision
            for rev in ScriptDirectory.from_config(database.alembic_config()).walk_revisions()
            if rev.revision == script_head
        )
        assert previous is not None, "only one revision: nothing to upgrade from"
        database.downgrade(engine, str(previous))
        assert database.current_revision(engine) == previous
        assert snapshot(db_url) == loaded
        database.upgrade(engine)
        assert database.current_revision(engine) == script_head
    finally:
        engine.dispose()
    assert snapshot(db_url) == loaded
    assert _diff(db_url) == []
    assert run([SEEDS], db_url).files_skipped_unchanged == len(list(SEEDS.glob("*.md")))
