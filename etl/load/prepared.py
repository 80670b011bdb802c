"""A batch's rows made ready for the driver before the writer lock (:class:`Prepared`),
and the column lists that say which of an article's and a link's values wait for it.

May import: ``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, Table

from etl.db import load_data
from etl.db.schema import MARIADB_URL_LOOKUPS, articles, related_articles
from etl.db.sql import STAGE_FROM, bulk_insert, convert_values, is_mysql
from etl.records import LinkRecord, TransformedDocument

# What a document's write sets: every column of the table but those an article keeps
# for life. Taken from the table, so a column added there is written without a list
# here to update (tests/test_load_columns.py holds the article row to the same set).
ARTICLE_KEPT = ("id", "url", "created_at")
ARTICLE_COLUMNS = tuple(c.name for c in articles.c if c.name not in ARTICLE_KEPT)

# Of a document's article row, the values the writer lock decides (the provider's id,
# the source's, the write's time) and the URL, which the batch sorts and looks up by.
# The rest are made ready for the driver before the lock (Prepared).
ARTICLE_UNDER_LOCK = ("url", "provider_id", "source_id", "created_at", "updated_at")
ARTICLE_READY = tuple(name for name in ARTICLE_COLUMNS if name not in ARTICLE_UNDER_LOCK)
# MariaDB's staged article row (etl.db.load_data.stage): two slots, which the lock maps to
# the provider's and the source's ids, then the URL and the ready values.
ARTICLE_STAGED = ("provider_id", "source_id", "url", *ARTICLE_READY)


def ready_values(doc: TransformedDocument) -> dict[str, Any]:
    """The ``ARTICLE_READY`` values of ``doc``, in that order (tests/test_load_columns.py)."""
    a = doc.article
    return {
        "web_url": a.web_url,
        "original_url": a.original_url,
        "amp_web_url": a.amp_web_url,
        "cdn_amp_web_url": a.cdn_amp_web_url,
        "title": a.title,
        "excerpt": a.excerpt,
        "body": a.body,
        "category": a.category,
        "type": a.type,
        "published_at": a.published_at,
        "quality": a.quality,
        "heat": a.heat,
        "is_published": a.is_published,
        "is_removed": a.is_removed,
        "is_stub": False,
        "provider_name": a.provider.name,
        "featured_content": a.featured_content,
        "secured": a.secured,
        "extra": a.extra,
        "source_path": doc.source_key,
        "fingerprint": doc.fingerprint,
    }


LINK_COLUMNS = (
    "article_id",
    "related_article_id",
    "position",
    "snippet_title",
    "snippet_excerpt",
    "snippet_published_at",
    "snippet_web_url",
    "snippet_provider_domain",
    "snippet_provider_name",
)
LINK_IDS = 2  # LINK_COLUMNS' ids come first: only they wait for the writer lock
SNIPPET = 3  # then the link's position, then what the entry it lists shows (its snippet)
# MariaDB's index that finds an article by URL (migration 0013).
_URL_INDEX = next(name for name, table in MARIADB_URL_LOOKUPS.items() if table == "articles")


def link_values(link: LinkRecord) -> list[Any]:
    """A link's values after its two ids (``LINK_COLUMNS[LINK_IDS:]``)."""
    provider = link.provider
    return [
        link.position,
        link.title,
        link.excerpt,
        link.published_at,
        link.web_url,
        provider.domain if provider else None,
        provider.name if provider else None,
    ]


class _Snippets:
    """The distinct snippets of a batch's links, each converted once.

    A link's values after its position (``LINK_COLUMNS[SNIPPET:]``) are the entry it
    lists: a corpus's 160,000 links show about 4,000, each listed by many articles, and
    converting each link's own was a tenth of a MariaDB load's CPU (0.5 CPU-s of
    PostgreSQL's). Links with the same provider object and the same other values share
    one (the documents hold their providers: an id is not reused while they live).
    """

    def __init__(self, links: Iterable[LinkRecord]) -> None:
        self.order: list[int] = []  # each link's snippet, by number
        self._firsts: list[LinkRecord] = []  # each snippet's first link
        index: dict[tuple[Any, ...], int] = {}
        for link in links:
            key = (link.title, link.excerpt, link.published_at, link.web_url, id(link.provider))
            found = index.get(key)
            if found is None:
                found = index[key] = len(self._firsts)
                self._firsts.append(link)
            self.order.append(found)

    def values(
        self, conn: Connection, render: Callable[[Any], str] | None = None
    ) -> list[list[Any]]:
        """Each snippet's values, converted (``etl.db.sql.convert_values``), by number."""
        rows = [link_values(link)[SNIPPET - LINK_IDS :] for link in self._firsts]
        convert_values(conn, related_articles, LINK_COLUMNS[SNIPPET:], rows, render)
        return rows


