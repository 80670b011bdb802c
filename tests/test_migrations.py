"""The schema comes from Alembic migrations, and they match etl.db.schema on every backend."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CreateTable

from etl import run
from etl.db import database
from etl.db.schema import (
    MARIADB_URL_LOOKUPS,
    MYSQL_TABLE_OPTIONS,
    include_name,
    metadata,
    with_mysql_table_options,
)
from tests.helpers import ROOT, SEEDS, run_etl
from tests.snapshots import as_of, snapshot


def _diff(url: str) -> list[Any]:
    engine = database.make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "target_metadata": metadata,
                    "include_name": include_name,  # as env.py: the search index is not modelled
                },
            )
            diff: list[Any] = compare_metadata(context, metadata)
            return diff
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
    assert "none" in run_etl("db", "current", "--database-url", sqlite_url).stdout
    assert run_etl("db", "upgrade", "--database-url", sqlite_url).returncode == 0
    assert "(head)" in run_etl("db", "current", "--database-url", sqlite_url).stdout
    head = database.head_revision()
    assert head is not None
    assert head in run_etl("db", "history").stdout
    # A database this machine cannot reach: --from says where it is (base: empty).
    unreachable = ("--database-url", "postgresql://u@h/db")
    sql = run_etl("db", "upgrade", "--sql", "--from", "base", *unreachable).stdout
    assert "CREATE TABLE articles" in sql
    assert "pg_advisory" not in sql


def test_upgrade_keeps_rows_loaded_at_the_previous_revision(db_url: str) -> None:
    """Data written under revision N-1 survives the upgrade to head unchanged.

    The rows are loaded at head, the schema is taken back to the previous revision
    (rows must survive the downgrade too), then upgraded again.
    """
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
        older = snapshot(db_url)
        assert older == as_of(loaded, older)
        database.upgrade(engine)
        assert database.current_revision(engine) == script_head
    finally:
        engine.dispose()
    assert snapshot(db_url) == loaded
    assert _diff(db_url) == []
    assert run([SEEDS], db_url).files_skipped_unchanged == len(list(SEEDS.glob("*.md")))


def test_upgrade_to_0014_deletes_what_nothing_references(db_url: str) -> None:
    """Runs before 0014 swept orphans at their end; a run stopped before it could leave
    some, which no later run looks for: the upgrade deletes them, and only them."""
    run([SEEDS], db_url)
    loaded = snapshot(db_url)
    engine = database.make_engine(db_url)
    try:
        database.downgrade(engine, "0013")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO topics (slug, name) VALUES ('gone', 'Gone')"))
            conn.execute(text("INSERT INTO images (url) VALUES ('https://gone.example/a.png')"))
            conn.execute(
                text("INSERT INTO providers (domain, name) VALUES ('gone.example', 'Gone')")
            )
            conn.execute(
                text(
                    "INSERT INTO provider_images (provider_id, image_id, position) "
                    "SELECT p.id, i.id, 0 FROM providers p, images i "
                    "WHERE p.domain = 'gone.example' AND i.url = 'https://gone.example/a.png'"
                )
            )
        database.upgrade(engine)
    finally:
        engine.dispose()
    assert snapshot(db_url) == loaded


def test_mariadb_tables_have_the_declared_charset_and_collation(mariadb_url: str) -> None:
    """The migrations spell out MYSQL_TABLE_OPTIONS; every table and text column has them."""
    expected = (MYSQL_TABLE_OPTIONS["mysql_charset"], MYSQL_TABLE_OPTIONS["mysql_collate"])
    engine = database.make_engine(mariadb_url)
    try:
        database.upgrade(engine)
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT t.table_name, c.character_set_name, t.table_collation "
                    "FROM information_schema.tables t "
                    "JOIN information_schema.collation_character_set_applicability c "
                    "ON c.collation_name = t.table_collation "
                    "WHERE t.table_schema = DATABASE()"
                )
            ).all()
            columns = conn.execute(
                text(
                    "SELECT table_name, column_name, character_set_name, collation_name "
                    "FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND collation_name IS NOT NULL"
                )
            ).all()
    finally:
        engine.dispose()
    found = {name: (charset, collation) for name, charset, collation in tables}
    assert {name: found.get(name) for name in metadata.tables} == dict.fromkeys(
        metadata.tables, expected
    )
    ours = [row for row in columns if row[0] in metadata.tables]
    assert len(ours) > 20  # urls, titles, slugs, ...
    assert {tuple(row[2:]) for row in ours} == {expected}


def test_mariadb_finds_articles_and_images_by_url_through_an_index(mariadb_url: str) -> None:
    """Its hashed unique keys on TEXT URLs are never used to find a row (0013's reason)."""
    engine = database.make_engine(mariadb_url)
    try:
        database.upgrade(engine)
        with engine.connect() as conn:
            for index, table in MARIADB_URL_LOOKUPS.items():
                plans = [
                    conn.execute(text(f"EXPLAIN SELECT id FROM {table} WHERE url {condition}"))
                    .mappings()
                    .one()
                    for condition in ("= 'https://a.example/x'", "IN ('https://a', 'https://b')")
                ]
                assert [plan["key"] for plan in plans] == [index, index], plans
        database.downgrade(engine, "0012")  # after the reads' metadata locks are released
        with engine.connect() as conn:
            plan = conn.execute(text("EXPLAIN SELECT id FROM articles WHERE url = 'x'")).mappings()
            assert plan.one()["type"] == "ALL"  # before 0013: the whole table
    finally:
        engine.dispose()


def test_with_mysql_table_options_puts_them_on_every_table() -> None:
    tables = with_mysql_table_options().tables.values()
    assert all(dict(table.kwargs) == MYSQL_TABLE_OPTIONS for table in tables)
    assert with_mysql_table_options() is metadata  # again: the same, nothing added
    ddl = str(CreateTable(metadata.tables["articles"]).compile(dialect=mysql.dialect()))
    assert "CHARSET=utf8mb4" in ddl and "COLLATE utf8mb4_bin" in ddl
