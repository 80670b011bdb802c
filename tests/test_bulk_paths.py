"""The bulk write path of a large load, against the per-row path it replaces.

- Foreign keys checked once (etl.db.integrity): the keys are there and enforced after
  every outcome (commit, failure, a lock held elsewhere), and a row without its
  parent is refused as the per-row check would refuse it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from etl import run
from etl.db import database, integrity, lookups, sql
from etl.db.schema import articles, related_articles
from etl.load.prepared import LINK_COLUMNS
from tests.helpers import connect, make_database, make_doc, render, url_for, write_tree
from tests.snapshots import live_snapshot

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

SERVERS = [pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql")]
SERVERS.append(pytest.param("mariadb", marks=pytest.mark.mariadb, id="mariadb"))
NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


@pytest.fixture(params=SERVERS)
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    databases = make_database(request.param, tmp_path)
    url = next(databases)
    engine = database.make_engine(url)
    database.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        databases.close()


@pytest.fixture
def conn(server_url: str) -> Iterator[Connection]:
    engine = create_engine(database.resolve_url(server_url))
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _all(conn: Connection, statement: Any) -> list[Any]:
    """The rows of a read, in a transaction of its own (the tests open theirs)."""
    with conn.begin():
        return list(conn.execute(statement))


def _stubs(conn: Connection, urls: list[str], **values: Any) -> dict[str, int]:
    """Insert stub articles at ``urls`` (with ``values``), in a transaction of their own."""
    with conn.begin():
        conn.execute(
            insert(articles),
            [
                {"url": url, "is_stub": True, "is_removed": False, **values}
                | {"created_at": NOW, "updated_at": NOW}
                for url in urls
            ],
        )
    return {url: id_ for url, id_ in _all(conn, select(articles.c.url, articles.c.id))}


def _articles(conn: Connection, count: int) -> list[int]:
    return sorted(_stubs(conn, [f"https://example.com/{i}" for i in range(count)]).values())


@pytest.fixture
def any_conn(db_url: str) -> Iterator[Connection]:
    """A connection to an upgraded, empty database on each backend."""
    engine = create_engine(database.resolve_url(db_url))
    try:
        database.upgrade(engine)
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _links(ids: list[int], missing: int | None = None) -> list[list[Any]]:
    """Every pair of ``ids`` (source before target); ``missing`` as one target."""
    rows = []
    for source in ids:
        for position, target in enumerate(t for t in ids if t != source):
            rows.append([source, target, position, "t", "e", NOW, "w", "d", "n"])
    if missing is not None:
        rows.append([ids[0], missing, 999, None, None, None, None, None, None])
    return rows


def _keys(conn: Connection) -> dict[str, bool]:
    """The foreign keys of related_articles: name -> validated (always True on MariaDB)."""
    if conn.dialect.name == "postgresql":
        query = (
            "SELECT conname, convalidated FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = 'related_articles'::regclass"
        )
        return {name: valid for name, valid in _all(conn, text(query))}
    query = (
        "SELECT constraint_name FROM information_schema.referential_constraints "
        "WHERE constraint_schema = DATABASE() AND table_name = 'related_articles'"
    )
    return {name: True for (name,) in _all(conn, text(query))}


EXPECTED_KEYS = {
    "fk_related_articles_article_id_articles",
    "fk_related_articles_related_article_id_articles",
}


def test_a_large_insert_checks_its_keys_once_and_keeps_them(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrity, "CHECK_ONCE_FROM", 10)
    ids = _articles(conn, 6)
    rows = _links(ids)
    with conn.begin():
        integrity.insert_checked_once(conn, related_articles, LINK_COLUMNS, rows)
    assert set(_keys(conn)) == EXPECTED_KEYS
    count = _all(conn, select(related_articles.c.article_id))
    assert len(count) == 30
    with conn.begin():
        integrity.validate_keys(conn, [related_articles])
    assert _keys(conn) == dict.fromkeys(EXPECTED_KEYS, True)
    # Still enforced for a later single row.
    with pytest.raises(IntegrityError), conn.begin():
        conn.execute(
            insert(related_articles).values(
                article_id=ids[0], related_article_id=max(ids) + 100, position=50
            )
        )
    if conn.dialect.name == "mariadb" or conn.dialect.name == "mysql":
        assert _all(conn, text("SELECT @@SESSION.foreign_key_checks")) == [(1,)]


def test_a_large_insert_refuses_a_row_without_its_parent(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrity, "CHECK_ONCE_FROM", 10)
    ids = _articles(conn, 6)
    rows = _links(ids, missing=max(ids) + 1000)
    with pytest.raises(IntegrityError, match="has no row in articles"), conn.begin():
        integrity.insert_checked_once(conn, related_articles, LINK_COLUMNS, rows)
    assert _all(conn, select(related_articles.c.article_id)) == []
    assert _keys(conn) == dict.fromkeys(EXPECTED_KEYS, True)  # the drop was rolled back


@pytest.mark.parametrize("server_url", [SERVERS[0]], indirect=True)
def test_a_reader_holding_the_tables_makes_the_insert_check_row_by_row(
    conn: Connection, server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrity, "CHECK_ONCE_FROM", 10)
    ids = _articles(conn, 6)
    reader = create_engine(database.resolve_url(server_url))
    try:
        with reader.connect() as other, other.begin():
            other.execute(select(articles.c.id)).all()  # holds a share lock until it ends
            with conn.begin():
                integrity.insert_checked_once(conn, related_articles, LINK_COLUMNS, _links(ids))
    finally:
        reader.dispose()
    assert _keys(conn) == dict.fromkeys(EXPECTED_KEYS, True)  # never dropped
    assert len(_all(conn, select(related_articles.c.article_id))) == 30


HOSTILE_TEXTS = [
    "100% sure: %s %d %(name)s %%",
    "it's \\ a 'quote' and a \"double\" \\' -- ; DROP TABLE articles",
    "line\nbreak\r\ttab \x1a and NUL-free ☃ 🎉 «ß»",
    "",
    None,
]


@pytest.mark.parametrize("server_url", SERVERS, indirect=True)
def test_bulk_insert_writes_every_value_as_given(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MariaDB's rows go as literals the driver escaped, several statements when long;
    PostgreSQL's through COPY: either way each value reads back as it was given."""
    monkeypatch.setattr(sql, "MYSQL_STATEMENT_CHARS", 300)  # a statement per few rows
    ids = _articles(conn, len(HOSTILE_TEXTS) + 1)
    when = datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)  # MariaDB keeps whole seconds
    rows = [
        [ids[0], target, position, text, text, when if text else None, text, text, text]
        for position, (target, text) in enumerate(zip(ids[1:], HOSTILE_TEXTS, strict=True))
    ]
    expected = [list(row) for row in rows]
    with conn.begin():
        sql.bulk_insert(conn, related_articles, LINK_COLUMNS, rows)
    found = _all(
        conn,
        select(*(related_articles.c[name] for name in LINK_COLUMNS)).order_by(
            related_articles.c.position
        ),
    )
    assert [list(row) for row in found] == expected


