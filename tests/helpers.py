"""Test helpers shared by the test modules (which never import each other or conftest).

- paths of the repository and its seed documents;
- test databases: a fresh one per backend (``make_database``), a connection to one
  (``connect``, ``fetch``), and its contents as plain, id-free data (``snapshot``);
- YAML: ``dump_yaml``, which never writes anchors or aliases (the pipeline refuses them);
- the ``etl`` command in a fresh interpreter (``run_etl``, ``start_etl``);
- documents made from the seed with a unique token, and the checks that one was
  rejected or loaded (``make_doc``, ``render``, ``assert_rejected``, ``assert_loaded``).
"""

from __future__ import annotations

import copy
import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import yaml
from sqlalchemy import Connection, Row, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

import etl
from etl.database import resolve_url
from etl.records import Rejection, RunSummary
from etl.schema import (
    article_images,
    article_topics,
    articles,
    images,
    provider_document_images,
    provider_images,
    providers,
    rejected_documents,
    related_articles,
    source_files,
    source_providers,
    source_topics,
    sources,
    topics,
)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_PATH = SEEDS / "000_af0cddeac82c129c.md"

# --- test databases -------------------------------------------------------------------

POSTGRES_URL = os.environ.get(
    "ETL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MARIADB_URL = os.environ.get("ETL_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")
REQUIRE_SERVERS = os.environ.get("ETL_TEST_REQUIRE_SERVERS") == "1"

BACKENDS = ["sqlite", "postgresql", "mariadb"]


def unavailable(reason: str) -> None:
    """Skip the test (a laptop without the server), or fail it where servers are required."""
    if REQUIRE_SERVERS:
        pytest.fail(f"{reason} (ETL_TEST_REQUIRE_SERVERS=1: servers are required)")
    pytest.skip(reason)


def _server_database(admin_url: str, backend: str) -> Generator[str]:
    """Create a uniquely named database on a server, yield its URL, drop it afterwards."""
    admin = resolve_url(admin_url)
    name = f"etl_test_{uuid.uuid4().hex[:12]}"
    options = {"isolation_level": "AUTOCOMMIT"} if backend == "postgresql" else {}
    try:
        engine = create_engine(admin, **options)
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        unavailable(f"{backend} server at {admin.render_as_string()} unavailable: {exc}")
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()


def make_database(backend: str, tmp_path: Path) -> Generator[str]:
    """A fresh, empty database on ``backend``: ``next()`` gives its URL, ``close()``
    drops it (a SQLite file lives in ``tmp_path``)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    elif backend == "postgresql":
        yield from _server_database(POSTGRES_URL, backend)
    else:
        yield from _server_database(MARIADB_URL, backend)


@contextmanager
def connect(url: str, **engine_options: Any) -> Iterator[Connection]:
    """A connection to the database at ``url``; its engine is disposed of afterwards."""
    engine = create_engine(resolve_url(url), **engine_options)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def fetch(url: str, query: Executable) -> list[Row[Any]]:
    """Every row ``query`` returns from the database at ``url``."""
    with connect(url) as conn:
        return list(conn.execute(query))


# --- YAML -------------------------------------------------------------------------------

if TYPE_CHECKING:
    _SafeDumper = yaml.SafeDumper
else:  # libyaml's dumper where PyYAML has it
    _SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class NoAliasDumper(_SafeDumper):
    """Never writes anchors/aliases (the pipeline rightly refuses them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any, **options: Any) -> str:
    """``data`` as block YAML in key order, with text as is and no anchors or aliases."""
    text: str = yaml.dump(
        data, Dumper=NoAliasDumper, sort_keys=False, allow_unicode=True, **options
    )
    return text


# --- the etl command ----------------------------------------------------------------------

CLI_TIMEOUT = 180


def etl_argv(*args: str, exe: list[str] | None = None) -> list[str]:
    """``python -m etl ARGS`` with this interpreter (or ``exe ARGS``: an installed ``etl``)."""
    return [*(exe or [sys.executable, "-m", "etl"]), *args]


def etl_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without the user's ``ETL_*`` settings (the tests' own
    ``ETL_TEST_*`` stay), plus ``env``."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ETL_") or key.startswith("ETL_TEST_")
    }
    return {**clean, **(env or {})}


