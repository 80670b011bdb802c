"""Writing articles and their child rows (topics, images, logos, links) for a batch.

An article's row is replaced whole by its document's (every column of ``articles``
but its id, URL and creation time), its child sets are cleared and written again
where they changed (its topics, images and logos when its references did,
``etl.load.unchanged``; its links when they did: they are most of the rows, and an
edit seldom touches either), and the URLs its links point at that have no article
yet become stubs. Links go in through :func:`etl.db.integrity.insert_checked_once`:
a large batch checks their foreign keys once instead of per row. On MariaDB the
server has parsed them, and a large batch's articles, into staging tables before the
writer lock (:class:`Prepared`).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Table,
    bindparam,
    func,
    select,
)
from sqlalchemy.sql.expression import ColumnElement

from etl.db import load_data
from etl.db.integrity import insert_checked_once
from etl.db.schema import (
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
    duplicate_key_update,
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
from etl.load.prepared import (
    ARTICLE_COLUMNS,
    ARTICLE_READY,
    ARTICLE_STAGED,
    ARTICLE_UNDER_LOCK,
    LINK_COLUMNS,
    LINK_IDS,
    SNIPPET,
    Prepared,
    articles_staging,
    link_values,
    ready_values,
)
from etl.load.stubs import clear_children, mark_stubs_dirty
from etl.load.tally import Tally
from etl.records import (
    TransformedDocument,
)


def _article_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    return [(name, new[name]) for name in ARTICLE_COLUMNS]


def _article_row(
    doc: TransformedDocument,
    provider_id: int,
    source_id: int,
    now: datetime,
    ready: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The article row of ``doc``: the ``ARTICLE_UNDER_LOCK`` values, then
    ``ready`` (its ``ARTICLE_READY`` values, :func:`ready_values` unless given)."""
    return {
        "url": doc.article.url,
        "provider_id": provider_id,
        "source_id": source_id,
        "created_at": now,
        "updated_at": now,
        **(ready_values(doc) if ready is None else ready),
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
    existing_ids: Mapping[str, int] | None = None,
    kept: AbstractSet[int] = frozenset(),
) -> dict[str, int]:
    """Write the articles and their child rows; ``touched`` gains what they reference.
    ``prepared`` holds the rows of (some of) ``writes`` made ready before the lock;
    ``existing_ids`` the ids of those of their URLs that had an article before (read
    under the same lock: an upsert keeps an article's id), so that only the new ones
    are looked up after the upsert. ``kept``: the articles among ``replaced_ids``
    whose references the documents leave as they are (``etl.load.unchanged``): their
    topics, images and logos are not written again, nor touched."""
    prepared = prepared or Prepared()
    known = existing_ids or {}
    # Only the documents whose references changed name entities to touch and write.
    changed = [d for d in writes if known.get(d.article.url) not in kept]
    provider_ids = ensure_providers(
        conn, (d.article.provider for d in writes), from_document=True, now=now
    )
    image_ids = ensure_images(
        conn,
        [
            *(image for d in changed for _, image in d.article.images),
            *(image for d in changed for image in d.article.provider.images),
        ],
        now,
    )
    topic_ids = ensure_topics(conn, (topic for d in changed for topic in d.article.topics), now)
    touched.providers.update(provider_ids[d.article.provider.domain] for d in changed)
    touched.images.update(image_ids.values())
    touched.topics.update(topic_ids.values())

    if prepared.articles_staged():
        _upsert_staged(conn, writes, provider_ids, source_ids, now, prepared)
    else:
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
    urls = [d.article.url for d in writes]
    article_ids = {url: known[url] for url in urls if url in known}
    article_ids.update(ids_by(conn, articles, "url", [u for u in urls if u not in article_ids]))

    # Replace the child sets of articles that existed before, where their references
    # changed; their links, which are most of the rows, only where they changed
    # (_write_links).
    old_links = stored_links(conn, replaced_ids)
    clear_children(conn, [i for i in replaced_ids if i not in kept], links=False)
    _write_sets(conn, changed, article_ids, topic_ids, image_ids)
    new_targets = _write_links(conn, writes, article_ids, now, tally, prepared, old_links)
    old_targets = {row[0] for rows in old_links.values() for row in rows}
    # Every target, changed link or not: a stub shows the snippet of the linking article
    # with the latest published_at, a column of the article just written.
    mark_stubs_dirty(conn, old_targets | new_targets)
    return article_ids


def _upsert_staged(
    conn: Connection,
    writes: list[TransformedDocument],
    provider_ids: Mapping[str, int],
    source_ids: Mapping[str, int],
    now: datetime,
    prepared: Prepared,
) -> None:
    """The articles of ``writes`` from their rows staged before the lock
    (``Prepared.stage_articles``; on MariaDB ``Prepared.add``), with the values the lock
    decides joined to each slot, in URL order as the other path upserts them (MariaDB's
    copy: in the order they were staged, each batch's by URL)."""
    mapping = [
        (
            prepared.article_slot(conn, d),
            provider_ids[d.article.provider.domain],
            source_ids[d.source],
        )
        for d in writes
    ]
    if is_mysql(conn):
        _copy_staged_mariadb(conn, mapping, now)
    else:
        _copy_staged_postgresql(conn, mapping, now)


