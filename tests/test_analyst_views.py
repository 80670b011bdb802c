"""The analyst views and the database comments, on every backend (seeds and small trees).

The whole-corpus answers of the views and of the README recipes are in test_recipes.py.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml_rs
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Engine, inspect, text

from etl import run
from etl.db import comments, database, views
from etl.db.schema import metadata, topics
from etl.db.views import VIEWS
from etl.extract.extract import split_front_matter
from etl.transform.transform import canonical_url
from tests.helpers import ROOT, SEEDS, run_python

MIGRATIONS = ROOT / "etl" / "migrations"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = database.make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _dialect(engine: Engine) -> str:
    return engine.dialect.name


def _rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def _url_of(path: Path) -> str:
    front_matter, _, _ = split_front_matter(path.read_text(encoding="utf-8"))
    doc: dict[str, Any] = yaml_rs.loads(front_matter)  # type: ignore[assignment]
    return canonical_url(doc.get("webUrl") or doc["originalUrl"])


def _table_comments(engine: Engine) -> dict[tuple[str, str | None], str | None]:
    """(table or view, column or None) -> the comment stored in the database."""
    found: dict[tuple[str, str | None], str | None] = {}
    with engine.connect() as conn:
        if _dialect(engine) == "postgresql":
            for name, column, comment in conn.execute(
                text(
                    "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                    "AND NOT a.attisdropped "
                    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v')"
                )
            ):
                found[(name, column)] = comment
            for name, comment in conn.execute(
                text(
                    "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v')"
                )
            ):
                found[(name, None)] = comment
        else:
            for name, column, comment in conn.execute(
                text(
                    "SELECT table_name, column_name, column_comment "
                    "FROM information_schema.columns WHERE table_schema = DATABASE()"
                )
            ):
                found[(name, column)] = comment or None
            for name, comment in conn.execute(
                text(
                    "SELECT table_name, table_comment FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
                )
            ):
                found[(name, None)] = comment or None
    return found


def _descriptions(with_views: bool) -> dict[tuple[str, str | None], str]:
    expected: dict[tuple[str, str | None], str] = {}
    for table in metadata.tables.values():
        expected[(table.name, None)] = str(table.comment)
        for column in table.columns:
            expected[(table.name, column.name)] = str(column.comment)
    if with_views:
        for view in VIEWS:
            expected[(view.name, None)] = view.description
            for view_column in view.columns:
                expected[(view.name, view_column.name)] = view_column.description
    return expected


def test_head_has_the_views_with_their_columns_and_downgrade_drops_them(engine: Engine) -> None:
    database.upgrade(engine)
    inspector = inspect(engine)
    assert set(inspector.get_view_names()) == {view.name for view in VIEWS}
    for view in VIEWS:
        columns = [c["name"] for c in inspect(engine).get_columns(view.name)]
        assert columns == [c.name for c in view.columns], view.name
    database.downgrade(engine, "0004")
    assert inspect(engine).get_view_names() == []
    database.upgrade(engine)
    assert set(inspect(engine).get_view_names()) == {view.name for view in VIEWS}


def test_comments_are_the_descriptions_and_downgrade_removes_them(engine: Engine) -> None:
    """PostgreSQL: every table, column, view and view column; MariaDB: tables and
    columns (it has no view comments); SQLite has no comments at all."""
    if _dialect(engine) == "sqlite":
        pytest.skip("SQLite has no comments: `etl schema` is its data dictionary")
    database.upgrade(engine)
    with_views = _dialect(engine) == "postgresql"
    expected = _descriptions(with_views)
    found = _table_comments(engine)
    assert {key: found.get(key) for key in expected} == expected
    database.downgrade(engine, "0004")
    found = _table_comments(engine)
    assert {key: found.get(key) for key in expected if key[0] in metadata.tables} == dict.fromkeys(
        (key for key in expected if key[0] in metadata.tables), None
    )


def test_comments_keep_quotes_percent_signs_colons_and_backslashes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _dialect(engine) == "sqlite":
        pytest.skip("SQLite has no comments")
    database.upgrade(engine)
    tricky = "50% of 'x': \\n back\\slash :name %(x)s \"q\""
    monkeypatch.setattr(topics, "comment", tricky)
    monkeypatch.setattr(topics.c.name, "comment", tricky)
    view = dataclasses.replace(views.BY_NAME["stubs_pending"], description=tricky)
    monkeypatch.setitem(views.BY_NAME, "stubs_pending", view)
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        comments.set_comments(op, {"topics": ["name"]})
        comments.set_view_comments(op, {"stubs_pending": []})
    found = _table_comments(engine)
    assert found[("topics", None)] == tricky
    assert found[("topics", "name")] == tricky
    if _dialect(engine) == "postgresql":
        assert found[("stubs_pending", None)] == tricky


@pytest.mark.parametrize(
    "url", ["sqlite:///etl.sqlite3", "postgresql://etl@db/news", "mysql://etl@db/news"]
)
def test_offline_sql_creates_the_views_and_comments_as_written(url: str) -> None:
    """`etl db upgrade --sql` for DBAs: views and comments, with no doubled '%'."""
    sql = database.upgrade_sql(url)
    assert sql.count("CREATE VIEW") == len(VIEWS)
    assert "%%" not in sql
    if not url.startswith("sqlite"):
        assert "`removed: true`" in sql  # the description of articles.is_removed


def test_mariadb_comments_leave_every_column_definition_as_it_was(mariadb_url: str) -> None:
    """Storing a comment restates the column (MODIFY): type, nullability, default,
    auto-increment, collation and JSON checks must come out unchanged."""
    engine = database.make_engine(mariadb_url)
    columns = (
        "SELECT table_name, column_name, ordinal_position, column_type, is_nullable, "
        "column_default, extra, collation_name FROM information_schema.columns "
        "WHERE table_schema = DATABASE() ORDER BY table_name, ordinal_position"
    )
    checks = (
        "SELECT table_name, constraint_name, check_clause FROM "
        "information_schema.check_constraints WHERE constraint_schema = DATABASE() "
        "ORDER BY table_name, constraint_name"
    )
    try:
        database.upgrade(engine, "0006")  # the revision before the comments
        before = [row for row in _rows(engine, columns) if row[0] in metadata.tables]
        before_checks = _rows(engine, checks)
        database.upgrade(engine)  # 0007 comments every column, later revisions some
        existed = {(row[0], row[1]) for row in before}
        after = [row for row in _rows(engine, columns) if (row[0], row[1]) in existed]
        assert len(existed) > 100
        assert after == before
        assert _rows(engine, checks) == before_checks
        assert len(before_checks) >= 3  # the JSON columns' json_valid checks
    finally:
        engine.dispose()


def test_views_return_what_etl_views_defines(db_url: str, engine: Engine) -> None:
    """The views the migrations made (frozen SQL) equal etl.db.views' current SELECTs."""
    run([SEEDS], db_url)
    for view in VIEWS:
        stored = _rows(engine, f"SELECT * FROM {view.name}")
        defined = _rows(engine, view.select(_dialect(engine)))
        assert sorted(stored, key=repr) == sorted(defined, key=repr), view.name
        assert stored or view.name == "removed_articles", f"{view.name} is empty on the seeds"