def run_etl(
    *args: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
    exe: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``etl ARGS`` in a fresh interpreter (a crash or hang cannot take pytest with it);
    a run that does not finish within ``timeout`` seconds fails the test."""
    try:
        return subprocess.run(
            etl_argv(*args, exe=exe),
            cwd=cwd,
            env=etl_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"etl {' '.join(args)} did not finish within {timeout}s (hangs): {exc}")


def start_etl(*args: str, cwd: Path = ROOT, **popen: Any) -> subprocess.Popen[Any]:
    """``etl ARGS`` started in a fresh interpreter, for a test that interrupts it or runs
    several at once; ``popen`` are ``subprocess.Popen`` options (output, session)."""
    return subprocess.Popen(etl_argv(*args), cwd=cwd, env=etl_env(), **popen)


# --- documents --------------------------------------------------------------------------


def token() -> str:
    """A random tag for one test's URLs, titles and file names."""
    return uuid.uuid4().hex[:12]


def url_for(tag: str, path: str = "story/1") -> str:
    return f"https://{tag}.example.com/{path}"


def seed_front_matter() -> dict[str, Any]:
    """The seed document's front-matter, parsed independently of the code under test."""
    text = SEED_PATH.read_text(encoding="utf-8")
    front_matter: dict[str, Any] = yaml.safe_load(text.split("---\n", 2)[1])
    return front_matter


def make_doc(tag: str) -> dict[str, Any]:
    """The seed, with ``tag`` in every identity and text (URLs, title, topics, provider...)."""
    doc = copy.deepcopy(seed_front_matter())
    doc["title"] = f"Title {tag}"
    doc["excerpt"] = f"Excerpt {tag}"
    doc["webUrl"] = doc["originalUrl"] = url_for(tag)
    doc["ampWebUrl"] = url_for(tag, "story/1.amp")
    doc.pop("cdnAmpWebUrl")
    doc["provider"]["name"] = f"Provider {tag}"
    doc["provider"]["domain"] = f"{tag}.example.com"
    doc["provider"]["images"][0]["url"] = url_for(tag, "logo.png")
    doc["topics"] = [f"Topic {tag}", "AI"]
    doc["images"][0]["url"] = url_for(tag, "image.jpg")
    doc["related"][0]["webUrl"] = url_for(f"rel-{tag}")
    doc["related"][0].pop("ampWebUrl")
    doc["related"][0].pop("cdnAmpWebUrl")
    doc["related"][0]["title"] = f"Related {tag}"
    doc["related"][0]["images"][0]["url"] = url_for(f"rel-{tag}", "image.jpg")
    return doc


def render(front_matter: Any, body: str = "Body text.\n") -> bytes:
    """A document file: ``front_matter`` as YAML between ``---`` lines, then ``body``."""
    return f"---\n{dump_yaml(front_matter, width=1 << 30)}---\n{body}".encode()


def write_tree(root: Path, files: Mapping[str, bytes | None]) -> None:
    """Write (or, for None, delete) files under ``root``."""
    for name, data in files.items():
        path = root / name
        if data is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def run_files(url: str, root: Path, files: dict[str, bytes], **options: Any) -> RunSummary:
    """Write ``files`` (name -> content) into ``root`` and run the pipeline over it."""
    root.mkdir(parents=True, exist_ok=True)
    write_tree(root, files)
    return etl.run([root], url, **options)


def db_text(url: str) -> str:
    """Everything the data tables hold, as one string (to search for a document's token)."""
    return json.dumps(snapshot(url, with_sources=True), default=str, ensure_ascii=False)


def rejected_rows(url: str, run_id: int | None) -> list[dict[str, Any]]:
    query = select(rejected_documents).where(rejected_documents.c.run_id == run_id)
    return [dict(row._mapping) for row in fetch(url, query)]


def article_row(url: str, article_url: str) -> dict[str, Any] | None:
    rows = fetch(url, select(articles).where(articles.c.url == article_url))
    return dict(rows[0]._mapping) if rows else None


def assert_rejected(
    url: str, summary: RunSummary, key: str, pattern: str, *, position: bool = False
) -> Rejection:
    """``key`` is rejected once, its reason matches ``pattern``, the table agrees."""
    found = [item for item in summary.rejected if item.path == key]
    assert len(found) == 1, f"{key} not rejected exactly once: {summary.rejected}"
    rejection = found[0]
    assert re.search(pattern, rejection.error, re.IGNORECASE), (
        f"{key}: reason {rejection.error!r} does not match {pattern!r}"
    )
    if position:
        assert isinstance(rejection.line, int) and rejection.line >= 1, (
            f"{key}: a YAML error must give its line: {rejection!r}"
        )
        assert isinstance(rejection.column, int) and rejection.column >= 1, (
            f"{key}: a YAML error must give its column: {rejection!r}"
        )
    assert summary.status == "partial"
    rows = [row for row in rejected_rows(url, summary.run_id) if row["source_path"] == key]
    assert len(rows) == 1, rows
    assert (rows[0]["error"], rows[0]["line"], rows[0]["column"]) == (
        rejection.error,
        rejection.line,
        rejection.column,
    )
    return rejection


def assert_loaded(url: str, summary: RunSummary, key: str, tag: str) -> dict[str, Any]:
    """The good document ``key`` (made by ``make_doc(tag)``) is in the database."""
    assert key not in {item.path for item in summary.rejected}, summary.rejected
    row = article_row(url, url_for(tag))
    assert row is not None, f"{key}: article {url_for(tag)} not loaded"
    assert not row["is_stub"]
    assert row["title"] == f"Title {tag}"
    assert row["source_path"] == key
    return row


# --- a database's contents ----------------------------------------------------------------

ARTICLE_FIELDS = (
    "url",
    "web_url",
    "original_url",
    "amp_web_url",
    "cdn_amp_web_url",
    "title",
    "excerpt",
    "body",
    "category",
    "type",
    "published_at",
    "quality",
    "heat",
    "is_published",
    "is_removed",
    "is_stub",
    "featured_content",
    "secured",
    "extra",
    "source_path",
)


def snapshot(url: str, *, with_sources: bool = True) -> dict[str, Any]:
    """Every data table with surrogate ids replaced by natural keys, sorted.

    Tables and columns a schema revision does not have yet are left out (their keys
    are missing): compare an older revision's snapshot with :func:`as_of`.

    Two databases hold the same data exactly when their snapshots are equal,
    whatever order or split the documents were loaded in.
    """
    with connect(url) as conn:
        a_url = {r.id: r.url for r in conn.execute(select(articles.c.id, articles.c.url))}
        p_dom = {r.id: r.domain for r in conn.execute(select(providers.c.id, providers.c.domain))}
        t_slug = {r.id: r.slug for r in conn.execute(select(topics.c.id, topics.c.slug))}
        i_url = {r.id: r.url for r in conn.execute(select(images.c.id, images.c.url))}
        data: dict[str, Any] = {}
        data["articles"] = sorted(
            (
                *(_plain(getattr(r, f)) for f in ARTICLE_FIELDS),
                p_dom.get(r.provider_id),
            )
            # Named columns: the snapshot also reads older schema revisions.
            for r in conn.execute(
                select(*(articles.c[f] for f in ARTICLE_FIELDS), articles.c.provider_id)
            )
        )
        # Named columns: the snapshot also reads older schema revisions.
        declared = "named_by_source" in {c["name"] for c in inspect(conn).get_columns("providers")}
        provider_columns = [providers.c.domain, providers.c.name, providers.c.named_by_document]
        data["providers"] = sorted(
            tuple(_plain(value) for value in row) for row in conn.execute(select(*provider_columns))
        )
        if declared:  # revision 0008 on
            data["provider_document_names"] = sorted(
                (r.domain, r.document_name, bool(r.named_by_source))
                for r in conn.execute(
                    select(
                        providers.c.domain, providers.c.document_name, providers.c.named_by_source
                    )
                )
            )
            data["provider_document_images"] = sorted(
                (p_dom[r.provider_id], i_url[r.image_id], r.position)
                for r in conn.execute(select(provider_document_images))
            )
        data["topics"] = sorted((r.slug, r.name) for r in conn.execute(select(topics)))
        data["images"] = sorted((r.url, r.width, r.height) for r in conn.execute(select(images)))
        data["provider_images"] = sorted(
            (p_dom[r.provider_id], i_url[r.image_id], r.position)
            for r in conn.execute(select(provider_images))
        )
        data["article_topics"] = sorted(
            (a_url[r.article_id], t_slug[r.topic_id], r.position)
            for r in conn.execute(select(article_topics))
        )
        data["article_images"] = sorted(
            (a_url[r.article_id], i_url[r.image_id], r.position, r.title, _plain(r.is_cached))
            for r in conn.execute(select(article_images))
        )
        data["related_articles"] = sorted(
            (
                a_url[r.article_id],
                a_url[r.related_article_id],
                r.position,
                r.snippet_title,
                r.snippet_excerpt,
                str(r.snippet_published_at),
                r.snippet_web_url,
                r.snippet_provider_domain,
                r.snippet_provider_name,
            )
            for r in conn.execute(select(related_articles))
        )
        if with_sources:
            data["source_files"] = sorted(
                (r.path, r.content_hash, a_url.get(r.article_id), r.canonical_url)
                for r in conn.execute(
                    # Named columns: the snapshot also reads older schema revisions.
                    select(
                        source_files.c.path,
                        source_files.c.content_hash,
                        source_files.c.article_id,
                        source_files.c.canonical_url,
                    )
                )
            )
        if with_sources and inspect(conn).has_table("sources"):  # revision 0005 on
            s_name = {r.id: r.name for r in conn.execute(select(sources.c.id, sources.c.name))}
            data["source_topics"] = sorted(
                (
                    s_name[r.source_id],
                    t_slug[r.topic_id],
                    t_slug.get(r.parent_topic_id),
                    *(_plain(getattr(r, f)) for f in SOURCE_TOPIC_FIELDS),
                )
                for r in conn.execute(select(source_topics))
            )
            data["source_providers"] = sorted(
                (
                    s_name[r.source_id],
                    p_dom[r.provider_id],
                    r.name,
                    _plain(r.images),
                    _plain(r.extra),
                    r.file,
                )
                for r in conn.execute(select(source_providers))
            )
        return data


def live_snapshot(url: str) -> dict[str, Any]:
    """The snapshot, tombstones aside (removed rows no file describes and nothing links)."""
    data = snapshot(url)
    path_at = ARTICLE_FIELDS.index("source_path")
    removed_at = ARTICLE_FIELDS.index("is_removed")
    stub_at = ARTICLE_FIELDS.index("is_stub")
    data["articles"] = [
        row
        for row in data["articles"]
        if not (row[removed_at] and row[path_at] is None and not row[stub_at])
    ]
    return data


def as_of(data: dict[str, Any], older: dict[str, Any]) -> dict[str, Any]:
    """``data`` restricted to what the ``older`` snapshot (an older revision) holds."""
    return {key: value for key, value in data.items() if key in older}


# Every column of source_topics but its keys (which the snapshot gives as names).
SOURCE_TOPIC_FIELDS = tuple(
    column.name
    for column in source_topics.columns
    if column.name not in ("source_id", "topic_id", "parent_topic_id")
)


def counts(url: str) -> dict[str, int]:
    """Row counts of the data tables, plus stubs."""
    with connect(url) as conn:
        result = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                articles,
                providers,
                topics,
                images,
                provider_images,
                article_topics,
                article_images,
                related_articles,
                source_files,
            )
        }
        result["stubs"] = conn.execute(
            select(func.count()).select_from(articles).where(articles.c.is_stub)
        ).scalar_one()
        return result