def _copy_staged_postgresql(
    conn: Connection, mapping: list[tuple[int, int, int]], now: datetime
) -> None:
    """PostgreSQL: the staged rows of the (slot, provider id, source id) ``mapping``'s
    slots, those ids joined to them through ``unnest``, in one upsert."""
    # On use, as etl.db.sql imports each dialect's module.
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    slots, providers, sources = (list(column) for column in zip(*mapping, strict=True))
    staged = articles_staging()
    given = (
        func.unnest(
            bindparam("slots", slots, type_=ARRAY(Integer)),
            bindparam("providers", providers, type_=ARRAY(Integer)),
            bindparam("sources", sources, type_=ARRAY(Integer)),
        )
        .table_valued("slot", "provider_id", "source_id")
        .render_derived()
    )
    stamp = bindparam("now", now, type_=articles.c.created_at.type)
    query = (
        select(
            staged.c.url,
            given.c.provider_id,
            given.c.source_id,
            stamp,
            stamp,
            *(staged.c[name] for name in ARTICLE_READY),
        )
        .join_from(staged, given, given.c.slot == staged.c.slot)
        .order_by(staged.c.url)
    )
    stmt = pg_insert(articles).from_select([*ARTICLE_UNDER_LOCK, *ARTICLE_READY], query)
    pairs = _article_setter(articles, stmt.excluded)
    conn.execute(stmt.on_conflict_do_update(index_elements=["url"], set_=dict(pairs)))


def _copy_staged_mariadb(
    conn: Connection, mapping: list[tuple[int, int, int]], now: datetime
) -> None:
    """MariaDB: the staged rows of the ``mapping``'s slots copied by the server, each
    slot mapped to its provider's and source's ids (``load_data.map_slots``), the
    write's time given as a literal, and an existing URL's row updated as the upsert of
    literals does."""
    load_data.map_slots(
        conn,
        articles,
        [(slot, provider) for slot, provider, _ in mapping],
        [(slot, source) for slot, _, source in mapping],
    )
    stamp: list[list[Any]] = [[now]]
    convert_values(conn, articles, ["created_at"], stamp)  # its SQL literal
    given = [("created_at", str(stamp[0][0])), ("updated_at", str(stamp[0][0]))]
    # The literal path's clause (the same shape): compiled once, not for every batch.
    tail = duplicate_key_update(
        conn, articles, [*ARTICLE_UNDER_LOCK, *ARTICLE_READY], ["url"], _article_setter
    )
    load_data.insert_staged(conn, articles, ARTICLE_STAGED, given=given, tail=tail)


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
        new = [(targets[link.url], *link_values(link)) for link in d.article.links]
        new.sort(key=itemgetter(0))
        if new == old:  # equal values store alike: a fresh load writes these same rows
            same.add(article_id)
    return same


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
    tally.kept(same)
    delete_where_in(conn, related_articles, "article_id", sorted(stored.keys() - same))
    changed = [d for d in writes if article_ids[d.article.url] not in same]
    if prepared.links_staged(conn):
        _insert_staged(conn, changed, article_ids, known, prepared)
        return set(known.values())
    # In key order, each index page is filled once instead of split at random: InnoDB's
    # clustered index and both engines' B-trees took 10-15% less time per link. The
    # articles in id order, each one's few links by target: what sorting every row of
    # the batch by both ids gives (both sorts are stable), for a fraction of its work.
    link_rows: list[list[Any]] = []
    for d in sorted(changed, key=lambda d: article_ids[d.article.url]):
        article_id = article_ids[d.article.url]
        rows = [[article_id, known[url], *rest] for url, rest in prepared.of(conn, d)]
        rows.sort(key=itemgetter(1))
        link_rows.extend(rows)
    # The keys' values for insert_checked_once's check: each article's and each target's
    # id once, not read back out of every row under the writer lock.
    linking, urls = _linked(changed)
    keys: list[list[Any]] = [[article_ids[d.article.url], None] for d in linking]
    keys.extend([None, known[url]] for url in urls)

    def write() -> None:
        bulk_insert(
            conn, related_articles, LINK_COLUMNS, link_rows, converted=len(LINK_COLUMNS) - LINK_IDS
        )

    insert_checked_once(
        conn, related_articles, LINK_COLUMNS, keys, write=write, count=len(link_rows)
    )
    return set(known.values())


def _linked(changed: list[TransformedDocument]) -> tuple[list[TransformedDocument], set[str]]:
    """Of ``changed``: the documents with links, and their targets' URLs."""
    linking = [d for d in changed if d.article.links]
    return linking, {link.url for d in linking for link in d.article.links}


def _insert_staged(
    conn: Connection,
    changed: list[TransformedDocument],
    article_ids: Mapping[str, int],
    known: Mapping[str, int],
    prepared: Prepared,
) -> None:
    """MariaDB: the staged links of ``changed``, their slots mapped to ids by the server
    (``etl.db.load_data.insert_staged``), their keys checked there too."""
    linking, urls = _linked(changed)
    count = sum(len(d.article.links) for d in linking)
    if not count:
        return
    slots = [(prepared.slot(conn, d), article_ids[d.article.url]) for d in linking]
    targets = [(prepared.target_slots[url], known[url]) for url in urls]
    load_data.map_slots(conn, related_articles, slots, targets)
    shared = len(LINK_COLUMNS) - SNIPPET  # staged once per snippet (Prepared)
    insert_checked_once(
        conn,
        related_articles,
        LINK_COLUMNS,
        [],
        write=lambda: load_data.insert_staged(conn, related_articles, LINK_COLUMNS, shared),
        count=count,
        orphan=lambda key: load_data.unparented(conn, related_articles, LINK_COLUMNS, key),
    )


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