def test_overview_topics_follow_document_order(db_url: str, engine: Engine, tmp_path: Path) -> None:
    """Not the topics' ids, names or insertion order: each document's own order."""
    seed = (SEEDS / "000_af0cddeac82c129c.md").read_text(encoding="utf-8")
    head, rest = seed.split("topics:\n", 1)
    rest = rest[rest.index("\n\n") :]  # drop the seed's own topic list
    source = tmp_path / "news"
    source.mkdir()
    orders = {
        "a": ["Alpha", "Mid", "Zeta"],
        "b": ["Zeta", "Alpha", "Mid"],
        "c": ["Mid", "Zeta"],
        "d": [],
    }
    for name, names in orders.items():
        listed = "".join(f"  - {topic}\n" for topic in names)
        body = f"{head}topics:\n{listed}{rest}".replace(
            "technology-48339142", f"technology-48339142-{name}"
        )
        (source / f"{name}.md").write_text(body, encoding="utf-8")
    assert run([source], db_url).documents_rejected == 0
    found = dict(_rows(engine, "SELECT url, topics FROM article_overview"))
    assert found == {
        f"https://bbc.com/news/technology-48339142-{name}": ", ".join(names) or None
        for name, names in orders.items()
    }


LINK_TARGETS = (
    "SELECT DISTINCT t.url FROM related_articles r JOIN articles t ON t.id = r.related_article_id"
)


