"""Full-text search (etl search, etl.search, migration 0009) on every backend.

Small trees of documents made from the seed with unique words; the whole-corpus
answers and the README's search recipes are in test_recipes.py.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

import etl
from etl.db import database
from etl.db.database import ConfigurationError, NotAnEtlDatabase
from etl.db.schema import SEARCH_COLUMNS, SEARCH_INDEXES, SEARCH_TABLES, SEARCH_TRIGGERS
from etl.query.fulltext import POSTGRESQL_DOCUMENT, SearchResult, words
from tests.helpers import make_doc, render, run_etl, run_files, token, url_for


def _urls(results: list[SearchResult]) -> list[str]:
    return [result.url for result in results]


def _word(tag: str, what: str = "w") -> str:
    """A word no other document has (letters only: every backend indexes it whole)."""
    return f"{what}x" + "".join(chr(ord("a") + int(c, 16)) for c in tag)


def _doc(tag: str, *, title: str | None = None, excerpt: str | None = None) -> dict[str, Any]:
    doc = make_doc(tag)
    if title is not None:
        doc["title"] = title
    if excerpt is not None:
        doc["excerpt"] = excerpt
    return doc


def _search_objects(engine: Engine) -> set[str]:
    """The search index's tables, triggers, indexes and columns that exist in the database."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'articles'")
            )
        elif engine.dialect.name in ("mysql", "mariadb"):
            rows = conn.execute(
                text(
                    "SELECT DISTINCT index_name FROM information_schema.statistics "
                    "WHERE table_schema = DATABASE() AND table_name = 'articles' "
                    "UNION SELECT concat('articles.', column_name) FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = 'articles'"
                )
            )
        else:
            rows = conn.execute(text("SELECT name FROM sqlite_master"))
        names = {row[0] for row in rows}
    columns = {f"articles.{name}" for name in SEARCH_COLUMNS}
    return names & (SEARCH_TABLES | SEARCH_INDEXES | SEARCH_TRIGGERS | columns)


EXPECTED_OBJECTS = {
    "sqlite": SEARCH_TABLES | SEARCH_TRIGGERS,
    "postgresql": {"ix_articles_search"},
    "mysql": {"ft_articles_search", "ft_articles_search_title"}
    | {f"articles.{name}" for name in SEARCH_COLUMNS},
    "mariadb": {"ft_articles_search", "ft_articles_search_title"}
    | {f"articles.{name}" for name in SEARCH_COLUMNS},
}


def test_a_title_match_ranks_above_an_excerpt_match_in_any_case(
    db_url: str, tmp_path: Path
) -> None:
    tag1, tag2, tag3 = token(), token(), token()
    word, second = _word(tag1), _word(tag1, "ex")
    files = {
        # capitalized in the document: every backend's index folds case
        "a.md": render(_doc(tag1, title=f"Cloud {word.title()} News", excerpt=f"{second}")),
        "b.md": render(_doc(tag2, excerpt=f"All about {word.upper()} and more")),
        "c.md": render(_doc(tag3)),
    }
    assert run_files(db_url, tmp_path / "news", files).documents_rejected == 0
    found = etl.search(word, db_url)
    assert _urls(found) == [url_for(tag1), url_for(tag2)]
    assert found[0].rank > found[1].rank
    for variant in (word.upper(), word.capitalize(), f"  {word}  "):
        assert _urls(etl.search(variant, db_url)) == _urls(found), variant
    assert _urls(etl.search(f"{word.upper()} cloud", db_url)) == [url_for(tag1)]
    hit = found[0]
    assert (hit.title, hit.excerpt) == (f"Cloud {word.title()} News", second)
    assert hit.provider_name == f"Provider {tag1}"
    assert hit.published_at is not None and hit.published_at.utcoffset() is not None
    assert etl.search(word, db_url, limit=1) == found[:1]
    # every word must match: title and excerpt together
    assert _urls(etl.search(f"{second} {word}", db_url)) == [url_for(tag1)]
    assert etl.search(f"{word} {_word(tag3, 'nowhere')}", db_url) == []


def test_edited_removed_and_deleted_articles_are_found_accordingly(
    db_url: str, tmp_path: Path
) -> None:
    tag, other = token(), token()
    old, new = _word(tag, "old"), _word(tag, "new")
    root = tmp_path / "news"
    keep = {"keep.md": render(_doc(other, title=f"Other {_word(other)}"))}
    run_files(db_url, root, {**keep, "a.md": render(_doc(tag, title=f"Story {old}"))})
    assert _urls(etl.search(old, db_url)) == [url_for(tag)]

    run_files(db_url, root, {"a.md": render(_doc(tag, title=f"Story {new}"))})
    assert _urls(etl.search(new, db_url)) == [url_for(tag)]
    assert etl.search(old, db_url) == []

    run_files(db_url, root, {"a.md": render(_doc(tag, excerpt=f"Now {old} here"))})
    assert _urls(etl.search(old, db_url)) == [url_for(tag)]
    assert etl.search(new, db_url) == []

    removed = {**_doc(tag, title=f"Story {new}"), "removed": True}
    run_files(db_url, root, {"a.md": render(removed)})
    assert etl.search(new, db_url) == []

    run_files(db_url, root, {"a.md": render(_doc(tag, title=f"Story {new}"))})
    assert _urls(etl.search(new, db_url)) == [url_for(tag)]

    (root / "a.md").unlink()
    summary = etl.run([root], db_url, prune=True, max_prune=1.0)
    assert summary.articles_removed == 1
    assert etl.search(new, db_url) == []
    assert _urls(etl.search(_word(other), db_url)) == [url_for(other)]


