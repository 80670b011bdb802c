"""Commands that only read: ``etl runs``, ``etl rejects``, ``etl search``, ``etl schema``.

None of them creates a database file: an SQLite file that does not exist is reported
as such (``etl.db.database.require_existing_file``).
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import Engine, text

from etl.cli.common import dumps, with_engine
from etl.cli.group import main
from etl.cli.options import DATABASE, settings, shared
from etl.ledger import rejections, run_history
from etl.query import fulltext


def _format_run(row: dict[str, Any]) -> str:
    seconds = f"{row['seconds']:.1f}s" if row["seconds"] is not None else "-"
    counts = " ".join(
        f"{name.removeprefix('articles_').removeprefix('documents_')}={row[name]}"
        for name in run_history.SHOWN_COUNTS
    )
    line = (
        f"{row['id']:>5}  {row['started_at']:%Y-%m-%d %H:%M:%S}  {row['status']:<11}  "
        f"{seconds:>8}  {','.join(row['sources']) or '-'}  {counts}"
    )
    return f"{line}  error: {row['error']}" if row.get("error") else line


@main.command(short_help="List recent runs (etl_runs), newest first.")
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many runs to list.",
)
@click.option(
    "--source",
    "sources",
    metavar="NAME",
    multiple=True,
    help="Only runs that loaded source NAME (repeatable).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(run_history.STATUSES),
    help="Only runs with this status (repeatable).",
)
@shared(*DATABASE, "as_json")
def runs(limit: int, sources: tuple[str, ...], statuses: tuple[str, ...]) -> None:
    """List recent runs (etl_runs), newest first: id, start (UTC), status, duration,
    sources, counts (inserted, updated, removed, duplicates, rejected) and error.

    A run whose process is gone shows as `abandoned` (the next run records it as
    `interrupted`).
    """
    options = settings()
    rows = with_engine(
        options.database_url,
        options.connect_timeout,
        lambda engine: run_history.runs(
            limit=limit, sources=sources, statuses=statuses, engine=engine
        ),
        read_only=True,
    )
    if options.as_json:
        click.echo(dumps(rows))
        return
    if not rows:
        click.echo("no runs")
    for row in rows:
        click.echo(_format_run(row))


@main.command(short_help="List the rejected documents of a run (default: the latest).")
@click.argument("run_id", required=False, type=int)
@shared(*DATABASE, "as_json")
def rejects(run_id: int | None) -> None:
    """List the documents RUN_ID (default: the latest run) rejected, and why."""
    options = settings()
    rows = with_engine(
        options.database_url,
        options.connect_timeout,
        lambda engine: rejections.rejections(run_id, engine=engine),
        read_only=True,
    )
    if options.as_json:
        click.echo(dumps(rows))
        return
    if not rows:
        click.echo("no rejected documents")
    for row in rows:
        where = (
            row["source_path"]
            if row["line"] is None
            else f"{row['source_path']}:{row['line']}:{row['column']}"
        )
        click.echo(f"run {row['run_id']}  {where}: {row['error']}")


@main.command(short_help="Print the data dictionary (tables, views, columns, descriptions).")
@click.option(
    "--datasette-metadata",
    is_flag=True,
    help="Print Datasette's metadata.json for a SQLite database: descriptions, search, facets.",
)
@click.option(
    "--database-name",
    default="etl",
    show_default=True,
    metavar="NAME",
    help="With --datasette-metadata: Datasette's name for the database (its file name "
    "without the extension).",
)
@shared("as_json")
def schema(datasette_metadata: bool, database_name: str) -> None:
    """Print the data dictionary: tables, views, columns, types, keys, descriptions.

    Markdown with a Mermaid ER diagram (docs/schema.md is this output). Needs no
    database: the dictionary is the same on every backend.
    """
    as_json = settings().as_json
    if as_json and datasette_metadata:
        raise click.UsageError("--json and --datasette-metadata exclude each other")
    if datasette_metadata:
        from etl.db import datasette_metadata as datasette  # only this option needs it

        click.echo(datasette.to_json(database_name), nl=False)
        return
    from etl.db import dictionary  # only this command needs it

    click.echo(dictionary.to_json() if as_json else dictionary.markdown(), nl=False)


def _short_words_hint(engine: Engine, query: str) -> str | None:
    """MariaDB's FULLTEXT index has no word shorter than innodb_ft_min_token_size (nor
    its stop words): a query made only of such words cannot find anything."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return None
    with engine.connect() as conn:
        minimum = int(conn.execute(text("SELECT @@innodb_ft_min_token_size")).scalar() or 0)
    found = fulltext.words(query)
    if not found or any(
        len(word) >= minimum and word.lower() not in fulltext.MARIADB_STOPWORDS for word in found
    ):
        return None
    return (
        f"MariaDB's full-text index leaves out words shorter than {minimum} characters "
        f"(innodb_ft_min_token_size) and stop words, so {' '.join(found)!r} cannot be "
        "searched: add a longer word"
    )


@main.command(short_help="Search live full articles by words of their title and excerpt.")
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--limit",
    metavar="N",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most N results.",
)
@shared(*DATABASE, "as_json")
def search(query: tuple[str, ...], limit: int) -> None:
    """Search live full articles whose title and excerpt contain every word of QUERY.

    QUERY is one or more words (quoted or not). Most relevant first (title matches
    before excerpt matches). Punctuation and search operators in QUERY are ignored:
    only its words count.
    """
    options = settings()
    words = " ".join(query)

    def find(engine: Engine) -> tuple[list[fulltext.SearchResult], str | None]:
        results = fulltext.search(words, limit=limit, engine=engine)
        return results, _short_words_hint(engine, words)

    results, hint = with_engine(options.database_url, options.connect_timeout, find, read_only=True)
    if hint:
        click.echo(f"etl: note: {hint}", err=True)
    if options.as_json:
        click.echo(dumps([result.to_dict() for result in results]))
        return
    if not results:
        click.echo("no articles found")
    for result in results:
        published = f"{result.published_at:%Y-%m-%d}" if result.published_at else "----------"
        title = " ".join((result.title or "(no title)").split())
        provider = f"  ({result.provider_name})" if result.provider_name else ""
        click.echo(f"{published}  {title}{provider}  {result.url}")
