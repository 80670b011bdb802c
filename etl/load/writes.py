"""Writing articles and their child rows (topics, images, logos, links) for a batch.

An article's row is replaced whole by its document's (every column of ``articles``
but its id, URL and creation time), its child sets are cleared and written again
(its links only if they changed: they are most of the rows, and an edit seldom
touches them), and the URLs its links point at that have no article yet become stubs. Links go in
through :func:`etl.db.integrity.insert_checked_once`: a large batch checks their
foreign keys once instead of per row. On MariaDB the server has parsed them into a
staging table before the writer lock (:class:`Prepared`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    select,
)
from sqlalchemy.sql.expression import ColumnElement

from etl.db import load_data
from etl.db.integrity import insert_checked_once
from etl.db.schema import (
    MARIADB_URL_LOOKUPS,
    article_images,
    article_provider_images,
    article_topics,
    articles,
    related_articles,
)
from etl.db.sql import (
    bulk_insert,
    convert_values,
    delete_where_in,
    ids_by,
    in_conditions,
    is_mysql,
    upsert,
)
from etl.load.aggregates import (
    Touched,
    ensure_images,
    ensure_providers,
    ensure_topics,
)
from etl.load.stubs import clear_children, mark_stubs_dirty
from etl.load.tally import Tally
from etl.records import (
    LinkRecord,
    TransformedDocument,
)

# What a document's write sets: every column of the table but those an article keeps
# for life. Taken from the table, so a column added there is written without a list
# here to update (tests/test_load_columns.py holds _article_row to the same set).
ARTICLE_KEPT = ("id", "url", "created_at")
ARTICLE_COLUMNS = tuple(c.name for c in articles.c if c.name not in ARTICLE_KEPT)


def _article_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    return [(name, new[name]) for name in ARTICLE_COLUMNS]


# Of a document's article row, the values the writer lock decides (the provider's id,
# the source's, the write's time) and the URL, which the batch sorts and looks up by.
# The rest are made ready for the driver before the lock (Prepared).
ARTICLE_UNDER_LOCK = ("url", "provider_id", "source_id", "created_at", "updated_at")
ARTICLE_READY = tuple(name for name in ARTICLE_COLUMNS if name not in ARTICLE_UNDER_LOCK)


def _article_row(
    doc: TransformedDocument,
    provider_id: int,
    source_id: int,
    now: datetime,
    ready: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The article row of ``doc``: the ``ARTICLE_UNDER_LOCK`` values, then
    ``ready`` (its ``ARTICLE_READY`` values, :func:`_ready_values` unless given)."""
    return {
        "url": doc.article.url,
        "provider_id": provider_id,
        "source_id": source_id,
        "created_at": now,
        "updated_at": now,
        **(_ready_values(doc) if ready is None else ready),
    }


def _ready_values(doc: TransformedDocument) -> dict[str, Any]:
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