def test_removed_and_stub_views_on_a_pruned_tree(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    """One document says removed: true, one file is deleted and pruned: both leave the
    overview, and removed_articles says why; every stub waits in stubs_pending."""
    source = tmp_path / "news"
    shutil.copytree(SEEDS, source)
    urls = {path: _url_of(path) for path in sorted(source.glob("*.md"))}
    alone = [path for path, url in urls.items() if list(urls.values()).count(url) == 1]
    run([source], db_url)
    # Files whose URL no other file carries; the deleted one's URL no link points at
    # (a linked one would become a stub, as a fresh load would make it).
    linked = {row[0] for row in _rows(engine, LINK_TARGETS)}
    said = alone[0]
    deleted = next(path for path in alone[1:] if urls[path] not in linked)
    said_url, deleted_url = urls[said], urls[deleted]
    live_before = len(_rows(engine, "SELECT article_id FROM article_overview"))
    said.write_text(
        said.read_text(encoding="utf-8").replace("\n---", "\nremoved: true\n---", 1),
        encoding="utf-8",
    )
    deleted.unlink()
    assert _url_of(said) == said_url
    run([source], db_url, prune=True)
    assert dict(_rows(engine, "SELECT url, removal FROM removed_articles")) == {
        said_url: "document",
        deleted_url: "pruned",
    }
    overview = {row[0] for row in _rows(engine, "SELECT url FROM article_overview")}
    assert len(overview) == live_before - 2
    assert not {said_url, deleted_url} & overview
    stubs = _rows(engine, "SELECT url FROM articles WHERE is_stub")
    pending = _rows(engine, "SELECT url FROM stubs_pending")
    assert sorted(pending) == sorted(stubs) and stubs


def test_sqlite_batch_migration_can_rebuild_a_table_a_view_reads(tmp_path: Path) -> None:
    """A later migration that rebuilds a table in SQLite batch mode (copy, drop, rename)
    works with views that read it in place (env.py's legacy rename).

    Tables no foreign key points to: with foreign keys on, dropping a parent table
    (articles) deletes its children's rows, views or not.
    """
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = database.head_revision()
    (scripts / "versions" / "9999_rebuild.py").write_text(
        "from alembic import op\n\n"
        f'revision = "9999"\ndown_revision = "{head}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        '    for name in ("source_files", "article_topics", "related_articles"):\n'
        '        with op.batch_alter_table(name, recreate="always"):\n'
        "            pass\n\n\n"
        "def downgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    run([SEEDS], url)
    engine = database.make_engine(url)
    try:
        before = {view.name: _rows(engine, f"SELECT * FROM {view.name}") for view in VIEWS}
        result = run_python(
            "import sys\nfrom alembic import command\nfrom etl.db import database\n"
            "config = database.alembic_config(url=sys.argv[1])\n"
            "config.set_main_option('script_location', sys.argv[2])\n"
            "command.upgrade(config, 'head')\n",
            url,
            str(scripts),
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        after = {view.name: _rows(engine, f"SELECT * FROM {view.name}") for view in VIEWS}
        assert after == before
        assert _rows(engine, "SELECT version_num FROM alembic_version") == [("9999",)]
    finally:
        engine.dispose()