class Prepared:
    """A batch's rows with every value the writer lock does not decide made ready for
    the driver (``etl.db.sql.convert_values``): a worker prepares its batch before it
    asks for the lock, so that under the lock a link row is two ids and the prepared
    rest, and an article row its ids, URL and time and the prepared rest.

    Links: where MariaDB can ``LOAD DATA LOCAL`` (``etl.db.load_data``), the server
    parses them into a staging table before the lock, each with its document's slot
    and its target URL's in place of the two ids; under the lock it copies them
    (:func:`etl.db.load_data.insert_staged`). Elsewhere a link is its target URL and
    its other values. Articles: where MariaDB stages the links, it stages a batch of
    ``STAGE_FROM`` documents or more too, beside them (``LOAD DATA`` of the
    ``ARTICLE_READY`` values as fields, with a slot for the provider's id and one for
    the source's, ``ARTICLE_STAGED``), and copies them under the lock with the upsert's
    ON DUPLICATE KEY UPDATE: the server parsed about 500 articles' literals (their
    bodies) there, a sixth of its lock time. Otherwise, on MariaDB, whose upserts are SQL
    literals rendered in Python, the ``ARTICLE_READY`` values are those literals;
    elsewhere the driver converts them in C (PostgreSQL's COPY, SQLite's executemany)
    and they stay as they are; PostgreSQL copies a large batch's into a temporary table
    in its writer transaction before the lock (:meth:`stage_articles`), where they took
    a fifth of the articles' upsert under it. A document not prepared (one read again
    under the lock) is prepared, and staged, when written.
    """

    def __init__(self) -> None:
        # id(document) -> (the document, [(target URL, the link's other values)])
        self._links: dict[int, tuple[TransformedDocument, list[tuple[str, Any]]]] = {}
        # id(document) -> (the document, its ARTICLE_READY values)
        self._articles: dict[int, tuple[TransformedDocument, dict[str, Any]]] = {}
        self.staged: bool | None = None  # links staged by the server: decided on first use
        self._slots: dict[int, tuple[TransformedDocument, int]] = {}  # id(document) -> slot
        self.target_slots: dict[str, int] = {}  # a staged link's target URL -> its slot
        self._snippet_slots = 0  # how many snippets are staged
        self.articles_converted = 0  # how many of an article row's values are (the last)
        # PostgreSQL: id(document) -> (the document, its slot in articles_staging());
        # MariaDB: its slot in load_data's staging copy of articles
        self._article_slots: dict[int, tuple[TransformedDocument, int]] = {}
        self.article_fields = False  # MariaDB: the articles are staged (LOAD DATA fields)

    def links_staged(self, conn: Connection) -> bool:
        """Whether the links go in through the server's staging table (decided once)."""
        if self.staged is None:
            self.staged = load_data.allowed(conn) and load_data.can_stage(conn)
            self.articles_converted = len(ARTICLE_READY) if is_mysql(conn) else 0
        return self.staged

    def add(self, conn: Connection, docs: Iterable[TransformedDocument]) -> None:
        docs = list(docs)
        if self.links_staged(conn):
            self._stage(conn, docs)
        else:
            self._convert_links(conn, docs)
        ready = [ready_values(d) for d in docs]
        if self.staged and not self._articles and len(docs) >= STAGE_FROM:
            # MariaDB: this batch's articles are staged. Not MySQL, whose copy (INSERT …
            # SELECT) would warn that the upsert's VALUES() is deprecated, and a statement
            # of load_data's that warns is refused.
            self.article_fields = bool(getattr(conn.dialect, "is_mariadb", False))
        if self.article_fields:
            self._stage_article_fields(conn, docs, ready)
            return
        if self.articles_converted:  # MariaDB: the values become literals
            rows = [list(article.values()) for article in ready]
            convert_values(conn, articles, ARTICLE_READY, rows)
            ready = [dict(zip(ARTICLE_READY, row, strict=True)) for row in rows]
        for d, article in zip(docs, ready, strict=True):
            self._articles[id(d)] = (d, article)

    def _convert_links(self, conn: Connection, docs: list[TransformedDocument]) -> None:
        snippets = _Snippets(link for d in docs for link in d.article.links)
        shared = snippets.values(conn)
        numbers = sorted({link.position for d in docs for link in d.article.links})
        converted = [[number] for number in numbers]
        convert_values(conn, related_articles, LINK_COLUMNS[LINK_IDS:SNIPPET], converted)
        positions = {number: row[0] for number, row in zip(numbers, converted, strict=True)}
        order = iter(snippets.order)
        for d in docs:
            links = [
                (link.url, (positions[link.position], *shared[next(order)]))
                for link in d.article.links
            ]
            self._links[id(d)] = (d, links)

    def _stage(self, conn: Connection, docs: list[TransformedDocument]) -> None:
        # In URL order, the order in which the batch's new articles get their ids: the
        # server copies the rows as staged, and InnoDB fills its pages in key order.
        docs = sorted(docs, key=lambda d: d.article.url)
        snippets = _Snippets(link for d in docs for link in d.article.links)
        # Each snippet once, in a slot of its own: a link names it (load_data.stage).
        first_snippet = self._snippet_slots
        shared = [
            f"{first_snippet + number:d}\t" + "\t".join(row) + "\n"
            for number, row in enumerate(snippets.values(conn, load_data.field))
        ]
        self._snippet_slots += len(shared)
        targets = self.target_slots
        first_new = len(targets)
        lines: list[str] = []
        indexes = iter(snippets.order)
        for d in docs:
            slot = len(self._slots)
            self._slots[id(d)] = (d, slot)
            for link in d.article.links:
                target = targets.setdefault(link.url, len(targets))
                # The position's field is its digits, as load_data.field writes an int.
                snippet = first_snippet + next(indexes)
                lines.append(f"{slot:d}\t{target:d}\t{link.position:d}\t{snippet:d}\n")
        # The new targets' URLs, by which the writer finds their ids (staged_target_ids).
        keys = [
            f"{target:d}\t{load_data.field(url)}\n"
            for url, target in targets.items()
            if target >= first_new
        ]
        # This Prepared's first documents: the table is made anew, so that no row staged
        # for another batch on this connection can take a slot of this one.
        fresh = len(self._slots) == len(docs)
        load_data.stage(
            conn,
            related_articles,
            LINK_COLUMNS[:SNIPPET],
            lines,
            fresh=fresh,
            keys=keys,
            shared=LINK_COLUMNS[SNIPPET:],
            shared_lines=shared,
        )

    def _stage_article_fields(
        self, conn: Connection, docs: list[TransformedDocument], ready: list[dict[str, Any]]
    ) -> None:
        """MariaDB: the documents' article rows as ``load_data`` fields, staged by the
        server before the lock (in URL order: the order in which the copy inserts them),
        their two slot columns (``ARTICLE_STAGED``) the provider's and the source's ids."""
        pairs = sorted(zip(docs, ready, strict=True), key=lambda pair: pair[0].article.url)
        rows = [[d.article.url, *values.values()] for d, values in pairs]
        convert_values(conn, articles, ("url", *ARTICLE_READY), rows, load_data.field)
        fresh = not self._article_slots
        lines = []
        for (d, _), row in zip(pairs, rows, strict=True):
            slot = len(self._article_slots)
            self._article_slots[id(d)] = (d, slot)
            self._articles[id(d)] = (d, dict(zip(ARTICLE_READY, row[1:], strict=True)))
            lines.append(f"{slot:d}\t{slot:d}\t" + "\t".join(row) + "\n")
        load_data.stage(conn, articles, ARTICLE_STAGED, lines, fresh=fresh)

    def staged_target_ids(self, conn: Connection) -> dict[str, int]:
        """Under the writer lock: target URL -> article id, for each staged link target
        that has an article (the batch's own included)."""
        by_slot = load_data.staged_key_ids(conn, related_articles, articles, "url", _URL_INDEX)
        return {url: by_slot[slot] for url, slot in self.target_slots.items() if slot in by_slot}

    def of(self, conn: Connection, doc: TransformedDocument) -> list[tuple[str, Any]]:
        """The links of ``doc`` (not staged): (target URL, the rest of the row) each."""
        found = self._links.get(id(doc))
        if found is None or found[0] is not doc:
            self.add(conn, [doc])
            found = self._links[id(doc)]
        return found[1]

    def slot(self, conn: Connection, doc: TransformedDocument) -> int:
        """The slot of ``doc``'s staged links."""
        found = self._slots.get(id(doc))
        if found is None or found[0] is not doc:
            self.add(conn, [doc])
            found = self._slots[id(doc)]
        return found[1]

    def article(self, conn: Connection, doc: TransformedDocument) -> dict[str, Any]:
        """The ``ARTICLE_READY`` values of ``doc``'s article row (not where they are staged
        as ``LOAD DATA`` fields, which no statement may take as values or literals)."""
        if self.article_fields:
            raise RuntimeError("the articles are staged: their rows go in by article_slot")
        found = self._articles.get(id(doc))
        if found is None or found[0] is not doc:
            self.add(conn, [doc])
            found = self._articles[id(doc)]
        return found[1]

    # --- PostgreSQL: a batch's article rows copied into the session's table before the lock

    def stage_articles(self, conn: Connection) -> None:
        """PostgreSQL, in the writer transaction before it takes the lock: COPY the
        ``ARTICLE_READY`` values of the batch's documents into :func:`articles_staging` (a
        temporary table: no other session waits for it), each in a slot of its own,
        for ``etl.load.writes``' upsert from there. Only batches of ``STAGE_FROM``
        documents or more: a smaller one goes in as before."""
        if conn.dialect.name != "postgresql" or len(self._articles) < STAGE_FROM:
            return
        _stage_articles(conn, list(self._articles.values()), self._article_slots)

    def articles_staged(self) -> bool:
        """Whether this batch's article rows went to :func:`articles_staging`."""
        return bool(self._article_slots)

    def article_slot(self, conn: Connection, doc: TransformedDocument) -> int:
        """The slot of ``doc``'s staged article row (one read again under the lock is
        staged now)."""
        found = self._article_slots.get(id(doc))
        if found is None or found[0] is not doc:
            if self.article_fields:
                self.add(conn, [doc])
            else:
                _stage_articles(conn, [(doc, self.article(conn, doc))], self._article_slots)
            found = self._article_slots[id(doc)]
        return found[1]


