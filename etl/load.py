"""Load: normalized news records -> the news tables, one batch at a time.

Owns what the news entities mean in SQL: articles, providers, topics, images,
their child rows, stubs, and the clean-up of entities nothing references. Every
statement goes through the per-dialect toolkit in ``etl.sql``; the caller holds
the writer transaction.

Stubs are maintained lazily: a batch marks the stubs whose incoming links changed
(``fingerprint`` set to NULL) and :func:`refresh_stubs` rebuilds or deletes them
from the links that point at them, so their content does not depend on load order.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.sql.expression import ColumnElement

from etl.ledger import record_sources
from etl.records import Counts, FileStamp, ProviderRecord, TransformedDocument, winner_key
from etl.schema import (
    article_images,
    article_topics,
    articles,
    images,
    provider_images,
    providers,
    related_articles,
    topics,
)
from etl.sql import bulk_insert, delete_where_in, ids_by, in_conditions, upsert


def _document_provider_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    # A document's name replaces a snippet's; among documents the smallest name wins,
    # which keeps the result independent of load order.
    return [
        (
            "name",
            case(
                (or_(~table.c.named_by_document, new.name < table.c.name), new.name),
                else_=table.c.name,
            ),
        ),
        ("named_by_document", new.named_by_document),
    ]


def _snippet_provider_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    return [
        (
            "name",
            case(
                (and_(~table.c.named_by_document, new.name < table.c.name), new.name),
                else_=table.c.name,
            ),
        )
    ]


def _image_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    # The largest size any document reports for an image URL.
    def larger(column: str) -> ColumnElement[Any]:
        old = table.c[column]
        return case(
            (or_(old.is_(None), new[column] > old), new[column]),
            else_=old,
        )

    return [("width", larger("width")), ("height", larger("height"))]


def _topic_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    return [("name", case((new.name < table.c.name, new.name), else_=table.c.name))]


def _position_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    return [
        ("position", case((new.position < table.c.position, new.position), else_=table.c.position))
    ]


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
    "featured_content",
    "secured",
    "extra",
    "source_path",
    "fingerprint",
    "updated_at",
)


def _article_setter(table: Table, new: Any) -> list[tuple[str, ColumnElement[Any]]]:
    return [(name, new[name]) for name in ARTICLE_COLUMNS]


def ensure_providers(
    conn: Connection, records: Iterable[ProviderRecord], *, from_document: bool, now: datetime
) -> dict[str, int]:
    """Upsert providers (and, for documents, their logo images); domain -> id."""
    records = list(records)
    by_domain: dict[str, ProviderRecord] = {}
    for record in records:
        current = by_domain.get(record.domain)
        if current is None or record.name < current.name:
            by_domain[record.domain] = record
    rows = [
        {
            "domain": domain,
            "name": record.name,
            "named_by_document": from_document,
            "created_at": now,
            "updated_at": now,
        }
        for domain, record in sorted(by_domain.items())
    ]
    setter = _document_provider_setter if from_document else _snippet_provider_setter
    upsert(conn, providers, rows, ["domain"], setter)
    ids = ids_by(conn, providers, "domain", by_domain)
    if from_document:
        logos = [
            (ids[record.domain], position, image)
            for record in records
            for position, image in enumerate(record.images)
        ]
        image_ids = ensure_images(conn, [image for _, _, image in logos], now)
        upsert(
            conn,
            provider_images,
            _dedupe(
                {"provider_id": pid, "image_id": image_ids[image.url], "position": position}
                for pid, position, image in logos
            ),
            ["provider_id", "image_id"],
            _position_setter,
        )
    return ids


def ensure_images(conn: Connection, records: Iterable[Any], now: datetime) -> dict[str, int]:
    best: dict[str, dict[str, Any]] = {}
    for image in records:
        row = best.setdefault(
            image.url,
            {"url": image.url, "width": None, "height": None, "created_at": now, "updated_at": now},
        )
        for column in ("width", "height"):
            value = getattr(image, column)
            if value is not None and (row[column] is None or value > row[column]):
                row[column] = value
    upsert(conn, images, [best[url] for url in sorted(best)], ["url"], _image_setter)
    return ids_by(conn, images, "url", best)


def ensure_topics(conn: Connection, records: Iterable[Any], now: datetime) -> dict[str, int]:
    names: dict[str, str] = {}
    for topic in records:
        if topic.slug not in names or topic.name < names[topic.slug]:
            names[topic.slug] = topic.name
    rows = [
        {"slug": slug, "name": names[slug], "created_at": now, "updated_at": now}
        for slug in sorted(names)
    ]
    upsert(conn, topics, rows, ["slug"], _topic_setter)
    return ids_by(conn, topics, "slug", names)


def _dedupe(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Documents in one batch may propose one provider logo twice: keep the smallest position."""
    best: dict[tuple[int, int], dict[str, Any]] = {}
    for row in rows:
        key = (row["provider_id"], row["image_id"])
        if key not in best or row["position"] < best[key]["position"]:
            best[key] = row
    return [best[key] for key in sorted(best)]