def write_articles(
    conn: Connection,
    writes: list[TransformedDocument],
    replaced_ids: list[int],
    source_ids: Mapping[str, int],
    now: datetime,
    tally: Tally,
    touched: Touched,
    prepared: Prepared | None = None,
) -> dict[str, int]:
    """Write the articles and their child rows; ``touched`` gains what they reference.
    ``prepared`` holds the rows of (some of) ``writes`` made ready before the lock."""
    prepared = prepared or Prepared()
    provider_ids = ensure_providers(
        conn, (d.article.provider for d in writes), from_document=True, now=now
    )
    image_ids = ensure_images(
        conn,
        [
            *(image for d in writes for _, image in d.article.images),
            *(image for d in writes for image in d.article.provider.images),
        ],
        now,
    )
    topic_ids = ensure_topics(conn, (topic for d in writes for topic in d.article.topics), now)
    touched.providers.update(provider_ids.values())
    touched.images.update(image_ids.values())
    touched.topics.update(topic_ids.values())

    rows = [
        _article_row(
            d,
            provider_ids[d.article.provider.domain],
            source_ids[d.source],
            now,
            prepared.article(conn, d),
        )
        for d in writes
    ]
    rows.sort(key=lambda row: row["url"])
    upsert(
        conn,
        articles,
        rows,
        ["url"],
        _article_setter,
        skip_unchanged=False,
        converted=prepared.articles_converted,
    )
    article_ids = ids_by(conn, articles, "url", (row["url"] for row in rows))

    # Replace the child sets of articles that existed before; their links, which are
    # most of the rows, only where they changed (_write_links).
    old_links = stored_links(conn, replaced_ids)
    clear_children(conn, replaced_ids, links=False)

    _write_sets(conn, writes, article_ids, topic_ids, image_ids)
    new_targets = _write_links(conn, writes, article_ids, now, tally, prepared, old_links)
    old_targets = {row[0] for rows in old_links.values() for row in rows}
    # Every target, changed link or not: a stub shows the snippet of the linking article
    # with the latest published_at, a column of the article just written.
    mark_stubs_dirty(conn, old_targets | new_targets)
    return article_ids


def _write_sets(
    conn: Connection,
    writes: list[TransformedDocument],
    article_ids: Mapping[str, int],
    topic_ids: Mapping[str, int],
    image_ids: Mapping[str, int],
) -> None:
    """The topics, images and logos of ``writes`` (their old ones are cleared)."""
    topic_rows = [
        [article_ids[d.article.url], topic_ids[t.slug], t.position, t.name]
        for d in writes
        for t in d.article.topics
    ]
    bulk_insert(conn, article_topics, ("article_id", "topic_id", "position", "name"), topic_rows)
    image_rows = [
        [
            article_ids[d.article.url],
            image_ids[image.url],
            position,
            image.title,
            image.is_cached,
            image.width,
            image.height,
        ]
        for d in writes
        for position, image in d.article.images
    ]
    bulk_insert(conn, article_images, IMAGE_LINK_COLUMNS, image_rows)
    logo_rows = [
        [article_ids[d.article.url], image_ids[image.url], position, image.width, image.height]
        for d in writes
        for position, image in enumerate(d.article.provider.images)
    ]
    bulk_insert(conn, article_provider_images, LOGO_COLUMNS, logo_rows)


def stored_links(conn: Connection, ids: list[int]) -> dict[int, list[tuple[Any, ...]]]:
    """Article id -> its links as stored: each row's values after the article's id
    (``LINK_COLUMNS[1:]``), by target id."""
    found: dict[int, list[tuple[Any, ...]]] = {}
    columns = [related_articles.c[name] for name in LINK_COLUMNS]
    for condition in in_conditions(conn, related_articles.c.article_id, ids):
        for row in conn.execute(select(*columns).where(condition)):
            found.setdefault(row[0], []).append(tuple(row[1:]))
    for rows in found.values():
        rows.sort(key=itemgetter(0))
    return found


def _link_values(link: LinkRecord) -> list[Any]:
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


def _unchanged_links(
    writes: list[TransformedDocument],
    article_ids: Mapping[str, int],
    targets: Mapping[str, int],
    stored: Mapping[int, list[tuple[Any, ...]]],
) -> set[int]:
    """The articles among ``stored`` whose links ``writes`` leave exactly as they are
    (a title edited, say): theirs are neither deleted nor written again."""
    same: set[int] = set()
    for d in writes:
        article_id = article_ids[d.article.url]
        old = stored.get(article_id)
        if old is None or len(old) != len(d.article.links):
            continue
        new = [(targets[link.url], *_link_values(link)) for link in d.article.links]
        new.sort(key=itemgetter(0))
        if new == old:  # equal values store alike: a fresh load writes these same rows
            same.add(article_id)
    return same