def _linked_doc(index: int, count: int, version: int) -> bytes:
    """Document ``index`` of ``count``, linking to every other one and to two stubs."""
    front = make_doc(f"bulk{index}")
    front["title"] = f"Bulk «{index}» 'v{version}' \\ \"quoted\" 🎉"
    template = front["related"][0]
    related = []
    for other in [*(i for i in range(count) if i != index), f"stub{index % 3}", "stub-x"]:
        entry = dict(template)
        entry["webUrl"] = url_for(f"bulk{other}")
        entry["title"] = f"Link to {other} (v{version})"
        related.append(entry)
    front["related"] = related
    return render(front)


@pytest.mark.parametrize("server_url", SERVERS, indirect=True)
def test_a_history_through_the_bulk_paths_equals_a_fresh_load(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrity, "CHECK_ONCE_FROM", 1)
    site = tmp_path / "site"
    count = 12
    write_tree(site, {f"d{i}.md": _linked_doc(i, count, 1) for i in range(count)})
    run([site], server_url, workers=1)
    # Edit some, delete some (their links go, their URLs become stubs), add one.
    changes: dict[str, bytes | None] = {f"d{i}.md": _linked_doc(i, count, 2) for i in (0, 5)}
    changes.update({"d3.md": None, "d7.md": None, "d12.md": _linked_doc(12, count, 1)})
    write_tree(site, changes)
    run([site], server_url, workers=1, prune=True)
    reference = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    run([site], reference, workers=1)
    assert live_snapshot(server_url) == live_snapshot(reference)
    with connect(server_url) as conn:
        assert _keys(conn) == dict.fromkeys(EXPECTED_KEYS, True)  # validated at the end