@dataclass(frozen=True, slots=True)
class _Existing:
    id: int
    is_stub: bool
    source_path: str | None
    published_at: datetime | None
    fingerprint: str | None


def _existing_articles(conn: Connection, urls: Iterable[str]) -> dict[str, _Existing]:
    found: dict[str, _Existing] = {}
    columns = (
        articles.c.url,
        articles.c.id,
        articles.c.is_stub,
        articles.c.source_path,
        articles.c.published_at,
        articles.c.fingerprint,
    )
    for condition in in_conditions(conn, articles.c.url, urls):
        for row in conn.execute(select(*columns).where(condition)):
            found[row.url] = _Existing(
                row.id, bool(row.is_stub), row.source_path, row.published_at, row.fingerprint
            )
    return found


def _article_row(doc: TransformedDocument, provider_id: int, now: datetime) -> dict[str, Any]:
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
        "featured_content": a.featured_content,
        "secured": a.secured,
        "extra": a.extra,
        "source_path": doc.source_key,
        "fingerprint": doc.fingerprint,
        "created_at": now,
        "updated_at": now,
    }


def load_batch(
    conn: Connection,
    docs: Sequence[TransformedDocument],
    now: datetime,
    run_id: int | None,
    stamps: Mapping[str, FileStamp | None] | None = None,
) -> Counts:
    """Write one batch of documents. The caller owns the transaction.

    ``stamps`` (source key -> size and mtime) are recorded with each source file,
    for the next run's quick check.
    """
    counts = Counts()
    groups: dict[str, list[TransformedDocument]] = defaultdict(list)
    for doc in docs:
        groups[doc.article.url].append(doc)
    existing = _existing_articles(conn, groups)

    writes: list[TransformedDocument] = []
    replaced_ids: list[int] = []  # full articles rewritten: their child rows are replaced
    for url, group in groups.items():
        winner = max(group, key=lambda d: d.winner_key)
        counts.duplicates += len(group) - 1
        current = existing.get(url)
        if current is not None and not current.is_stub:
            if current.fingerprint == winner.fingerprint:
                counts.articles_unchanged += 1
                continue
            if current.source_path != winner.source_key and (
                winner_key(current.published_at, current.source_path or "") > winner.winner_key
            ):
                counts.duplicates += 1  # loses to the file already loaded: a source only
                continue
            counts.articles_updated += 1
            replaced_ids.append(current.id)
        else:
            # New, or a stub becoming a full article: stubs have no topics, images or
            # links, so there is nothing to replace (and no query to run for it).
            counts.articles_inserted += 1
        writes.append(winner)

    ids = {url: item.id for url, item in existing.items()}
    if writes:
        ids.update(_write_articles(conn, writes, replaced_ids, now, counts))
    record_sources(conn, docs, ids, now, run_id, stamps or {})
    return counts


def _write_articles(
    conn: Connection,
    writes: list[TransformedDocument],
    replaced_ids: list[int],
    now: datetime,
    counts: Counts,
) -> dict[str, int]:
    provider_ids = ensure_providers(
        conn, (d.article.provider for d in writes), from_document=True, now=now
    )
    image_ids = ensure_images(conn, (image for d in writes for _, image in d.article.images), now)
    topic_ids = ensure_topics(conn, (topic for d in writes for topic in d.article.topics), now)

    rows = [_article_row(d, provider_ids[d.article.provider.domain], now) for d in writes]
    rows.sort(key=lambda row: row["url"])
    upsert(conn, articles, rows, ["url"], _article_setter, skip_unchanged=False)
    article_ids = ids_by(conn, articles, "url", (row["url"] for row in rows))

    # Replace the child sets of articles that existed before.
    old_targets: set[int] = set()
    for condition in in_conditions(conn, related_articles.c.article_id, replaced_ids):
        old_targets.update(
            conn.execute(select(related_articles.c.related_article_id).where(condition)).scalars()
        )
    for table in (article_topics, article_images, related_articles):
        delete_where_in(conn, table, "article_id", replaced_ids)

    topic_rows = [
        [article_ids[d.article.url], topic_ids[t.slug], t.position]
        for d in writes
        for t in d.article.topics
    ]
    bulk_insert(conn, article_topics, ("article_id", "topic_id", "position"), topic_rows)
    image_rows = [
        [article_ids[d.article.url], image_ids[image.url], position, image.title, image.is_cached]
        for d in writes
        for position, image in d.article.images
    ]
    bulk_insert(conn, article_images, IMAGE_LINK_COLUMNS, image_rows)

    new_targets = _write_links(conn, writes, article_ids, now, counts)
    _mark_stubs_dirty(conn, old_targets | new_targets)
    return article_ids