class Prepared:
    """A batch's rows with every value the writer lock does not decide made ready for
    the driver (``etl.db.sql.convert_values``): a worker prepares its batch before it
    asks for the lock, so that under the lock a link row is two ids and the prepared
    rest, and an article row its ids, URL and time and the prepared rest.

    Links: where MariaDB can ``LOAD DATA LOCAL`` (``etl.db.load_data``), the server
    parses them into a staging table before the lock, each with its document's slot
    and its target URL's in place of the two ids; under the lock it copies them
    (:func:`etl.db.load_data.insert_staged`). Elsewhere a link is its target URL and
    its other values. Articles: on MariaDB, whose upserts are SQL literals rendered in
    Python, the ``ARTICLE_READY`` values are those literals; elsewhere the driver
    converts them in C (PostgreSQL's COPY, SQLite's executemany) and they stay as they
    are. A document not prepared (one read again under the lock) is prepared when
    written.
    """

    def __init__(self) -> None:
        # id(document) -> (the document, [(target URL, the link's other values)])
        self._links: dict[int, tuple[TransformedDocument, list[tuple[str, Any]]]] = {}
        # id(document) -> (the document, its ARTICLE_READY values)
        self._articles: dict[int, tuple[TransformedDocument, dict[str, Any]]] = {}
        self.staged: bool | None = None  # links staged by the server: decided on first use
        self._slots: dict[int, tuple[TransformedDocument, int]] = {}  # id(document) -> slot
        self.target_slots: dict[str, int] = {}  # a staged link's target URL -> its slot
        self.articles_converted = 0  # how many of an article row's values are (the last)

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
        ready = [_ready_values(d) for d in docs]
        if self.articles_converted:  # MariaDB: the values become literals
            rows = [list(article.values()) for article in ready]
            convert_values(conn, articles, ARTICLE_READY, rows)
            ready = [dict(zip(ARTICLE_READY, row, strict=True)) for row in rows]
        for d, article in zip(docs, ready, strict=True):
            self._articles[id(d)] = (d, article)

    def _convert_links(self, conn: Connection, docs: list[TransformedDocument]) -> None:
        values: list[list[Any]] = []
        for d in docs:
            links: list[tuple[str, Any]] = []
            for link in d.article.links:
                rest = _link_values(link)
                links.append((link.url, rest))
                values.append(rest)
            self._links[id(d)] = (d, links)
        convert_values(conn, related_articles, LINK_COLUMNS[LINK_IDS:], values)

    def _stage(self, conn: Connection, docs: list[TransformedDocument]) -> None:
        # In URL order, the order in which the batch's new articles get their ids: the
        # server copies the rows as staged, and InnoDB fills its pages in key order.
        docs = sorted(docs, key=lambda d: d.article.url)
        values = [_link_values(link) for d in docs for link in d.article.links]
        convert_values(conn, related_articles, LINK_COLUMNS[LINK_IDS:], values, load_data.field)
        targets = self.target_slots
        first_new = len(targets)
        lines: list[str] = []
        rests = iter(values)
        for d in docs:
            slot = len(self._slots)
            self._slots[id(d)] = (d, slot)
            for link in d.article.links:
                target = targets.setdefault(link.url, len(targets))
                lines.append(f"{slot:d}\t{target:d}\t" + "\t".join(next(rests)) + "\n")
        # The new targets' URLs, by which the writer finds their ids (staged_target_ids).
        keys = [
            f"{target:d}\t{load_data.field(url)}\n"
            for url, target in targets.items()
            if target >= first_new
        ]
        # This Prepared's first documents: the table is made anew, so that no row staged
        # for another batch on this connection can take a slot of this one.
        fresh = len(self._slots) == len(docs)
        load_data.stage(conn, related_articles, LINK_COLUMNS, lines, fresh=fresh, keys=keys)

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
        """The ``ARTICLE_READY`` values of ``doc``'s article row."""
        found = self._articles.get(id(doc))
        if found is None or found[0] is not doc:
            self.add(conn, [doc])
            found = self._articles[id(doc)]
        return found[1]


