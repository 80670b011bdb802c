"""Load: normalized news records -> the news tables, one batch at a time.

Owns what the news entities mean in SQL: articles, providers, topics, images,
their child rows, stubs, and the clean-up of entities nothing references. Every
statement goes through the per-dialect toolkit in ``etl.db.sql``; the caller holds
the writer transaction.

Each article row keeps what its file says of its provider, topics, images and logos;
the derived columns of those entities are recomputed from such rows, for exactly the
entities a write touched, by ``etl.load.aggregates``.

Which files describe which article (``source_files``) is the ledger's: :func:`settle`
asks it and reports to it through the ``etl.records.LoadLedger`` the runner passes in.

Stubs are maintained lazily: a batch marks the stubs whose incoming links changed
(``fingerprint`` set to NULL) and :func:`refresh_stubs` rebuilds or deletes them
from the links that point at them, so their content does not depend on load order.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    null,
    select,
    update,
)
from sqlalchemy.sql.expression import ColumnElement

from etl.db.integrity import insert_checked_once
from etl.db.schema import (
    article_images,
    article_provider_images,
    article_topics,
    articles,
    images,
    provider_document_images,
    provider_images,
    providers,
    related_articles,
    topics,
)
from etl.db.sql import bulk_insert, delete_where_in, ids_by, in_conditions, upsert
from etl.load.aggregates import (
    Touched,
    defer,
    ensure_images,
    ensure_providers,
    ensure_topics,
    references,
    unreferenced,
)
from etl.load.tally import Tally
from etl.records import (
    Candidate,
    FileKey,
    LoadLedger,
    ProviderRecord,
    TransformedDocument,
    fingerprint,
    winner_key,
)

ARTICLE_COLUMNS = (
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
    "provider_id",
    "provider_name",
    "featured_content",
    "secured",
    "extra",
    "source_id",
    "source_path",
    "fingerprint",
    "updated_at",
)


def _article_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    return [(name, new[name]) for name in ARTICLE_COLUMNS]


@dataclass(frozen=True, slots=True)
class _Existing:
    id: int
    url: str
    is_stub: bool
    source_path: str | None  # NULL: a stub or a tombstone, which no file describes
    fingerprint: str | None


_EXISTING_COLUMNS = (
    articles.c.id,
    articles.c.url,
    articles.c.is_stub,
    articles.c.source_path,
    articles.c.fingerprint,
)


def _existing_articles(
    conn: Connection, urls: Iterable[str], ids: Iterable[int] = ()
) -> dict[str, _Existing]:
    """The articles at ``urls`` and with ``ids``, by URL."""
    found: dict[str, _Existing] = {}
    for column, values in ((articles.c.url, urls), (articles.c.id, ids)):
        for condition in in_conditions(conn, column, values):
            for row in conn.execute(select(*_EXISTING_COLUMNS).where(condition)):
                found[row.url] = _Existing(
                    row.id, row.url, bool(row.is_stub), row.source_path, row.fingerprint
                )
    return found


def _article_row(
    doc: TransformedDocument, provider_id: int, source_id: int, now: datetime
) -> dict[str, Any]:
    a = doc.article
    return {
        "url": a.url,
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
        "provider_id": provider_id,
        "provider_name": a.provider.name,
        "featured_content": a.featured_content,
        "secured": a.secured,
        "extra": a.extra,
        "source_id": source_id,
        "source_path": doc.source_key,
        "fingerprint": doc.fingerprint,
        "created_at": now,
        "updated_at": now,
    }


# Reads a recorded file again (it wins a URL whose article does not hold it yet):
# its document, or None when it cannot be had (gone, unreadable, rejected).
Reader = Callable[[Candidate], TransformedDocument | None]


@dataclass
class _Plan:
    writes: list[TransformedDocument] = field(default_factory=list)
    to_read: list[Candidate] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)  # full articles no file describes now
    existing: dict[str, _Existing] = field(default_factory=dict)


def settle(
    conn: Connection,
    docs: Sequence[TransformedDocument],
    *,
    source_ids: Mapping[str, int],
    now: datetime,
    run_id: int | None,
    ledger: LoadLedger,
    reader: Reader,
    tally: Tally,
    affected: Iterable[int] = (),
) -> None:
    """Make every article these documents (or the files behind ``affected`` article ids)
    touch equal to what the files that describe its URL now say. The caller owns the
    transaction (and holds the writer lock) and ``tally``, told of each change first;
    ``ledger`` says which files describe what, and records what the files say now.

    Of all files that describe a URL (``source_files``, with this batch's documents
    in place of what their rows said before), the winner is the one with the latest
    date, then the greatest (source name, path): the article holds exactly its
    document. A winner whose content the article does not hold yet and that is not
    in the batch is read again through ``reader``. A URL no file describes any more
    loses its article's content: it becomes a tombstone (``refresh_stubs`` turns it
    into a stub if links point at it). So the result never depends on which files
    came in which batch or run: it is a function of the files that exist.
    """
    by_file = {FileKey(source_ids[d.source], d.source_key): d for d in docs}
    # A winner may be read from a source that is not in this run: its id comes along.
    source_ids = dict(source_ids)
    reread: dict[FileKey, TransformedDocument] = {}
    excluded: set[FileKey] = set()
    affected_ids = set(affected)
    while True:
        plan = _elect(conn, by_file, ledger, affected_ids, excluded)
        if not plan.to_read:
            break
        for candidate in plan.to_read:
            doc = reader(candidate)
            if doc is None or doc.source != candidate.source:
                excluded.add(candidate.file)
            else:
                source_ids[candidate.source] = candidate.source_id
                by_file[candidate.file] = doc
                if doc.content_hash != candidate.content_hash:
                    reread[candidate.file] = doc  # changed since recorded

    existing = plan.existing
    replaced = [existing[d.article.url].id for d in plan.writes if d.article.url in existing]
    tally.remember(conn, [*replaced, *plan.orphaned])
    # What the rewritten articles referenced: those entities are recomputed below.
    touched = references(conn, [*replaced, *plan.orphaned])
    replaced_full = [
        item.id
        for d in plan.writes
        if (item := existing.get(d.article.url)) is not None and item.source_path is not None
    ]
    ids = {url: item.id for url, item in existing.items()}
    if plan.writes:
        written = _write_articles(conn, plan.writes, replaced_full, source_ids, now, tally, touched)
        tally.created(i for url, i in written.items() if url not in existing)
        ids.update(written)
    _make_tombstones(conn, plan.orphaned, now)
    defer(conn, touched)
    recorded = [*docs, *reread.values()]
    missing = {d.article.url for d in recorded} - ids.keys()
    if missing:  # URLs of batch files that lost to files whose articles exist
        ids.update(ids_by(conn, articles, "url", missing))
    ledger.record_files(conn, recorded, source_ids, ids, now, run_id)
    tally.recorded((source_ids[d.source], d.source_key, d.article.url) for d in recorded)


def _elect(
    conn: Connection,
    by_file: Mapping[FileKey, TransformedDocument],
    ledger: LoadLedger,
    affected: set[int],
    excluded: set[FileKey],
) -> _Plan:
    docs = list(by_file.values())
    # What the batch's files described before (a file whose URL changed no longer
    # describes its old URL): their rows' article ids.
    previous: set[int] = set(affected)
    previous.update(ledger.described_articles(conn, by_file))
    existing = _existing_articles(conn, {d.article.url for d in docs}, previous)
    url_of = {item.id: url for url, item in existing.items()}
    entries: dict[str, list[TransformedDocument | Candidate]] = defaultdict(list)
    for d in docs:
        entries[d.article.url].append(d)
    for candidate in ledger.recorded_files(conn, url_of):
        if candidate.file in by_file:
            continue  # the batch's document says what the file says now
        if candidate.file in excluded:
            continue
        entries[url_of[candidate.article_id]].append(candidate)

    plan = _Plan(existing=existing)
    for url in sorted(entries.keys() | existing.keys()):
        current = existing.get(url)
        group = entries.get(url)
        if not group:
            if current is not None and current.source_path is not None:
                plan.orphaned.append(current.id)
            continue
        winner = max(group, key=lambda item: item.winner_key)
        if isinstance(winner, Candidate):
            expected = fingerprint(winner.source, winner.path, winner.content_hash)
            if current is None or current.fingerprint != expected:
                plan.to_read.append(winner)
        elif current is None or current.fingerprint != winner.fingerprint:
            plan.writes.append(winner)
    return plan


DOCUMENT_ONLY_COLUMNS = (
    "original_url",
    "amp_web_url",
    "cdn_amp_web_url",
    "body",
    "category",
    "type",
    "quality",
    "heat",
    "is_published",
    "featured_content",
    "secured",
    "extra",
    "provider_name",
)

# Each article's child rows: replaced when its document is, gone with its content.
CHILD_TABLES = (article_topics, article_images, article_provider_images, related_articles)


def _make_tombstones(conn: Connection, ids: list[int], now: datetime) -> None:
    """Articles no file describes any more keep no content and no child rows; the
    stub refresh makes each a stub if links point at it, else leaves it removed."""
    if not ids:
        return
    targets: set[int] = set()
    for condition in in_conditions(conn, related_articles.c.article_id, ids):
        targets.update(
            conn.execute(select(related_articles.c.related_article_id).where(condition)).scalars()
        )
    for table in CHILD_TABLES:
        delete_where_in(conn, table, "article_id", ids)
    for condition in in_conditions(conn, articles.c.id, ids):
        conn.execute(
            update(articles)
            .where(condition)
            .values(
                # What only a document says goes: a stub made of the row later holds just
                # what a snippet says, as a stub made afresh would.
                **dict.fromkeys(DOCUMENT_ONLY_COLUMNS, null()),
                is_removed=True,
                is_stub=False,
                source_id=None,
                source_path=None,
                provider_id=None,
                fingerprint=None,
                updated_at=now,
            )
        )
    _mark_stubs_dirty(conn, targets)


def _write_articles(
    conn: Connection,
    writes: list[TransformedDocument],
    replaced_ids: list[int],
    source_ids: Mapping[str, int],
    now: datetime,
    tally: Tally,
    touched: Touched,
) -> dict[str, int]:
    """Write the articles and their child rows; ``touched`` gains what they reference."""
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
        _article_row(d, provider_ids[d.article.provider.domain], source_ids[d.source], now)
        for d in writes
    ]
    rows.sort(key=lambda row: row["url"])
    upsert(conn, articles, rows, ["url"], _article_setter, skip_unchanged=False)
    article_ids = ids_by(conn, articles, "url", (row["url"] for row in rows))

    # Replace the child sets of articles that existed before.
    old_targets: set[int] = set()
    for condition in in_conditions(conn, related_articles.c.article_id, replaced_ids):
        old_targets.update(
            conn.execute(select(related_articles.c.related_article_id).where(condition)).scalars()
        )
    for table in CHILD_TABLES:
        delete_where_in(conn, table, "article_id", replaced_ids)

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

    new_targets = _write_links(conn, writes, article_ids, now, tally)
    _mark_stubs_dirty(conn, old_targets | new_targets)
    return article_ids


def _write_links(
    conn: Connection,
    writes: list[TransformedDocument],
    article_ids: dict[str, int],
    now: datetime,
    tally: Tally,
) -> set[int]:
    tally.linked((article_ids[d.article.url], len(d.article.links)) for d in writes)
    target_urls = {link.url for d in writes for link in d.article.links}
    if not target_urls:
        return set()
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

    link_rows = []
    for d in writes:
        source_id = article_ids[d.article.url]
        for link in d.article.links:
            provider = link.provider
            link_rows.append(
                [
                    source_id,
                    known[link.url],
                    link.position,
                    link.title,
                    link.excerpt,
                    link.published_at,
                    link.web_url,
                    provider.domain if provider else None,
                    provider.name if provider else None,
                ]
            )
    # In key order, each index page is filled once instead of split at random: InnoDB's
    # clustered index and both engines' B-trees took 10-15% less time per link.
    link_rows.sort(key=lambda row: (row[0], row[1]))
    insert_checked_once(conn, related_articles, LINK_COLUMNS, link_rows, owner="article_id")
    return set(known.values())


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


def _mark_stubs_dirty(conn: Connection, article_ids: set[int]) -> None:
    """Stubs and tombstones (rows no file describes) whose incoming links changed."""
    for condition in in_conditions(conn, articles.c.id, article_ids):
        conn.execute(
            update(articles)
            .where(
                condition,
                articles.c.source_path.is_(None),
                articles.c.fingerprint.is_not(None),
            )
            .values(fingerprint=None)
        )


STUB_COLUMNS = (
    "title",
    "excerpt",
    "published_at",
    "web_url",
    "provider_id",
    "provider_name",
    "is_stub",
    "is_removed",
    "fingerprint",
    "updated_at",
)

# The fingerprint of a settled tombstone: an article no file describes and no link
# points at, kept (``is_removed``) so that mirrors learn it is gone.
TOMBSTONE = "tombstone"

STUB_BLOCK = 2000  # stubs rebuilt per round: bounds the snippets held in memory


def refresh_stubs(conn: Connection, now: datetime, tally: Tally) -> None:
    """Settle the rows no file describes whose incoming links changed (fingerprint NULL).

    Linked: a stub showing the snippet of the referencing article with the latest
    ``published_at`` (ties: the greatest URL). Not linked: a stub is deleted; a
    former article stays as a tombstone (``is_removed``, no content of its own).
    Done a block at a time, so memory does not grow with their number.
    """
    dirty = sorted(
        conn.execute(
            select(articles.c.id).where(
                articles.c.source_path.is_(None), articles.c.fingerprint.is_(None)
            )
        ).scalars()
    )
    for start in range(0, len(dirty), STUB_BLOCK):
        block = dirty[start : start + STUB_BLOCK]
        tally.remember(conn, block)
        touched = references(conn, block)  # the providers the stubs named before
        touched.providers.update(_refresh_stub_block(conn, block, now))
        defer(conn, touched)


def _chosen_snippets(conn: Connection, dirty: list[int]) -> dict[int, Any]:
    """stub id -> the snippet it shows: the linking article's with the latest date."""
    source = articles.alias("source")
    chosen: dict[int, Any] = {}
    for condition in in_conditions(conn, related_articles.c.related_article_id, dirty):
        query = (
            select(
                related_articles.c.related_article_id,
                related_articles.c.snippet_title,
                related_articles.c.snippet_excerpt,
                related_articles.c.snippet_published_at,
                related_articles.c.snippet_web_url,
                related_articles.c.snippet_provider_domain,
                related_articles.c.snippet_provider_name,
                source.c.published_at,
                source.c.url,
            )
            .join(source, source.c.id == related_articles.c.article_id)
            .where(condition)
        )
        for row in conn.execute(query):
            key = winner_key(row.published_at, row.url)
            best = chosen.get(row.related_article_id)
            if best is None or key > winner_key(best.published_at, best.url):
                chosen[row.related_article_id] = row
    return chosen