def test_stubs_are_not_found(db_url: str, tmp_path: Path) -> None:
    tag = token()
    word = _word(tag, "rel")
    doc = make_doc(tag)
    doc["related"][0]["title"] = f"Related {word}"
    run_files(db_url, tmp_path / "news", {"a.md": render(doc)})
    with database.make_engine(db_url).connect() as conn:
        stubs = conn.execute(
            text("SELECT count(*) FROM articles WHERE is_stub AND title = :t"),
            {"t": f"Related {word}"},
        ).scalar()
    assert stubs == 1
    assert etl.search(word, db_url) == []
    doc["title"] = f"Title {word}"  # the same word in a full article's title: found
    run_files(db_url, tmp_path / "news", {"a.md": render(doc)})
    assert _urls(etl.search(word, db_url)) == [url_for(tag)]


HOSTILE = [
    '"',
    "'",
    '"{w}',
    "{w}*",
    "-{w}",
    "title:{w}",
    "excerpt : {w}",
    "({w}",
    "{w})",
    "{w} AND",
    "AND {w} OR",
    "NOT {w}",
    "{w} NEAR/2",
    "NEAR({w} x)",
    "{w}^",
    "^{w}",
    "+{w} -x ~y <z >w @3",
    "'; DROP TABLE articles; --",
    "{w}' OR '1'='1",
    "%{w}%",
    "_",
    "\\{w}\\",
    "{w} & | ! <-> :*",
    "*",
    "()",
    "💥 {w} 💥",
    "x" * 5000,
    "{w} " * 300,
]


def test_hostile_queries_are_never_an_error(db_url: str, tmp_path: Path) -> None:
    tag = token()
    word = _word(tag)
    run_files(db_url, tmp_path / "news", {"a.md": render(_doc(tag, title=f"On {word}"))})
    for pattern in HOSTILE:
        query = pattern.replace("{w}", word)
        found = etl.search(query, db_url)
        assert isinstance(found, list), query
        # a query whose only words are ours and operators finds the article everywhere
        if {w.casefold() for w in words(query)} == {word}:
            assert _urls(found) == [url_for(tag)], query