def _write_links(
    conn: Connection,
    writes: list[TransformedDocument],
    article_ids: dict[str, int],
    now: datetime,
    counts: Counts,
) -> set[int]:
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
        known.update(ids_by(conn, articles, "url", missing))
        counts.stubs_created += len(missing)

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
    bulk_insert(conn, related_articles, LINK_COLUMNS, link_rows)
    counts.links_written += len(link_rows)
    return set(known.values())


IMAGE_LINK_COLUMNS = ("article_id", "image_id", "position", "title", "is_cached")

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
    for condition in in_conditions(conn, articles.c.id, article_ids):
        conn.execute(
            update(articles)
            .where(condition, articles.c.is_stub, articles.c.fingerprint.is_not(None))
            .values(fingerprint=None)
        )


STUB_COLUMNS = (
    "title",
    "excerpt",
    "published_at",
    "web_url",
    "provider_id",
    "fingerprint",
    "updated_at",
)

STUB_BLOCK = 2000  # stubs rebuilt per round: bounds the snippets held in memory


def refresh_stubs(conn: Connection, now: datetime) -> int:
    """Rebuild dirty stubs from the snippets that point at them; delete unreferenced ones.

    A stub shows the snippet of the referencing article with the latest
    ``published_at`` (ties: the greatest URL). Returns the number of stubs deleted.
    Stubs are rebuilt a block at a time, so memory does not grow with their number.
    """
    dirty = sorted(
        conn.execute(
            select(articles.c.id).where(articles.c.is_stub, articles.c.fingerprint.is_(None))
        ).scalars()
    )
    deleted = 0
    for start in range(0, len(dirty), STUB_BLOCK):
        deleted += _refresh_stub_block(conn, dirty[start : start + STUB_BLOCK], now)
    return deleted


def _refresh_stub_block(conn: Connection, dirty: list[int], now: datetime) -> int:
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

    orphans = sorted(set(dirty) - chosen.keys())
    delete_where_in(conn, articles, "id", orphans)

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
            "provider_id": provider_ids.get(row.snippet_provider_domain),
        }
        digest = hashlib.sha256(
            json.dumps(values, default=str, sort_keys=True).encode()
        ).hexdigest()
        updates.append({"id": stub_id, **values, "fingerprint": digest, "updated_at": now})
    if updates:
        # executemany UPDATE: bound names must differ from the column names.
        stmt = (
            update(articles)
            .where(articles.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in STUB_COLUMNS})
        )
        conn.execute(stmt, [{f"b_{key}": value for key, value in row.items()} for row in updates])
    return len(orphans)


def delete_orphans(conn: Connection) -> dict[str, int]:
    """Delete providers, topics and images that no row references any more."""
    deleted = {}
    conditions = {
        "topics": ~exists().where(article_topics.c.topic_id == topics.c.id),
        "providers": ~exists().where(articles.c.provider_id == providers.c.id),
    }
    deleted["topics"] = conn.execute(delete(topics).where(conditions["topics"])).rowcount
    orphan_providers = list(
        conn.execute(select(providers.c.id).where(conditions["providers"])).scalars()
    )
    delete_where_in(conn, provider_images, "provider_id", orphan_providers)
    delete_where_in(conn, providers, "id", orphan_providers)
    deleted["providers"] = len(orphan_providers)
    deleted["images"] = conn.execute(
        delete(images).where(
            ~exists().where(article_images.c.image_id == images.c.id),
            ~exists().where(provider_images.c.image_id == images.c.id),
        )
    ).rowcount
    return deleted