def _refresh_stub_block(conn: Connection, dirty: list[int], now: datetime) -> set[int]:
    """Rebuild a block of stubs; the providers they name now."""
    chosen = _chosen_snippets(conn, dirty)
    unlinked = sorted(set(dirty) - chosen.keys())
    tombstones: list[int] = []
    for condition in in_conditions(conn, articles.c.id, unlinked):
        tombstones.extend(
            conn.execute(select(articles.c.id).where(condition, articles.c.is_removed)).scalars()
        )
    delete_where_in(conn, articles, "id", sorted(set(unlinked) - set(tombstones)))
    for condition in in_conditions(conn, articles.c.id, tombstones):
        conn.execute(update(articles).where(condition).values(fingerprint=TOMBSTONE))

    provider_ids = ensure_providers(
        conn,
        (
            ProviderRecord(
                row.snippet_provider_domain,
                row.snippet_provider_name or row.snippet_provider_domain,
            )
            for row in chosen.values()
            if row.snippet_provider_domain
        ),
        from_document=False,
        now=now,
    )
    updates = []
    for stub_id, row in sorted(chosen.items()):
        values = {
            "title": row.snippet_title,
            "excerpt": row.snippet_excerpt,
            "published_at": row.snippet_published_at,
            "web_url": row.snippet_web_url,
            "provider": row.snippet_provider_domain,
        }
        digest = hashlib.sha256(
            json.dumps(values, default=str, sort_keys=True).encode()
        ).hexdigest()
        values["provider_id"] = provider_ids.get(values.pop("provider"))
        values["provider_name"] = (
            row.snippet_provider_name or row.snippet_provider_domain
            if values["provider_id"] is not None
            else None
        )
        updates.append(
            {
                "id": stub_id,
                **values,
                "is_stub": True,
                "is_removed": False,
                "fingerprint": digest,
                "updated_at": now,
            }
        )
    if updates:
        # executemany UPDATE: bound names must differ from the column names.
        stmt = (
            update(articles)
            .where(articles.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in STUB_COLUMNS})
        )
        conn.execute(stmt, [{f"b_{key}": value for key, value in row.items()} for row in updates])
    return set(provider_ids.values())


def delete_orphans(conn: Connection) -> dict[str, int]:
    """Delete providers, topics and images that no row references any more.

    What a source's taxonomy declares (source_topics, source_providers) is referenced:
    it stays while declared, with or without articles.
    """
    deleted = {}
    deleted["topics"] = conn.execute(delete(topics).where(unreferenced("topics"))).rowcount
    orphan_providers = list(
        conn.execute(select(providers.c.id).where(unreferenced("providers"))).scalars()
    )
    delete_where_in(conn, provider_images, "provider_id", orphan_providers)
    delete_where_in(conn, provider_document_images, "provider_id", orphan_providers)
    delete_where_in(conn, providers, "id", orphan_providers)
    deleted["providers"] = len(orphan_providers)
    deleted["images"] = conn.execute(delete(images).where(unreferenced("images"))).rowcount
    return deleted