@cache
def articles_staging() -> Table:
    """The session's table of staged article rows (PostgreSQL). Made on first use: a
    PostgreSQL option of a table imports SQLAlchemy's PostgreSQL dialect (23 ms of
    every run's start, on every backend, when it was made at import)."""
    return Table(
        "etl_staging_ready_articles",
        MetaData(),
        Column("slot", Integer, nullable=False),
        Column("url", articles.c.url.type, nullable=False),
        *(Column(name, articles.c[name].type) for name in ARTICLE_READY),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",  # and a rollback takes its rows too
    )


_NEXT_SLOT = "etl_next_article_slot"  # conn.info: slots differ across a dry run's batches


def _stage_articles(
    conn: Connection,
    ready: list[tuple[TransformedDocument, dict[str, Any]]],
    slots: dict[int, tuple[TransformedDocument, int]],
) -> None:
    from sqlalchemy.schema import CreateTable

    first = conn.info.get(_NEXT_SLOT, 0)
    conn.info[_NEXT_SLOT] = first + len(ready)
    rows = []
    for slot, (d, values) in enumerate(ready, start=first):
        slots[id(d)] = (d, slot)
        rows.append([slot, d.article.url, *values.values()])
    staging = articles_staging()
    conn.execute(CreateTable(staging, if_not_exists=True))
    bulk_insert(conn, staging, [c.name for c in staging.c], rows)
