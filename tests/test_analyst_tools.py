"""Datasette and sqlite-utils on a loaded SQLite database: search, views, metadata (0010).

The real clients run in-process (tests/analyst_clients.py). A small site has full
articles, stubs, a document that says ``removed: true`` and a tombstone, all carrying
one word, so a tool that searched every row of ``articles`` would find too much.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlite_utils
from click.testing import CliRunner
from datasette.cli import cli as datasette_cli

import etl
from etl.db import database, datasette_metadata, dictionary
from etl.db.views import VIEWS
from tests.analyst_clients import (
    datasette_get,
    datasette_name,
    datasette_search,
    sqlite_path,
    sqlite_utils_cli,
    sqlite_utils_cli_search,
    sqlite_utils_search,
)
from tests.helpers import ROOT, make_doc, render, run_etl, run_files, token, url_for


def _fts_sql(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'articles_fts'").fetchone()
    return str(row[0])


def _flags(path: Path, urls: list[str]) -> dict[str, tuple[int, int]]:
    """url -> (is_stub, is_removed) of these articles."""
    with sqlite3.connect(path) as conn:
        marks = ",".join("?" * len(urls))
        sql = f"SELECT url, is_stub, is_removed FROM articles WHERE url IN ({marks})"
        rows = conn.execute(sql, urls).fetchall()
    return {url: (stub, removed) for url, stub, removed in rows}


def _indexed_and_live(path: Path) -> tuple[set[int], set[int]]:
    """The ids the FTS5 index holds (one docsize row per indexed row) and the live ones."""
    with sqlite3.connect(path) as conn:
        indexed = {row[0] for row in conn.execute("SELECT id FROM articles_fts_docsize")}
        live = conn.execute("SELECT id FROM articles WHERE NOT is_stub AND NOT is_removed")
        return indexed, {row[0] for row in live}


def _site(word: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Documents (file stem -> front-matter) whose articles all carry ``word``, and the
    URL of each kind of article (their stems, and ``stub``)."""
    tags = {kind: token() for kind in ("title", "excerpt", "removed", "gone", "promoted")}
    docs = {kind: make_doc(tag) for kind, tag in tags.items()}
    docs["title"]["title"] = f"All about {word.capitalize()}"
    docs["excerpt"]["excerpt"] = f"Mentions {word} in passing"
    docs["removed"]["title"] = f"Removed {word}"
    docs["removed"]["removed"] = True
    docs["gone"]["title"] = f"Gone {word}"
    # stubs: the snippets of related links carry the word too
    for kind in ("title", "excerpt"):
        docs[kind]["related"][0]["title"] = f"Stub {word}"
    urls = {kind: url_for(tag) for kind, tag in tags.items()}
    urls["stub"] = url_for(f"rel-{tags['title']}")
    # "promoted": first a stub (a link from "excerpt"), then its own document
    docs["excerpt"]["related"].append({**docs["excerpt"]["related"][0], "webUrl": urls["promoted"]})
    docs["promoted"]["title"] = f"Promoted {word}"
    return docs, urls


