"""An empty database gets the head schema from the recorded statements of the migration
chain (etl.db.head_schema), and that schema is the one Alembic makes, on every backend."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import alembic.command
import pytest
from sqlalchemy import inspect, make_url, text

from etl.db import database, head_schema, migrating
from etl.db.schema import SCHEMA_REVISION
from tests.helpers import connect, make_database, unavailable


@pytest.mark.parametrize("dialect", sorted(head_schema.DIALECTS))
def test_each_recording_is_what_the_migration_chain_renders_now(dialect: str) -> None:
    """Statement for statement. SQLite: a table that the chain rebuilds lists its
    constraints in an order Alembic takes from a set, which changes from one process
    to the next (its online runs differ alike): those are compared as sets."""
    recorded = head_schema.recorded(dialect)
    assert recorded is not None, f"no recording at {SCHEMA_REVISION}: python -m etl.db.migrating"
    rendered = migrating.head_statements(dialect)
    if dialect == "sqlite":
        recorded, rendered = [_clauses(s) for s in recorded], [_clauses(s) for s in rendered]
    assert recorded == rendered, "out of date: python -m etl.db.migrating"


def _refuse(*_: Any, **__: Any) -> None:
    raise AssertionError("Alembic was asked to upgrade")


def test_an_empty_database_gets_its_schema_without_alembic(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alembic.command, "upgrade", _refuse)
    engine = database.make_engine(db_url)
    try:
        database.ensure_schema(engine)
        assert database.current_revision(engine) == SCHEMA_REVISION
        database.ensure_schema(engine)  # at head: nothing to do
    finally:
        engine.dispose()


def test_a_run_that_read_no_revision_before_another_made_the_schema_leaves_it(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs starting together on a new SQLite file, which has no migration lock:
    the second makes the schema between the first's revision read and its creation."""
    monkeypatch.setattr(alembic.command, "upgrade", _refuse)
    first, second = database.make_engine(sqlite_url), database.make_engine(sqlite_url)
    real_create = head_schema.create

    def create_after_the_other_run(conn: Any) -> bool:
        monkeypatch.setattr(head_schema, "create", real_create)
        database.ensure_schema(second)
        return real_create(conn)

    monkeypatch.setattr(head_schema, "create", create_after_the_other_run)
    try:
        database.ensure_schema(first)  # raised "table alembic_version already exists"
        assert head_schema.create is real_create, "the other run did not go in between"
        assert database.current_revision(first) == SCHEMA_REVISION
    finally:
        first.dispose()
        second.dispose()


def test_a_recording_of_another_revision_is_left_to_alembic(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = {"revision": "0001", "statements": ["CREATE TABLE stale (id INTEGER)"]}
    (tmp_path / "sqlite.json").write_text(json.dumps(stale), encoding="utf-8")
    monkeypatch.setattr(head_schema, "HEAD_DIR", tmp_path)
    assert head_schema.recorded("sqlite") is None
    engine = database.make_engine(sqlite_url)
    try:
        database.ensure_schema(engine)  # through Alembic's chain
        assert database.current_revision(engine) == SCHEMA_REVISION
        assert "stale" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_dialect_without_a_recording_is_left_to_alembic(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(head_schema, "HEAD_DIR", tmp_path)  # empty: no recordings
    engine = database.make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert head_schema.create(conn) is False
        database.ensure_schema(engine)
        assert database.current_revision(engine) == SCHEMA_REVISION
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_the_recorded_schema_is_the_one_alembic_makes(backend: str, tmp_path: Path) -> None:
    """Catalog to catalog: ``pg_dump --schema-only`` and ``mysqldump --no-data`` (their
    own tools' account of every table, index, constraint, trigger, function, view and
    comment), SQLite's catalog; and every row (the revision, the feed's watermark)."""
    recorded_dbs = make_database(backend, tmp_path / "recorded")
    alembic_dbs = make_database(backend, tmp_path / "alembic")
    (tmp_path / "recorded").mkdir()
    (tmp_path / "alembic").mkdir()
    try:
        recorded_url, alembic_url = next(recorded_dbs), next(alembic_dbs)
        engine = database.make_engine(recorded_url)
        database.ensure_schema(engine)
        engine.dispose()
        engine = database.make_engine(alembic_url)
        database.upgrade(engine)  # Alembic's whole chain, online
        engine.dispose()
        assert _catalog(recorded_url) == _catalog(alembic_url)
    finally:
        recorded_dbs.close()
        alembic_dbs.close()


def _catalog(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        dump = _tool(
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            f"--host={parsed.host}",
            f"--port={parsed.port or 5432}",
            f"--username={parsed.username}",
            str(parsed.database),
        )
        # \restrict and \unrestrict carry a random key of each dump.
        schema: Any = [line for line in dump.splitlines() if "restrict " not in line]
    elif parsed.get_backend_name() == "mysql":
        dump = _tool(
            "mysqldump",
            "--no-data",
            "--skip-comments",
            "--triggers",
            "--routines",
            f"--host={parsed.host}",
            f"--port={parsed.port or 3306}",
            f"--user={parsed.username}",
            str(parsed.database),
        )
        schema = dump.replace(f"`{parsed.database}`", "`DB`").splitlines()
    else:
        schema = _sqlite_catalog(url)
    with connect(url) as conn:
        rows = {
            table: sorted(repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}")))
            for table in inspect(conn).get_table_names()
        }
    return {"schema": schema, "rows": rows}


def _tool(name: str, *arguments: str) -> str:
    if shutil.which(name) is None:
        unavailable(f"{name} not found")
    return subprocess.run([name, *arguments], capture_output=True, text=True, check=True).stdout


def _sqlite_catalog(url: str) -> list[Any]:
    """SQLite keeps each CREATE statement's text. Alembic's offline rendering (the
    recording) indents with spaces where its online run has tabs, and lists a
    rebuilt table's foreign keys in another order: the statements are compared with
    whitespace collapsed and a table's clauses as a set, beside what SQLite's pragmas
    report of every column, key and index."""
    catalog: list[Any] = []
    with connect(url) as conn:
        entries = conn.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).all()
        for kind, name, table, sql in entries:
            catalog.append((kind, name, table, _clauses(sql or "")))
            if kind == "table":
                catalog.append(conn.exec_driver_sql(f"PRAGMA table_xinfo('{name}')").all())
                keys = conn.exec_driver_sql(f"PRAGMA foreign_key_list('{name}')").all()
                catalog.append(sorted(tuple(key)[2:] for key in keys))  # not id, seq: order
            if kind == "index":
                catalog.append(conn.exec_driver_sql(f"PRAGMA index_xinfo('{name}')").all())
    return catalog


def _clauses(statement: str) -> Any:
    """``statement`` with its whitespace collapsed; a CREATE TABLE's clauses as a set."""
    statement = re.sub(r"\s+", " ", statement).strip()
    if not statement.startswith("CREATE TABLE") or "(" not in statement:
        return statement
    head, _, body = statement.partition("(")
    return (head, sorted(_top_level_clauses(body.rstrip(") "))))


def _top_level_clauses(body: str) -> list[str]:
    """``body`` split at the commas outside parentheses and quotes."""
    clauses, depth, quote, current = [], 0, "", ""
    for char in body:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            clauses.append(current.strip())
            current = ""
            continue
        current += char
    clauses.append(current.strip())
    return clauses
