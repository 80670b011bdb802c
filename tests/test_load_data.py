"""MariaDB's LOAD DATA path for links (etl.db.load_data): the fields it renders, the
values it writes, what it refuses, when the connection may send a file, and the
INSERT path a server without ``local_infile`` keeps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, make_url, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from etl import run
from etl.db import database, integrity, load_data
from etl.db.schema import articles, related_articles
from etl.db.sql import ids_by
from etl.load.prepared import LINK_COLUMNS, LINK_IDS, SNIPPET
from tests.helpers import (
    assert_loaded,
    assert_rejected,
    connect,
    make_doc,
    render,
    url_for,
    write_tree,
)
from tests.snapshots import live_snapshot

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

FIELDS = [
    (None, "\\N"),
    ("", ""),
    ("plain ☃ 🎉", "plain ☃ 🎉"),
    ("\\N", "\\\\N"),  # the text \N, not NULL
    ("tab\there", "tab\\there"),
    ("line\nbreak\r\n", "line\\nbreak\\r\\n"),
    ("cr\ronly", "cr\\ronly"),
    ("nul\0here", "nul\\0here"),
    ("trailing backslash\\", "trailing backslash\\\\"),
    ("back\\slash 'q' \"dq\" %s", "back\\\\slash 'q' \"dq\" %s"),
    (True, "1"),
    (False, "0"),
    (0, "0"),
    (-12, "-12"),
    (1.5, "1.5"),
    (datetime(2021, 2, 3, 4, 5, 6), "2021-02-03 04:05:06"),
    (datetime(2021, 2, 3, 4, 5, 6, 7), "2021-02-03 04:05:06.000007"),
    (date(2021, 2, 3), "2021-02-03"),
]


@pytest.mark.parametrize(("value", "expected"), FIELDS, ids=[repr(v) for v, _ in FIELDS])
def test_field_renders_each_value(value: Any, expected: str) -> None:
    assert load_data.field(value) == expected


@pytest.mark.parametrize("value", [datetime(2021, 2, 3, tzinfo=UTC), b"bytes", [1], {"a": 1}])
def test_field_refuses_what_it_cannot_render(value: Any) -> None:
    with pytest.raises(TypeError):
        load_data.field(value)


def test_other_backends_never_load_data(sqlite_url: str) -> None:
    engine = database.make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert not load_data.allowed(conn)
            assert not conn.in_transaction()
    finally:
        engine.dispose()


@pytest.fixture
def engine(mariadb_url: str) -> Iterator[Engine]:
    made = database.make_engine(mariadb_url)
    database.upgrade(made)
    try:
        yield made
    finally:
        made.dispose()


def _targets(conn: Connection, count: int) -> list[int]:
    now = datetime(2024, 5, 6, tzinfo=UTC)
    with conn.begin():
        conn.execute(
            insert(articles),
            [
                {"url": f"https://example.com/{i}", "is_stub": True, "is_removed": False}
                | {"created_at": now, "updated_at": now}
                for i in range(count)
            ],
        )
        return sorted(conn.execute(select(articles.c.id)).scalars())


TEXTS = [
    "100% sure: %s %d %(name)s %%",
    "it's \\ a 'quote' and a \"double\" \\' -- ; DROP TABLE articles",
    "line\nbreak\r\ttab \x1a and NUL-free ☃ 🎉 «ß» \\N",
    "\\N",
    "",
    None,
]


def _utc(value: Any) -> datetime:
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC)


def _line(row: list[Any]) -> str:
    return "\t".join(load_data.field(value) for value in row) + "\n"


@pytest.mark.parametrize("no_backslash_escapes", [False, True], ids=["default", "no-backslash"])
def test_load_writes_every_value_as_given(engine: Engine, no_backslash_escapes: bool) -> None:
    """Also where the session's sql_mode has NO_BACKSLASH_ESCAPES: the statement spells
    out its escape character, or the server would read ``\\N`` as text."""
    when = datetime(2021, 2, 3, 4, 5, 6)  # naive UTC, as the bind processor leaves it
    with engine.connect() as conn:
        assert load_data.allowed(conn)
        assert not conn.in_transaction()  # asking began no transaction
        if no_backslash_escapes:
            conn.exec_driver_sql(
                "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"
            )
            conn.commit()
        ids = _targets(conn, len(TEXTS) + 1)
        rows = [
            [ids[0], target, position, text, text, when if text else None, text, text, text]
            for position, (target, text) in enumerate(zip(ids[1:], TEXTS, strict=True))
        ]
        with conn.begin():
            load_data.load(conn, related_articles, LINK_COLUMNS, [_line(row) for row in rows])
        with conn.begin():
            found = conn.execute(
                select(*(related_articles.c[name] for name in LINK_COLUMNS)).order_by(
                    related_articles.c.position
                )
            ).all()
    expected = [[*row[:5], row[5] and _utc(row[5]), *row[6:]] for row in rows]
    assert [list(row) for row in found] == expected


def test_a_load_the_server_warns_about_raises_and_writes_nothing(engine: Engine) -> None:
    """LOCAL turns a too-long value into a warning and a truncated row: refused here."""
    with engine.connect() as conn:
        ids = _targets(conn, 3)
        good = [ids[0], ids[1], 0, "t", "e", None, "w", "d", "n"]
        bad = [ids[0], ids[2], 1, "t", "e", None, "w", "d" * 300, "n"]
        with pytest.raises(DataError, match="snippet_provider_domain"), conn.begin():
            load_data.load(conn, related_articles, LINK_COLUMNS, [_line(good), _line(bad)])
        with conn.begin():
            assert conn.execute(select(related_articles.c.article_id)).all() == []


def test_a_value_s_length_is_counted_in_characters_as_insert_counts_it(engine: Engine) -> None:
    """The file is read as bytes (CHARACTER SET binary), yet the server measures each
    value in its column's characters: 255 two-byte characters fit a VARCHAR(255), 256
    are refused, and every character comes back as it went in."""
    fits, too_long = "\u00e9" * 254 + "\U0001f389", "\u00e9" * 256
    with engine.connect() as conn:
        ids = _targets(conn, 2)
        row = [ids[0], ids[1], 0, "t", "e", None, "w", fits, "n"]
        with conn.begin():
            load_data.load(conn, related_articles, LINK_COLUMNS, [_line(row)])
        with conn.begin():
            stored = conn.execute(select(related_articles.c.snippet_provider_domain)).scalar()
        assert stored == fits
        with pytest.raises(DataError, match="snippet_provider_domain"), conn.begin():
            row[1:3] = [ids[0], 1]
            row[7] = too_long
            load_data.load(conn, related_articles, LINK_COLUMNS, [_line(row)])


def test_the_driver_sends_no_file_but_the_one_a_load_names(engine: Engine, tmp_path: Path) -> None:
    """A server answering a load with a request for another file (one that is not what
    it seems) gets a refusal, and the file is never opened."""
    secret = tmp_path / "secret.tsv"
    secret.write_text("1\t2\t3\n", encoding="utf-8")
    with engine.connect() as conn:
        assert load_data.allowed(conn)  # installs the guard
    import pymysql.connections  # type: ignore[import-untyped]

    opened: list[str] = []
    with pytest.raises(pymysql.err.OperationalError, match="refused to send"):
        pymysql.connections._send_local_file(str(secret), _Recorder(opened))
    assert opened == []


class _Recorder:
    """Stands in for the connection a file would be sent through: records any packet."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent
        self.max_allowed_packet = 1 << 20

    def write_packet(self, payload: bytes) -> None:
        self.sent.append(payload.decode())