def test_an_empty_query_is_a_usage_error(db_url: str, tmp_path: Path) -> None:
    run_files(db_url, tmp_path / "news", {"a.md": render(make_doc(token()))})
    for query in ("", "   ", "\t\n"):
        with pytest.raises(ConfigurationError, match="empty"):
            etl.search(query, db_url)
    with pytest.raises(ConfigurationError, match="limit"):
        etl.search("x", db_url, limit=0)
    result = run_etl("search", "  ", "--database-url", db_url)
    assert result.returncode == 2
    assert "etl: error: the search query is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_prints_lines_or_json(db_url: str, tmp_path: Path) -> None:
    tag1, tag2 = token(), token()
    word = _word(tag1)
    files = {
        "a.md": render(_doc(tag1, title=f"First {word}")),
        "b.md": render(_doc(tag2, excerpt=f"Second {word}")),
    }
    run_files(db_url, tmp_path / "news", files)
    result = run_etl("search", word, "--json", "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["url"] for row in rows] == [url_for(tag1), url_for(tag2)]
    assert set(rows[0]) == {
        "url",
        "title",
        "excerpt",
        "published_at",
        "provider_name",
        "article_id",
        "rank",
    }
    assert rows[0]["title"] == f"First {word}"
    assert rows[0]["provider_name"] == f"Provider {tag1}"
    assert rows[0]["published_at"].endswith("+00:00")
    limited = run_etl("search", word, "--json", "--limit", "1", "--database-url", db_url)
    assert [row["url"] for row in json.loads(limited.stdout)] == [url_for(tag1)]
    lines = run_etl("search", f'"{word}" -(*:', "--database-url", db_url)
    assert lines.returncode == 0, lines.stderr
    printed = lines.stdout.splitlines()
    assert len(printed) == 2
    assert f"First {word}" in printed[0] and url_for(tag1) in printed[0]
    assert f"(Provider {tag1})" in printed[0]
    none = run_etl("search", _word(tag2, "none"), "--json", "--database-url", db_url)
    assert (none.returncode, json.loads(none.stdout)) == (0, [])
    assert run_etl("search", "x", "--limit", "0", "--database-url", db_url).returncode == 2


def test_the_command_on_a_missing_or_unreachable_database(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    result = run_etl("search", "azure", "--database-url", missing)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "none.sqlite3").exists()
    down = "postgresql://postgres@127.0.0.1:1/none"
    result = run_etl("search", "azure", "--database-url", down, "--connect-timeout", "2")
    assert result.returncode == 3 and "Traceback" not in result.stderr


def test_downgrade_removes_the_index_and_upgrade_restores_it(db_url: str, tmp_path: Path) -> None:
    tag = token()
    word = _word(tag)
    run_files(db_url, tmp_path / "news", {"a.md": render(_doc(tag, title=f"On {word}"))})
    engine = database.make_engine(db_url)
    try:
        expected = EXPECTED_OBJECTS[engine.dialect.name]
        assert _search_objects(engine) == expected  # the whole chain from base made them
        database.downgrade(engine, "0008")
        assert _search_objects(engine) == set()
        with pytest.raises(NotAnEtlDatabase, match="etl db upgrade"):
            etl.search(word, engine=engine)
        result = run_etl("search", word, "--database-url", db_url)
        assert result.returncode == 2 and "search index" in result.stderr
        database.upgrade(engine)
        assert _search_objects(engine) == expected
        assert _urls(etl.search(word, engine=engine)) == [url_for(tag)]  # existing rows
        database.downgrade(engine, "base")
        database.upgrade(engine)
        assert _search_objects(engine) == expected
    finally:
        engine.dispose()
    run_files(db_url, tmp_path / "news", {})
    assert _urls(etl.search(word, db_url)) == [url_for(tag)]  # the triggers work again


def test_an_unchanged_rerun_does_not_touch_the_index(sqlite_url: str, tmp_path: Path) -> None:
    """SQLite: the FTS5 update trigger never fires for an article whose title and
    excerpt are unchanged (a re-run, or a changed body). PostgreSQL and MariaDB update
    their indexes only for rows written, and an unchanged re-run writes none."""
    db_url = sqlite_url
    tag = token()
    root = tmp_path / "news"
    run_files(db_url, root, {"a.md": render(_doc(tag))})

    def fts_state() -> list[Any]:
        with database.make_engine(db_url).connect() as conn:
            return list(conn.execute(text("SELECT id, block FROM articles_fts_data")))

    before = fts_state()
    assert etl.run([root], db_url).files_skipped_unchanged == 1
    assert fts_state() == before
    run_files(db_url, root, {"a.md": render(_doc(tag), body="Another body.\n")})
    assert fts_state() == before


def test_postgresql_queries_use_the_gin_index(pg_url: str, tmp_path: Path) -> None:
    tag = token()
    run_files(pg_url, tmp_path / "news", {"a.md": render(make_doc(tag))})
    engine = database.make_engine(pg_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(
                row[0]
                for row in conn.execute(
                    text(
                        f"EXPLAIN SELECT a.id FROM articles a WHERE ({POSTGRESQL_DOCUMENT}) "
                        "@@ plainto_tsquery('english', :q)"
                    ),
                    {"q": tag},
                )
            )
    finally:
        engine.dispose()
    assert "ix_articles_search" in plan, plan


def _bench_module(name: str) -> Any:
    """A module of bench/ (which is not a package: its scripts import by plain name)."""
    spec = importlib.util.spec_from_file_location(
        name, database.PROJECT_ROOT / "bench" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_search_index_cost_bench_drops_only_what_writes_the_index(
    db_url: str, tmp_path: Path
) -> None:
    """bench/search_index_cost.py's database without the index: the schema stays at head
    (it once took the schema back to 0008, and every load into it failed on a column of
    a later migration), a run writes its articles, and nothing goes into the index."""
    bench = _bench_module("search_index_cost")
    tag = token()
    word = _word(tag)
    bench.prepare(db_url, with_index=False)
    engine = database.make_engine(db_url)
    try:
        kept = {"sqlite": SEARCH_TABLES, "postgresql": set()}.get(
            engine.dialect.name, {f"articles.{name}" for name in SEARCH_COLUMNS}
        )
        assert _search_objects(engine) == kept
        summary = run_files(db_url, tmp_path / "news", {"a.md": render(_doc(tag, title=word))})
        assert (summary.status, summary.articles_inserted) == ("succeeded", 1)
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":  # the FTS5 table is there, and empty
                assert conn.execute(text("SELECT count(*) FROM articles_fts_docsize")).one() == (0,)
            titles = text("SELECT title FROM articles WHERE NOT is_stub")
            assert conn.execute(titles).scalars().all() == [word]
    finally:
        engine.dispose()
