"""The schema comes from Alembic migrations, and they match etl.schema on every backend."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
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