def test_equal_values_of_other_types_keep_their_own_json(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``featuredContent: true`` and ``featuredContent: 1`` are equal in Python (and hash
    alike): a batch that converts each distinct value once must not store one for both."""
    monkeypatch.setattr(sql, "STAGE_FROM", 1)  # PostgreSQL stages even a small batch
    values: list[Any] = [True, 1, "1", False, 0]
    docs = {}
    for index, value in enumerate(values):
        front = make_doc(f"typed{index}")
        front["featuredContent"] = value
        docs[f"d{index}.md"] = render(front)
    write_tree(tmp_path / "site", docs)
    run([tmp_path / "site"], db_url, workers=1)
    with connect(db_url) as conn:
        rows = conn.execute(select(articles.c.title, articles.c.featured_content))
        stored = {title: featured for title, featured in rows}
    for index, value in enumerate(values):
        got = stored[f"Title typed{index}"]
        assert got == value and type(got) is type(value), (index, value, got)


LOOKED_UP = [text for text in HOSTILE_TEXTS if text is not None] + [
    'x,y} {"',
    "NULL",
    " padded ",
    "{}",
    '\\"',
]


def test_lookups_find_every_value_as_given(any_conn: Connection) -> None:
    """``in_conditions`` (PostgreSQL: one array literal per chunk, typed by the server)
    finds exactly the rows whose values it is given, however they are written."""
    _stubs(any_conn, [*LOOKED_UP, "not looked up", "x"])
    with any_conn.begin():
        by_url = sql.ids_by(any_conn, articles, "url", LOOKED_UP)
        assert sorted(by_url) == sorted(LOOKED_UP)
        by_id = sql.ids_by(any_conn, articles, "id", by_url.values())
        assert sorted(by_id) == sorted(by_url.values())


def test_update_by_id_sets_each_row_its_own_values(
    any_conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several rows, several chunks (MariaDB: one CASE per column and chunk), values of
    every kind the callers set, NULL included; rows not named keep theirs."""
    monkeypatch.setattr(sql, "UPDATE_CHUNK", 2)
    urls = [f"https://example.com/u{i}" for i in range(5)]
    ids = _stubs(any_conn, urls, title="old")
    when = datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)
    rows = [
        {
            "id": ids[url],
            "title": text_ if i % 2 else None,
            "published_at": when if i else None,
            "is_removed": bool(i % 2),
            "updated_at": when,
        }
        for i, (url, text_) in enumerate(zip(urls[:4], HOSTILE_TEXTS, strict=False))
    ]
    with any_conn.begin():
        sql.update_by_id(any_conn, articles, rows)
    columns = ("id", "title", "published_at", "is_removed", "updated_at")
    found = {
        row.id: {name: getattr(row, name) for name in columns}
        for row in _all(any_conn, select(*(articles.c[name] for name in columns)))
    }
    for row in rows:
        assert found[row["id"]] | {"is_removed": bool(found[row["id"]]["is_removed"])} == row
    untouched = found[ids[urls[4]]]
    assert (untouched["title"], untouched["published_at"]) == ("old", None)
    assert untouched["updated_at"] != when