def _write_links(
    conn: Connection,
    writes: list[TransformedDocument],
    article_ids: dict[str, int],
    now: datetime,
    tally: Tally,
    prepared: Prepared,
    stored: Mapping[int, list[tuple[Any, ...]]],
) -> set[int]:
    """Write the links of ``writes`` (replacing the ``stored`` links of those that had
    some) where they changed; the ids they point at. Creates the stubs they need."""
    tally.linked((article_ids[d.article.url], len(d.article.links)) for d in writes)
    target_urls = {link.url for d in writes for link in d.article.links}
    if not target_urls:
        delete_where_in(conn, related_articles, "article_id", sorted(stored))
        return set()
    if prepared.links_staged(conn):
        for d in writes:
            prepared.slot(conn, d)  # a document read again under the lock is staged now
        found = prepared.staged_target_ids(conn)
        known = {url: found[url] for url in target_urls if url in found}
    else:
        known = {url: article_ids[url] for url in target_urls if url in article_ids}
        known.update(ids_by(conn, articles, "url", target_urls - known.keys()))
    missing = sorted(target_urls - known.keys())
    if missing:
        stub_rows = [
            {"url": url, "is_stub": True, "is_removed": False, "created_at": now, "updated_at": now}
            for url in missing
        ]
        upsert(conn, articles, stub_rows, ["url"])
        created = ids_by(conn, articles, "url", missing)
        tally.created(created.values())
        known.update(created)

    same = _unchanged_links(writes, article_ids, known, stored)
    delete_where_in(conn, related_articles, "article_id", sorted(stored.keys() - same))
    changed = [d for d in writes if article_ids[d.article.url] not in same]
    if prepared.links_staged(conn):
        _insert_staged(conn, changed, article_ids, known, prepared)
        return set(known.values())
    link_rows = [
        [article_ids[d.article.url], known[url], *rest]
        for d in changed
        for url, rest in prepared.of(conn, d)
    ]
    # In key order, each index page is filled once instead of split at random: InnoDB's
    # clustered index and both engines' B-trees took 10-15% less time per link.
    link_rows.sort(key=itemgetter(0, 1))
    insert_checked_once(
        conn,
        related_articles,
        LINK_COLUMNS,
        link_rows,
        converted=len(LINK_COLUMNS) - LINK_IDS,
    )
    return set(known.values())


def _insert_staged(
    conn: Connection,
    changed: list[TransformedDocument],
    article_ids: Mapping[str, int],
    known: Mapping[str, int],
    prepared: Prepared,
) -> None:
    """MariaDB: the staged links of ``changed``, their slots mapped to ids by the server
    (``etl.db.load_data.insert_staged``)."""
    linking = [d for d in changed if d.article.links]
    slots = [(prepared.slot(conn, d), article_ids[d.article.url]) for d in linking]
    urls = {link.url for d in linking for link in d.article.links}
    targets = [(prepared.target_slots[url], known[url]) for url in urls]
    count = sum(len(d.article.links) for d in linking)
    if not count:
        return
    # The keys' values, for the check: each article's and each target's id once.
    keys = [[article_id, None] for _, article_id in slots]
    keys.extend([None, target_id] for _, target_id in targets)

    def write() -> None:
        load_data.insert_staged(conn, related_articles, LINK_COLUMNS, slots, targets)

    insert_checked_once(conn, related_articles, LINK_COLUMNS, keys, write=write, count=count)


IMAGE_LINK_COLUMNS = (
    "article_id",
    "image_id",
    "position",
    "title",
    "is_cached",
    "width",
    "height",
)
LOGO_COLUMNS = ("article_id", "image_id", "position", "width", "height")

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
# MariaDB's index that finds an article by URL (migration 0013).
_URL_INDEX = next(name for name, table in MARIADB_URL_LOOKUPS.items() if table == "articles")
