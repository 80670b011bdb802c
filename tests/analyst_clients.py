"""The analysts' own SQLite clients, run in-process: Datasette and sqlite-utils (dev extra).

Each function answers what the tool itself answers, through its own API or command
line, on a SQLite database file; no server is started.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import sqlite_utils
from click.testing import CliRunner
from datasette.app import Datasette
from sqlite_utils.cli import cli as sqlite_utils_command

from etl.db.database import resolve_url


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL."""
    database = resolve_url(url).database
    assert database, url
    return Path(database)


def datasette_name(path: Path) -> str:
    """The name Datasette gives the database in a file: the file name without its extension."""
    return path.stem


async def _get_all(ds: Datasette, paths: Sequence[str]) -> list[tuple[int, Any]]:
    await ds.invoke_startup()
    answers = []
    for path in paths:
        response = await ds.client.get(path)
        body = response.json() if path.split("?")[0].endswith(".json") else response.text
        answers.append((response.status_code, body))
    return answers


def datasette_get(path: Path, paths: Sequence[str], metadata: Any = None) -> list[tuple[int, Any]]:
    """(HTTP status, body) of each request, through Datasette's own ASGI client:
    ``.json`` paths give parsed JSON, others the page's text."""
    return asyncio.run(_get_all(Datasette([str(path)], metadata=metadata), paths))


async def _search(ds: Datasette, database: str, query: str) -> list[str]:
    await ds.invoke_startup()
    params = urlencode({"_search": query, "_shape": "objects", "_size": "max", "_col": "url"})
    next_path: str | None = f"/{database}/articles.json?{params}"
    urls: list[str] = []
    while next_path:
        response = await ds.client.get(next_path)
        assert response.status_code == 200, response.text
        page = response.json()
        urls += [row["url"] for row in page["rows"]]
        next_url = page.get("next_url")
        next_path = f"{urlsplit(next_url).path}?{urlsplit(next_url).query}" if next_url else None
    return urls


def datasette_search(path: Path, query: str, metadata: Any = None) -> list[str]:
    """The URLs ``articles.json?_search=QUERY`` lists, every page."""
    ds = Datasette([str(path)], metadata=metadata)
    return asyncio.run(_search(ds, datasette_name(path), query))


def sqlite_utils_search(path: Path, query: str) -> list[str]:
    """The URLs ``sqlite_utils.Database(path)["articles"].search(QUERY)`` yields."""
    db = sqlite_utils.Database(path)
    try:
        return [row["url"] for row in db.table("articles").search(query, columns=["url"])]
    finally:
        db.close()


def sqlite_utils_cli(*args: str) -> tuple[int, str]:
    """``sqlite-utils ARGS...`` through its click command: (exit code, output)."""
    result = CliRunner().invoke(sqlite_utils_command, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def sqlite_utils_cli_search(path: Path, query: str) -> list[str]:
    """The URLs ``sqlite-utils search PATH articles QUERY -c url`` prints."""
    code, output = sqlite_utils_cli("search", str(path), "articles", query, "-c", "url")
    assert code == 0, output
    return [row["url"] for row in json.loads(output)]