def test_sqlite_upserts_through_the_driver_equal_sqlalchemys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's large upserts go to the driver's executemany with values converted once
    per distinct value: a history written that way (every upsert, ``STAGE_FROM=1``)
    ends as the same history written by SQLAlchemy's executemany."""
    count = 6
    first = {f"d{i}.md": _linked_doc(i, count, 1) for i in range(count)}
    changes: dict[str, bytes | None] = {"d0.md": _linked_doc(0, count, 2), "d3.md": None}
    snapshots = []
    for stage_from in (1, 10**9):
        monkeypatch.setattr(sql, "STAGE_FROM", stage_from)
        site = tmp_path / "site"  # the same source both times, written anew
        shutil.rmtree(site, ignore_errors=True)
        write_tree(site, first)
        url = f"sqlite:///{tmp_path / f'etl{stage_from}.sqlite3'}"
        run([site], url, workers=1)
        write_tree(site, changes)
        run([site], url, workers=1, prune=True)
        snapshots.append(live_snapshot(url))
    assert snapshots[0] == snapshots[1]
    assert snapshots[0]["columns"]["articles"]  # not two empty snapshots


def test_upserts_take_values_converted_before_on_mariadb_only(any_conn: Connection) -> None:
    """A MariaDB batch's article values are made its SQL literals before the writer
    lock (``etl.load.prepared.Prepared``): upserted so, each reads back as it was given.
    The other backends' drivers convert values themselves: there it is refused."""
    rows = [
        {"url": url_for(f"conv{i}"), "is_stub": True, "created_at": NOW, "updated_at": NOW}
        | {"title": text}
        for i, text in enumerate(HOSTILE_TEXTS)
    ]
    if not sql.is_mysql(any_conn):
        with pytest.raises(ValueError, match="MariaDB"), any_conn.begin():
            sql.upsert(any_conn, articles, rows, ["url"], converted=1)
        return
    literals = [[row["title"]] for row in rows]
    sql.convert_values(any_conn, articles, ["title"], literals)
    with any_conn.begin():
        sql.upsert(
            any_conn,
            articles,
            [row | {"title": literal} for row, [literal] in zip(rows, literals, strict=True)],
            ["url"],
            converted=1,
        )
    found = dict(_all(any_conn, select(articles.c.url, articles.c.title)))
    assert [found[row["url"]] for row in rows] == list(HOSTILE_TEXTS)


# Each character PyMySQL escapes, alone and in text, and text it leaves alone.
LITERALS = [
    *HOSTILE_TEXTS,
    *("'", "\\", '"', "\n", "\r", "\0", "\x1a"),
    *(f"a{char}b" for char in ("'", "\\", '"', "\n", "\r", "\0", "\x1a")),
    "plain https://example.com/a-b?c=d&e=f#g",
    "☃ 🎉 «ß» \t tab is not escaped",
    "%s %(name)s",
    0,
    -12,
    1.5,
    True,
    datetime(2021, 2, 3, 4, 5, 6),
]


@pytest.mark.mariadb
@pytest.mark.parametrize("no_backslash_escapes", [False, True], ids=["default", "no-backslash"])
def test_mysql_literals_are_the_drivers_own(tmp_path: Path, no_backslash_escapes: bool) -> None:
    """``mysql_literal`` skips the driver's escaping only for a string it would leave
    alone: each literal is the driver's, and the server reads it back as given."""
    databases = make_database("mariadb", tmp_path)
    engine = create_engine(database.resolve_url(next(databases)))
    try:
        with engine.connect() as conn:
            if no_backslash_escapes:
                conn.exec_driver_sql(
                    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"
                )
                conn.commit()
            driver: Any = conn.connection.driver_connection
            literal = lookups.mysql_literal(conn)
            assert [literal(value) for value in LITERALS] == [
                driver.escape(value) for value in LITERALS
            ]
            texts = [value for value in LITERALS if isinstance(value, str)]
            read = conn.exec_driver_sql(
                "SELECT " + ", ".join(literal(value) for value in texts),
                execution_options={"no_parameters": True},
            ).one()
            assert list(read) == texts
    finally:
        engine.dispose()
        databases.close()