class Held(NamedTuple):
    """What run counts add up to: full articles (tombstones aside), stubs, links."""

    articles: int
    stubs: int
    links: int


def held(url: str) -> Held:
    """The full articles, stubs and links the database holds now."""
    with connect(url) as conn:

        def number(query: Any) -> int:
            found: int = conn.execute(query).scalar_one()
            return found

        return Held(
            number(
                select(func.count())
                .select_from(articles)
                .where(~articles.c.is_stub, articles.c.source_path.is_not(None))
            ),
            number(select(func.count()).select_from(articles).where(articles.c.is_stub)),
            number(select(func.count()).select_from(related_articles)),
        )


def net_change(runs: Iterable[Mapping[str, Any] | RunSummary]) -> Held:
    """What the counts of ``runs`` (summaries or ``etl_runs`` rows) add up to: articles
    inserted minus removed, stubs created minus deleted, links added minus removed."""
    total = Held(0, 0, 0)
    for item in runs:
        row = item.counts() if isinstance(item, RunSummary) else item
        total = Held(
            total.articles + row["articles_inserted"] - row["articles_removed"],
            total.stubs + row["stubs_created"] - row["stubs_deleted"],
            total.links + row["links_added"] - row["links_removed"],
        )
    return total


def _plain(value: Any) -> Any:
    """Booleans come back as 0/1 from MariaDB; JSON as dicts everywhere."""
    if isinstance(value, bool | None):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def loaded_articles(url: str) -> int | None:
    """Full (non-stub) articles committed so far; None while the schema does not exist."""
    backend = make_url(url).get_backend_name()
    try:
        if backend == "sqlite":
            path = make_url(url).database
            if not path or not Path(path).exists():
                return None
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                found: int = conn.execute(
                    "SELECT count(*) FROM articles WHERE NOT is_stub"
                ).fetchone()[0]
                return found
        with connect(url, poolclass=NullPool) as db:
            query = select(func.count()).select_from(articles).where(~articles.c.is_stub)
            count: int = db.execute(query).scalar_one()
            return count
    except (sqlite3.OperationalError, DBAPIError):
        return None