def _files(docs: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    return {f"{stem}.md": render(doc) for stem, doc in docs.items()}


def _all_searches(path: Path, word: str) -> dict[str, set[str]]:
    metadata = datasette_metadata.metadata(datasette_name(path))
    return {
        "etl search": {hit.url for hit in etl.search(word, f"sqlite:///{path}", limit=10_000)},
        "datasette": set(datasette_search(path, word)),
        "datasette --metadata": set(datasette_search(path, word, metadata)),
        "sqlite_utils API": set(sqlite_utils_search(path, word)),
        "sqlite-utils search": set(sqlite_utils_cli_search(path, word)),
    }


def test_each_tool_finds_exactly_the_live_full_articles_etl_search_finds(
    sqlite_url: str, tmp_path: Path
) -> None:
    word = "zq" + token()[:8].translate(str.maketrans("0123456789", "ghijklmnop"))
    path = sqlite_path(sqlite_url)
    root = tmp_path / "news"
    docs, urls = _site(word)
    promoted = docs.pop("promoted")
    run_files(sqlite_url, root, _files(docs))
    (root / "gone.md").unlink()
    assert etl.run([root], sqlite_url, prune=True, max_prune=1.0).articles_removed == 1
    assert _flags(path, [urls[k] for k in ("stub", "promoted", "removed", "gone")]) == {
        urls["stub"]: (1, 0),
        urls["promoted"]: (1, 0),
        urls["removed"]: (0, 1),
        urls["gone"]: (0, 1),
    }
    live = {urls["title"], urls["excerpt"]}
    found = _all_searches(path, word)
    assert found == dict.fromkeys(found, live)
    indexed, live_ids = _indexed_and_live(path)
    assert indexed == live_ids and len(live_ids) == 2

    # The stub gets its own document, "removed" comes back, "title" is removed.
    docs["removed"]["removed"] = False
    docs["title"]["removed"] = True
    changed = {"promoted": promoted, "removed": docs["removed"], "title": docs["title"]}
    run_files(sqlite_url, root, _files(changed))
    assert _flags(path, [urls["promoted"], urls["title"]]) == {
        urls["promoted"]: (0, 0),
        urls["title"]: (0, 1),
    }
    live = {urls["excerpt"], urls["promoted"], urls["removed"]}
    found = _all_searches(path, word)
    assert found == dict.fromkeys(found, live)
    indexed, live_ids = _indexed_and_live(path)
    assert indexed == live_ids and len(live_ids) == 3


def test_the_index_is_where_the_tools_look_for_it(sqlite_url: str, tmp_path: Path) -> None:
    run_files(sqlite_url, tmp_path / "news", {"a.md": render(make_doc(token()))})
    path = sqlite_path(sqlite_url)
    assert 'content="articles"' in _fts_sql(path)
    db = sqlite_utils.Database(path)
    try:
        assert db.table("articles").detect_fts() == "articles_fts"
    finally:
        db.close()
    [(status, data)] = datasette_get(path, [f"/{datasette_name(path)}.json"])
    assert status == 200
    tables = {table["name"]: table for table in data["tables"]}
    assert tables["articles"]["fts_table"] == "articles_fts"
    assert tables["articles_fts"]["hidden"] and not tables["articles"]["hidden"]


def test_sqlite_utils_ranks_a_title_match_first(sqlite_url: str, tmp_path: Path) -> None:
    """The index's own rank is etl search's bm25 weights: title ten times the excerpt."""
    word = "zq" + "".join(chr(ord("a") + int(c, 16)) for c in token()[:8])
    excerpt, title = make_doc(token()), make_doc(token())
    excerpt["excerpt"] = f"{word} {word} {word} here"
    title["title"] = f"On {word}"
    run_files(sqlite_url, tmp_path / "news", {"e.md": render(excerpt), "t.md": render(title)})
    path = sqlite_path(sqlite_url)
    expected = [hit.url for hit in etl.search(word, sqlite_url)]
    assert expected == [title["webUrl"], excerpt["webUrl"]]
    assert sqlite_utils_search(path, word) == expected
    assert sqlite_utils_cli_search(path, word) == expected


def _loaded_site(sqlite_url: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The small site loaded, "gone" pruned: every kind of article is present."""
    docs, urls = _site("zqviews")
    root = tmp_path / "news"
    run_files(sqlite_url, root, _files(docs))
    (root / "gone.md").unlink()
    etl.run([root], sqlite_url, prune=True, max_prune=1.0)
    return sqlite_path(sqlite_url), urls


def test_every_table_and_view_renders_in_datasette_with_its_descriptions(
    sqlite_url: str, tmp_path: Path
) -> None:
    path, _ = _loaded_site(sqlite_url, tmp_path)
    name = datasette_name(path)
    metadata = datasette_metadata.metadata(name)
    described = metadata["databases"][name]["tables"]
    [(status, data)] = datasette_get(path, [f"/{name}.json"], metadata)
    assert status == 200
    shown = [t["name"] for t in data["tables"] if not t["hidden"]] + [
        v["name"] for v in data["views"]
    ]
    assert {view.name for view in VIEWS} <= set(shown)
    pages = [f"/{name}/{table}" for table in shown] + [f"/{name}/{t}.json" for t in shown]
    answers = datasette_get(path, pages, metadata)
    pages_and_json = zip(answers[: len(shown)], answers[len(shown) :], strict=True)
    for table, ((status, page), (json_status, body)) in zip(shown, pages_and_json, strict=True):
        assert (status, json_status) == (200, 200), table
        columns = set(body["columns"]) - {"rowid"}
        # The page lists each column's description (Datasette 0.65 leaves it off the
        # header of a one-column primary key, which heads the link column).
        listed = {
            column: html.unescape(text)
            for column, text in re.findall(r"<dt>(\w+)</dt><dd>(.+?)</dd>", page)
        }
        assert columns and columns <= set(listed), f"{table}: {columns - set(listed)}"
        assert listed == described[table]["columns"] and all(listed.values()), table
        headers = set(re.findall(r'<th [^>]*data-column="(\w+)"', page)) - {"rowid", "Link"}
        assert headers == (columns if body["rows"] else set()), table
        in_headers = [c for c in headers if "data-column-description=" in _th(page, c)]
        assert len(in_headers) >= len(headers) - 1, table
    views = [answers[shown.index(view.name) + len(shown)][1] for view in VIEWS]
    assert {len(body["rows"]) > 0 for body in views} == {True}  # every view has rows here


def _th(page: str, column: str) -> str:
    match = re.search(rf'<th [^>]*data-column="{column}"[^>]*>', page)
    assert match, column
    return match.group(0)


def test_the_metadata_describes_every_table_view_and_column() -> None:
    metadata = datasette_metadata.metadata("news")
    tables = metadata["databases"]["news"]["tables"]
    data = dictionary.dictionary()
    expected = [
        (t["name"], t["description"], {c["name"]: c["description"] for c in t["columns"]})
        for t in data["tables"]
    ] + [
        (v["name"], v["description"], {c["name"]: c["description"] for c in v["columns"]})
        for v in data["views"]
    ]
    for name, description, columns in expected:
        entry = tables[name]
        assert entry["description"] == description != ""
        assert entry["columns"] == columns and all(columns.values()), name
    articles = tables["articles"]
    assert (articles["fts_table"], articles["fts_pk"], articles["searchmode"]) == (
        "articles_fts",
        "id",
        "escaped",
    )
    for name, entry in tables.items():
        used = [*entry.get("facets", []), entry.get("label_column"), entry.get("sort_desc")]
        assert {c for c in used if c} <= set(entry["columns"]), name
    assert {"provider_id", "is_stub", "is_removed"} <= set(articles["facets"])


def test_datasette_accepts_the_metadata_and_uses_it(sqlite_url: str, tmp_path: Path) -> None:
    path, urls = _loaded_site(sqlite_url, tmp_path)
    metadata_file = tmp_path / "metadata.json"
    result = run_etl("schema", "--datasette-metadata", "--database-name", path.stem)
    assert result.returncode == 0, result.stderr
    metadata_file.write_text(result.stdout, encoding="utf-8")
    assert json.loads(result.stdout) == datasette_metadata.metadata(path.stem)

    def get(url: str) -> Any:
        args = [str(path), "--metadata", str(metadata_file), "--get", url]
        answer = CliRunner().invoke(datasette_cli, args, catch_exceptions=False)
        assert answer.exit_code == 0, answer.output
        return json.loads(answer.output)

    assert get("/-/metadata.json") == json.loads(result.stdout)
    articles = get(f"/{path.stem}/articles.json?_labels=on")
    assert set(articles["facet_results"]) == {"provider_id", "is_stub", "is_removed"}
    providers = articles["facet_results"]["provider_id"]["results"]
    tag = urlsplit(urls["title"]).netloc.split(".")[0]
    assert f"Provider {tag}" in {provider["label"] for provider in providers}  # names, not ids
    overview = get(f"/{path.stem}/article_overview.json")
    assert set(overview["facet_results"]) == {"provider_name", "sources"}
    topics = get(f"/{path.stem}/article_topics.json")["facet_results"]["topic_id"]["results"]
    assert "AI" in {topic["label"] for topic in topics}
    code, _ = sqlite_utils_cli("search", str(path), "articles", "zqviews")
    assert code == 0


def _triggers(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        return {name: sql for name, sql in rows if name.startswith("articles_fts_")}


def test_a_0009_database_is_upgraded_in_place_by_the_next_run(
    sqlite_url: str, tmp_path: Path
) -> None:
    path, urls = _loaded_site(sqlite_url, tmp_path)
    triggers = _triggers(path)
    engine = database.make_engine(sqlite_url)
    try:
        database.downgrade(engine, "0009")  # 0009's index, as a database loaded then has
    finally:
        engine.dispose()
    assert "content='articles'" in _fts_sql(path)
    assert "is_stub" not in _triggers(path)["articles_fts_update"]
    assert sqlite_utils.Database(path).table("articles").detect_fts() is None
    # 0009 indexed every row: 3 live, "removed", "gone" and the stubs of 2 links
    with sqlite3.connect(path) as conn:
        count = "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'zqviews'"
        assert conn.execute(count).fetchone()[0] == 7

    summary = etl.run([tmp_path / "news"], sqlite_url)  # migrates first, then writes nothing
    # (0011 has every file read once more, for what each row says: all found unchanged.)
    assert summary.articles_unchanged == summary.files_seen == 4
    assert summary.articles_inserted == summary.articles_updated == 0
    engine = database.make_engine(sqlite_url)
    try:
        assert database.current_revision(engine) == database.head_revision()
    finally:
        engine.dispose()
    assert 'content="articles"' in _fts_sql(path)
    assert _triggers(path) == triggers
    found = _all_searches(path, "zqviews")
    assert found["etl search"] == {urls["title"], urls["excerpt"], urls["promoted"]}
    assert found == dict.fromkeys(found, found["etl search"])
    indexed, live_ids = _indexed_and_live(path)
    assert indexed == live_ids and len(live_ids) == 3


def test_json_and_datasette_metadata_exclude_each_other() -> None:
    result = run_etl("schema", "--json", "--datasette-metadata")
    assert result.returncode == 2 and "exclude each other" in result.stderr


def readme_commands() -> list[list[str]]:
    """The command lines of the README's ``<!-- analyst-tools -->`` shell blocks."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- analyst-tools -->\n```sh\n(.*?)```", readme, re.S)
    return [
        argv for block in blocks for line in block.splitlines() if (argv := shlex.split(line, True))
    ]


def _run_readme_command(argv: list[str]) -> str:
    """Run a README command line in the current directory; its standard output."""
    program, *args = argv
    target = None
    if ">" in args:
        args, target = args[: args.index(">")], args[args.index(">") + 1]
    if program == "etl":
        result = run_etl(*args, cwd=Path.cwd())
        code, output = result.returncode, result.stdout
    elif program == "datasette":
        if "--get" not in args:  # a server: ask it for its home page instead
            args += ["--get", "/"]
        answer = CliRunner().invoke(datasette_cli, args, catch_exceptions=False)
        code, output = answer.exit_code, answer.output
    else:
        assert program == "sqlite-utils", argv
        code, output = sqlite_utils_cli(*args)
    assert code == 0, (argv, output)
    if target:
        Path(target).write_text(output, encoding="utf-8")
    return output


def test_the_readme_commands_run_as_shown(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _loaded_site(sqlite_url, tmp_path)
    assert path == tmp_path / "etl.sqlite3"  # the README's file name
    commands = readme_commands()
    assert [argv[0] for argv in commands] == ["etl", "datasette", "datasette", "sqlite-utils"]
    monkeypatch.chdir(tmp_path)
    for argv in commands:  # the README's searches are for another word: search for ours
        argv[:] = [arg.replace("kubernetes", "zqviews") for arg in argv]
    _run_readme_command(commands[0])  # writes metadata.json
    assert (tmp_path / "metadata.json").exists()
    home = _run_readme_command(commands[1])
    assert "news-etl" in home and f"{len(VIEWS)} views" in home
    assert html.escape(datasette_metadata.DESCRIPTION, quote=False) in home
    datasette_rows = json.loads(_run_readme_command(commands[2]))
    sqlite_utils_rows = _run_readme_command(commands[3])
    titles = {hit.title for hit in etl.search("zqviews", sqlite_url)}
    assert len(titles) == 3 and {row["title"] for row in datasette_rows} == titles
    assert all(title in sqlite_utils_rows for title in titles if title)
    assert "Removed zqviews" not in sqlite_utils_rows and "Stub zqviews" not in sqlite_utils_rows