def test_a_url_that_says_local_infile_0_gets_no_load_data(mariadb_url: str) -> None:
    engine = database.make_engine(
        f"{mariadb_url}{'&' if '?' in mariadb_url else '?'}local_infile=0"
    )
    try:
        with engine.connect() as conn:
            assert not load_data.allowed(conn)
    finally:
        engine.dispose()


def test_the_connection_sends_no_file_but_during_a_load(engine: Engine, tmp_path: Path) -> None:
    """PyMySQL sends any file the server names while its connection allows it: a
    statement of anyone else's that asks for one fails, and the file is never read."""
    secret = tmp_path / "secret.tsv"
    secret.write_text("1\t2\t3\n", encoding="utf-8")
    with engine.connect() as conn:
        with pytest.raises((DBAPIError, RuntimeError)), conn.begin():
            conn.exec_driver_sql(
                f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE related_articles "
                "(article_id, related_article_id, position)"
            )
        assert conn.connection.driver_connection._local_infile is False  # type: ignore[union-attr]


def _site(root: Path) -> None:
    docs = {}
    for index in range(4):
        front = make_doc(f"ld{index}")
        front["related"] = [
            dict(front["related"][0], webUrl=url_for(f"ld{other}"), title=f"To «{other}»\t'x'")
            for other in (*range(4), "stub")
            if other != index
        ]
        docs[f"d{index}.md"] = render(front)
    write_tree(root, docs)


@pytest.fixture
def no_local_infile(mariadb_url: str) -> Iterator[str]:
    """The server's local_infile off for this test (it is the whole server's setting)."""
    engine = database.make_engine(mariadb_url)
    try:
        with engine.connect() as conn:
            before = conn.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar()
            conn.exec_driver_sql("SET GLOBAL local_infile = 0")
        try:
            yield mariadb_url
        finally:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"SET GLOBAL local_infile = {int(bool(before))}")
    finally:
        engine.dispose()


def _count_loads(monkeypatch: pytest.MonkeyPatch, *, snippets: bool = False) -> list[int]:
    """The number of rows of each load_data.load call from now on: of link rows (their
    ids' slots first), or with ``snippets`` of the snippets staged once beside them."""
    calls: list[int] = []
    real = load_data.load
    wanted = ("slot", *LINK_COLUMNS[SNIPPET:]) if snippets else LINK_COLUMNS[:LINK_IDS]

    def load(conn: Connection, table: Any, columns: Any, lines: list[str], **kwargs: Any) -> None:
        if tuple(columns)[: len(wanted)] == wanted:
            calls.append(len(lines))
        real(conn, table, columns, lines, **kwargs)

    monkeypatch.setattr(load_data, "load", load)
    return calls


@pytest.mark.parametrize("refusing", ["no_local_infile", "no_temporary_tables"])
def test_where_the_server_will_not_stage_links_they_go_in_as_inserts(
    mariadb_url: str,
    refusing: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server without ``local_infile``, or a user who may not make temporary tables
    (both fixtures take ``mariadb_url``'s database)."""
    url = request.getfixturevalue(refusing)
    loads = _count_loads(monkeypatch)
    _site(tmp_path / "site")
    engine = database.make_engine(url)
    try:
        with engine.connect() as conn:
            if refusing == "no_local_infile":
                assert not load_data.allowed(conn)
            else:
                assert load_data.allowed(conn)
                assert not load_data.can_stage(conn)
    finally:
        engine.dispose()
    run([tmp_path / "site"], url, workers=1)
    assert loads == []
    reference = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    run([tmp_path / "site"], reference, workers=1)
    assert live_snapshot(url) == live_snapshot(reference)


def test_a_load_through_load_data_equals_a_fresh_sqlite_load(
    mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = _count_loads(monkeypatch)
    _site(tmp_path / "site")
    run([tmp_path / "site"], mariadb_url, workers=1)
    assert sum(loads) == 4 * 4  # every document's links: the three others and the stub
    reference = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    run([tmp_path / "site"], reference, workers=1)
    assert live_snapshot(mariadb_url) == live_snapshot(reference)


def test_links_that_show_one_entry_keep_their_own_position_and_provider(
    mariadb_url: str, tmp_path: Path
) -> None:
    """The server gets each distinct snippet's fields once per batch: documents listing
    one entry (same title, excerpt, date, URL) at other positions, or with another
    provider, each keep their own."""
    docs = {}
    for index in range(3):
        front = make_doc(f"sh{index}")
        entry = dict(front["related"][0], webUrl=url_for("shared"), title="One «entry»")
        entry["provider"] = dict(entry["provider"], domain=f"p{index % 2}.example.com")
        others = [dict(entry, webUrl=url_for(f"sh-other{n}")) for n in range(index)]
        front["related"] = [*others, entry]  # at position 0, 1, 2
        docs[f"s{index}.md"] = render(front)
    write_tree(tmp_path / "site", docs)
    run([tmp_path / "site"], mariadb_url, workers=1)
    reference = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    run([tmp_path / "site"], reference, workers=1)
    found = live_snapshot(mariadb_url)
    assert found == live_snapshot(reference)
    engine = database.make_engine(mariadb_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(related_articles.c.position, related_articles.c.snippet_provider_domain)
                .join(articles, articles.c.id == related_articles.c.related_article_id)
                .where(articles.c.url == url_for("shared"))
                .order_by(related_articles.c.position)
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        (0, "p0.example.com"),
        (1, "p1.example.com"),
        (2, "p0.example.com"),
    ]


def _site_with_long_domain(root: Path, bad: int) -> None:
    """``_site``, with document ``bad``'s first link naming a provider domain longer
    than its column (255): a value only the server refuses."""
    _site(root)
    front = make_doc(f"ld{bad}")
    front["related"] = [
        dict(front["related"][0], webUrl=url_for(f"ld{other}"), title=f"To {other}")
        for other in range(4)
        if other != bad
    ]
    front["related"][0]["provider"] = {"name": "Long", "domain": "d" * 300 + ".example.com"}
    write_tree(root, {f"d{bad}.md": render(front)})


def test_a_document_the_server_refuses_is_rejected_alone_and_the_rest_load(
    mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's links are staged before the writer lock: the server's refusal of one
    value fails the batch, each document is then staged and written alone, and only the
    document that holds the value is rejected. Fixed, it loads; the database is then
    what a fresh load makes."""
    loads = _count_loads(monkeypatch)
    snippets = _count_loads(monkeypatch, snippets=True)
    root = tmp_path / "site"
    _site_with_long_domain(root, bad=2)
    summary = run([root], mariadb_url, workers=1)
    assert_rejected(mariadb_url, summary, "d2.md", "snippet_provider_domain")
    for index in (0, 1, 3):
        assert_loaded(mariadb_url, summary, f"d{index}.md", f"ld{index}")
    # The batch's snippets, then each document's alone; the server refuses the long
    # domain in the batch's and in d2's, staged before their link rows.
    assert len(snippets) == 1 + 4 and snippets[0] > max(snippets[1:]), snippets
    assert sorted(loads) == [4, 4, 4]  # the links of the three others, each alone
    _site(root)
    run([root], mariadb_url, workers=1)
    reference = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    run([root], reference, workers=1)
    assert live_snapshot(mariadb_url) == live_snapshot(reference)


@pytest.fixture
def no_temporary_tables(mariadb_url: str) -> Iterator[str]:
    """A user of ``mariadb_url``'s database with every right on it but creating
    temporary tables; its URL."""
    url = make_url(mariadb_url)
    user = f"'etl_notemp_{os.getpid()}'@'%'"
    statements = [
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY 'x'",
        f"GRANT ALL PRIVILEGES ON `{url.database}`.* TO {user}",
        f"REVOKE CREATE TEMPORARY TABLES ON `{url.database}`.* FROM {user}",
    ]
    with connect(mariadb_url) as conn:
        for statement in statements:
            conn.exec_driver_sql(statement, execution_options={"no_parameters": True})
    try:
        name = user.split("@")[0].strip("'")
        yield url.set(username=name, password="x").render_as_string(hide_password=False)
    finally:
        with connect(mariadb_url) as conn:
            conn.exec_driver_sql(
                f"DROP USER IF EXISTS {user}", execution_options={"no_parameters": True}
            )


def test_staged_keys_find_the_rows_an_in_list_finds(engine: Engine) -> None:
    """Target URLs staged as LOAD DATA fields are found as an ``IN`` list of literals
    finds them, however they are written; one with no row is left out."""
    urls = [*(f"https://example.com/{text}" for text in TEXTS if text), "https://x/" + "é" * 300]
    with engine.connect() as conn:
        now = datetime(2024, 5, 6, tzinfo=UTC)
        with conn.begin():
            conn.execute(
                insert(articles),
                [
                    {"url": url, "is_stub": True, "is_removed": False}
                    | {"created_at": now, "updated_at": now}
                    for url in urls
                ],
            )
        keys = [*urls, "https://example.com/nowhere"]
        lines = [f"{slot}\t{load_data.field(url)}\n" for slot, url in enumerate(keys)]
        load_data.stage(conn, related_articles, LINK_COLUMNS, [], fresh=True, keys=lines)
        with conn.begin():
            found = load_data.staged_key_ids(
                conn, related_articles, articles, "url", "ix_articles_url_lookup"
            )
            expected = ids_by(conn, articles, "url", urls)
    assert {keys[slot]: id_ for slot, id_ in found.items()} == expected
    assert len(expected) == len(urls)


@pytest.mark.parametrize("missing", ["article_id", "related_article_id", None])
def test_staged_links_are_refused_where_the_server_finds_no_parent(
    engine: Engine, missing: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys of staged links are checked by the server, with the foreign key checks
    off for the copy: an id mapped to a slot with no article fails the insert, naming
    the key, and writes nothing; ids that all have one go in."""
    monkeypatch.setattr(integrity, "CHECK_ONCE_FROM", 1)  # the set-based check, for 2 rows
    with engine.connect() as conn:
        ids = _targets(conn, 3)
        absent = max(ids) + 1000
        lines = [_line([0, 1, 0, "a", None, None, None, None, None])]
        lines.append(_line([0, 2, 1, "b", None, None, None, None, None]))
        load_data.stage(conn, related_articles, LINK_COLUMNS, lines, fresh=True)
        first = [(0, absent if missing == "article_id" else ids[0])]
        second = [(1, ids[1]), (2, absent if missing == "related_article_id" else ids[2])]
        with conn.begin():
            load_data.map_slots(conn, related_articles, first, second)

            def insert() -> None:
                integrity.insert_checked_once(
                    conn,
                    related_articles,
                    LINK_COLUMNS,
                    [],
                    write=lambda: load_data.insert_staged(conn, related_articles, LINK_COLUMNS),
                    count=len(lines),
                    orphan=lambda key: load_data.unparented(
                        conn, related_articles, LINK_COLUMNS, key
                    ),
                )

            if missing is None:
                insert()
            else:
                with pytest.raises(IntegrityError, match=rf"\.{missing} = {absent} has no row"):
                    insert()
        written = conn.execute(select(related_articles.c.related_article_id)).scalars().all()
        checks = conn.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar()
        conn.rollback()
    assert sorted(written) == ([] if missing else ids[1:])
    assert checks == 1
