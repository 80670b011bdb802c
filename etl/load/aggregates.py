"""Aggregates: what providers, topics and images hold, recomputed from the rows that
make them exist.

An entity's derived columns are a pure function of the rows that reference it, and
each referencing row keeps what its file said:

- a provider's ``document_name``/``named_by_document``: ``articles.provider_name`` of
  the articles naming it (full articles' documents first, else stubs' snippets);
  ``name``/``named_by_source``: the declarations (``source_providers``) first;
- its logos: ``provider_document_images`` from ``article_provider_images`` of its
  articles, ``provider_images`` from the declarations (else the documents');
- a topic's ``name``: the smallest spelling of ``article_topics.name``, the taxonomy
  entries (``source_topics.name``) and parent references (``source_topics.parent_name``)
  of taxonomies without an entry of their own for the parent;
- an image's ``width``/``height``: the largest of ``article_images``,
  ``article_provider_images`` and the declared logos.

Writers create missing entities with ``ensure_*`` (insert only) and collect the ids
whose references they change (before and after: :class:`Touched`). A batch of
documents records them in ``pending_aggregates`` (:func:`defer`, in its transaction);
the end of the run recomputes them all once (:func:`recompute_pending`), and a
taxonomy write recomputes its own at once (:func:`recompute`). Recomputing reads
exactly those entities' references, a chunk of ids at a time, and writes only the
rows whose values change, so what a database holds after a run never depends on the
history that led to it, and a run that touches 1% of the entities recomputes 1% of
them. A touched entity that nothing references any more is deleted then: an entity
loses its last reference only by a write that touches it, so no table is ever swept
for orphans. A run stopped before its end leaves its pending rows for the next run's
end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
)

from etl.db.schema import (
    article_images,
    article_provider_images,
    article_topics,
    articles,
    images,
    pending_aggregates,
    provider_document_images,
    provider_images,
    providers,
    source_providers,
    source_topics,
    topics,
)
from etl.db.sql import delete_where_in, ids_by, in_conditions, update_by_id, upsert
from etl.records import ImageRecord, ProviderRecord


@dataclass
class Touched:
    """Entities whose referencing rows a write changed (before it and after it)."""

    providers: set[int] = field(default_factory=set)
    topics: set[int] = field(default_factory=set)
    images: set[int] = field(default_factory=set)

    def update(self, other: Touched) -> None:
        self.providers |= other.providers
        self.topics |= other.topics
        self.images |= other.images


def references(conn: Connection, article_ids: Iterable[int]) -> Touched:
    """The providers, topics and images these articles reference now."""
    ids = sorted(set(article_ids))
    found = Touched()
    for condition in in_conditions(conn, articles.c.id, ids):
        found.providers.update(
            conn.execute(
                select(articles.c.provider_id).where(condition, articles.c.provider_id.is_not(None))
            ).scalars()
        )
    for target, table, column in (
        (found.topics, article_topics, "topic_id"),
        (found.images, article_images, "image_id"),
        (found.images, article_provider_images, "image_id"),
    ):
        for condition in in_conditions(conn, table.c.article_id, ids):
            target.update(conn.execute(select(table.c[column]).where(condition)).scalars())
    return found


# --- creating entities (their derived values are recompute's) ---------------------------


def ensure_providers(
    conn: Connection, records: Iterable[ProviderRecord], *, from_document: bool, now: datetime
) -> dict[str, int]:
    """Create the providers that do not exist yet; domain -> id."""
    names: dict[str, str] = {}
    for record in records:
        names[record.domain] = min(record.name, names.get(record.domain, record.name))
    rows = [
        {
            "domain": domain,
            "name": name,
            "document_name": name,
            "named_by_document": from_document,
            "created_at": now,
            "updated_at": now,
        }
        for domain, name in sorted(names.items())
    ]
    upsert(conn, providers, rows, ["domain"])
    return ids_by(conn, providers, "domain", names)


def ensure_images(conn: Connection, records: Iterable[Any], now: datetime) -> dict[str, int]:
    """Create the images that do not exist yet (with a size recompute settles); url -> id."""
    rows: dict[str, dict[str, Any]] = {}
    for image in records:
        rows.setdefault(
            image.url,
            {"url": image.url, "width": None, "height": None, "created_at": now, "updated_at": now},
        )
    upsert(conn, images, [rows[url] for url in sorted(rows)], ["url"])
    return ids_by(conn, images, "url", rows)


def ensure_topics(conn: Connection, records: Iterable[Any], now: datetime) -> dict[str, int]:
    """Create the topics that do not exist yet; slug -> id."""
    names: dict[str, str] = {}
    for topic in records:
        names[topic.slug] = min(topic.name, names.get(topic.slug, topic.name))
    rows = [
        {"slug": slug, "name": names[slug], "created_at": now, "updated_at": now}
        for slug in sorted(names)
    ]
    upsert(conn, topics, rows, ["slug"])
    return ids_by(conn, topics, "slug", names)


# --- recomputing ------------------------------------------------------------------------


_KINDS = ("provider", "topic", "image")


def _sets(touched: Touched) -> tuple[set[int], set[int], set[int]]:
    return touched.providers, touched.topics, touched.images


def defer(conn: Connection, touched: Touched) -> None:
    """Remember the touched entities in ``pending_aggregates`` (in the caller's
    transaction), for :func:`recompute_pending` at the end of the run.

    A full load touches the busiest providers and topics in every batch: recomputing
    them once per run instead of once per batch keeps the cost proportional to what
    the run changed. A run stopped before its end leaves the rows committed with the
    writes that touched them, and the next run's end recomputes them.
    """
    rows = [
        {"kind": kind, "entity_id": entity_id}
        for kind, ids in zip(_KINDS, _sets(touched), strict=True)
        for entity_id in sorted(ids)
    ]
    upsert(conn, pending_aggregates, rows, ["kind", "entity_id"])


def has_pending(conn: Connection) -> bool:
    """Whether some entity waits for :func:`recompute_pending`."""
    query = select(pending_aggregates.c.entity_id).limit(1)
    return conn.execute(query).first() is not None


def recompute_pending(conn: Connection, now: datetime) -> None:
    """Recompute every entity in ``pending_aggregates`` and empty it. The caller holds
    the writer lock, so no write adds rows between the read and the delete."""
    touched = Touched()
    sets = dict(zip(_KINDS, _sets(touched), strict=True))
    for kind, entity_id in conn.execute(
        select(pending_aggregates.c.kind, pending_aggregates.c.entity_id)
    ):
        sets[kind].add(entity_id)
    if not (touched.providers or touched.topics or touched.images):
        return
    recompute(conn, touched, now)
    conn.execute(delete(pending_aggregates))


def recompute(conn: Connection, touched: Touched, now: datetime) -> None:
    """Delete the touched entities nothing references any more, and set the derived
    columns of the others from their references now.

    Only a write that changes an entity's references can leave it unreferenced, and
    every such write touches it: so no run has to look for orphans anywhere else.
    A provider's logos are its own references: images it showed are touched with it.
    """
    _delete_unreferenced(conn, topics, touched.topics)
    _recompute_topics(conn, touched.topics, now)
    if touched.providers:
        touched.images |= _logo_images(conn, touched.providers)
        gone = _unreferenced_ids(conn, providers, touched.providers)
        delete_where_in(conn, provider_images, "provider_id", gone)
        delete_where_in(conn, provider_document_images, "provider_id", gone)
        delete_where_in(conn, providers, "id", gone)
        remaining = touched.providers - gone
        if remaining:
            _recompute_provider_names(conn, remaining, now)
            _recompute_logos(conn, remaining, now)
            touched.images |= _logo_images(conn, remaining)
    _delete_unreferenced(conn, images, touched.images)
    _recompute_images(conn, touched.images, now)


def _unreferenced_ids(conn: Connection, table: Table, ids: set[int]) -> set[int]:
    """Of ``ids``, those of ``table``'s rows that nothing references."""
    found: set[int] = set()
    for condition in in_conditions(conn, table.c.id, ids):
        query = select(table.c.id).where(condition, _unreferenced(table.name))
        found.update(conn.execute(query).scalars())
    return found


def _delete_unreferenced(conn: Connection, table: Table, ids: set[int]) -> None:
    """Delete the rows of ``table`` with these ids that nothing references."""
    for condition in in_conditions(conn, table.c.id, ids):
        conn.execute(delete(table).where(condition, _unreferenced(table.name)))


def _current(
    conn: Connection, table: Table, ids: Iterable[int], columns: list[str]
) -> dict[int, dict[str, Any]]:
    """id -> the named columns' values, of the rows with these ids."""
    found: dict[int, dict[str, Any]] = {}
    for condition in in_conditions(conn, table.c.id, ids):
        query = select(table.c.id, *(table.c[name] for name in columns)).where(condition)
        for row in conn.execute(query):
            found[row[0]] = dict(zip(columns, row[1:], strict=True))
    return found


def _update_changed(
    conn: Connection,
    table: Table,
    current: dict[int, dict[str, Any]],
    wanted: dict[int, dict[str, Any]],
    now: datetime,
) -> None:
    """Update the rows whose values differ from ``wanted``."""
    rows = [
        {"id": entity_id, "updated_at": now, **values}
        for entity_id, values in sorted(wanted.items())
        if any(current[entity_id][k] != v for k, v in values.items())
    ]
    update_by_id(conn, table, rows)


def _recompute_topics(conn: Connection, ids: set[int], now: datetime) -> None:
    """A topic's name: the smallest spelling (by code point) anything that names it gives."""
    if not ids:
        return
    spellings: dict[int, set[str]] = defaultdict(set)
    own = source_topics.alias("own")  # the parent's own entry in the same taxonomy
    for condition in in_conditions(conn, article_topics.c.topic_id, ids):
        query = (
            select(article_topics.c.topic_id, article_topics.c.name)
            .where(condition, article_topics.c.name.is_not(None))
            .group_by(article_topics.c.topic_id, article_topics.c.name)
        )
        for topic_id, name in conn.execute(query):
            spellings[topic_id].add(name)
    for condition in in_conditions(conn, source_topics.c.topic_id, ids):
        query = select(source_topics.c.topic_id, source_topics.c.name).where(condition)
        for topic_id, name in conn.execute(query):
            spellings[topic_id].add(name)
    for condition in in_conditions(conn, source_topics.c.parent_topic_id, ids):
        query = select(source_topics.c.parent_topic_id, source_topics.c.parent_name).where(
            condition,
            source_topics.c.parent_name.is_not(None),
            ~exists().where(
                own.c.source_id == source_topics.c.source_id,
                own.c.topic_id == source_topics.c.parent_topic_id,
            ),
        )
        for topic_id, name in conn.execute(query):
            spellings[topic_id].add(name)
    current = _current(conn, topics, spellings, ["name"])
    wanted = {tid: {"name": min(spellings[tid])} for tid in current}
    _update_changed(conn, topics, current, wanted, now)


def _recompute_provider_names(conn: Connection, ids: set[int], now: datetime) -> None:
    """Documents' names (full articles first, else stubs' snippets), then declarations."""
    full: dict[int, set[str]] = defaultdict(set)
    stub: dict[int, set[str]] = defaultdict(set)
    declared: dict[int, set[str]] = defaultdict(set)
    for condition in in_conditions(conn, articles.c.provider_id, ids):
        query = (
            select(articles.c.provider_id, articles.c.provider_name, articles.c.is_stub)
            .where(condition, articles.c.provider_name.is_not(None))
            .group_by(articles.c.provider_id, articles.c.provider_name, articles.c.is_stub)
        )
        for provider_id, name, is_stub in conn.execute(query):
            (stub if is_stub else full)[provider_id].add(name)
    for condition in in_conditions(conn, source_providers.c.provider_id, ids):
        query = select(source_providers.c.provider_id, source_providers.c.name).where(condition)
        for provider_id, name in conn.execute(query):
            declared[provider_id].add(name)
    columns = ["domain", "name", "document_name", "named_by_document", "named_by_source"]
    current = _current(conn, providers, ids, columns)
    wanted: dict[int, dict[str, Any]] = {}
    for provider_id, row in current.items():
        names = full.get(provider_id) or stub.get(provider_id)
        document_name = min(names) if names else None
        wanted[provider_id] = {
            "name": min(declared[provider_id])
            if provider_id in declared
            else document_name or row["domain"],
            "document_name": document_name,
            "named_by_document": provider_id in full,
            "named_by_source": provider_id in declared,
        }
    for row in current.values():
        row["named_by_document"] = bool(row["named_by_document"])  # 0/1 on MariaDB
        row["named_by_source"] = bool(row["named_by_source"])
    _update_changed(conn, providers, current, wanted, now)


def _logo_images(conn: Connection, ids: set[int]) -> set[int]:
    found: set[int] = set()
    for table in (provider_images, provider_document_images):
        for condition in in_conditions(conn, table.c.provider_id, ids):
            found.update(conn.execute(select(table.c.image_id).where(condition)).scalars())
    return found


def _recompute_logos(conn: Connection, ids: set[int], now: datetime) -> None:
    """Rewrite the providers' logos: the documents', and the declared ones where declared."""
    delete_where_in(conn, provider_document_images, "provider_id", ids)
    for condition in in_conditions(conn, articles.c.provider_id, ids):
        logos = (
            select(
                articles.c.provider_id,
                article_provider_images.c.image_id,
                func.min(article_provider_images.c.position),
            )
            .join(articles, articles.c.id == article_provider_images.c.article_id)
            .where(condition)
            .group_by(articles.c.provider_id, article_provider_images.c.image_id)
        )
        conn.execute(
            insert(provider_document_images).from_select(
                ["provider_id", "image_id", "position"], logos
            )
        )
    logos_by: dict[int, dict[str, int]] = {}  # declared: provider -> URL -> smallest position
    reported: list[ImageRecord] = []
    for condition in in_conditions(conn, source_providers.c.provider_id, ids):
        query = select(source_providers.c.provider_id, source_providers.c.images).where(condition)
        for provider_id, declared in conn.execute(query):
            mine = logos_by.setdefault(provider_id, {})
            for position, image in enumerate(declared or []):
                reported.append(ImageRecord(image["url"], image.get("width"), image.get("height")))
                mine[image["url"]] = min(position, mine.get(image["url"], position))
    delete_where_in(conn, provider_images, "provider_id", ids)
    image_ids = ensure_images(conn, reported, now) if reported else {}
    rows = [
        {"provider_id": pid, "image_id": image_ids[url], "position": position}
        for pid, mine in sorted(logos_by.items())
        for url, position in sorted(mine.items())
    ]
    if rows:
        conn.execute(insert(provider_images), rows)
    undeclared = sorted(ids - logos_by.keys())
    for condition in in_conditions(conn, provider_document_images.c.provider_id, undeclared):
        conn.execute(
            insert(provider_images).from_select(
                ["provider_id", "image_id", "position"],
                select(
                    provider_document_images.c.provider_id,
                    provider_document_images.c.image_id,
                    provider_document_images.c.position,
                ).where(condition),
            )
        )


def _recompute_images(conn: Connection, ids: set[int], now: datetime) -> None:
    """An image's size: the largest any document or declaration that shows it reports."""
    if not ids:
        return
    current = _current(conn, images, ids, ["url", "width", "height"])
    sizes: dict[int, list[int | None]] = {image_id: [None, None] for image_id in current}
    by_url = {row["url"]: image_id for image_id, row in current.items()}

    def report(image_id: int, width: int | None, height: int | None) -> None:
        size = sizes[image_id]
        for index, value in enumerate((width, height)):
            known = size[index]
            if value is not None and (known is None or value > known):
                size[index] = value

    for table in (article_images, article_provider_images):
        for condition in in_conditions(conn, table.c.image_id, current):
            query = (
                select(table.c.image_id, func.max(table.c.width), func.max(table.c.height))
                .where(condition)
                .group_by(table.c.image_id)
            )
            for image_id, width, height in conn.execute(query):
                report(image_id, width, height)
    for image in _declared_logos_of(conn, set(current)):
        if image.url in by_url:
            report(by_url[image.url], image.width, image.height)
    wanted = {image_id: {"width": w, "height": h} for image_id, (w, h) in sizes.items()}
    _update_changed(conn, images, current, wanted, now)


def _declared_logos_of(conn: Connection, image_ids: set[int]) -> list[ImageRecord]:
    """The logos declarations give of the providers that show these images as declared logos."""
    declaring: set[int] = set()
    for condition in in_conditions(conn, provider_images.c.image_id, image_ids):
        declaring.update(
            conn.execute(
                select(provider_images.c.provider_id)
                .join(providers, providers.c.id == provider_images.c.provider_id)
                .where(condition, providers.c.named_by_source)
            ).scalars()
        )
    found: list[ImageRecord] = []
    for condition in in_conditions(conn, source_providers.c.provider_id, declaring):
        for (declared,) in conn.execute(select(source_providers.c.images).where(condition)):
            found.extend(
                ImageRecord(image["url"], image.get("width"), image.get("height"))
                for image in declared or []
            )
    return found


def _unreferenced(kind: str) -> Any:
    """The condition that an entity of ``kind`` is referenced by nothing."""
    conditions = {
        "topics": and_(
            ~exists().where(article_topics.c.topic_id == topics.c.id),
            ~exists().where(source_topics.c.topic_id == topics.c.id),
            ~exists().where(source_topics.c.parent_topic_id == topics.c.id),
        ),
        "providers": and_(
            ~exists().where(articles.c.provider_id == providers.c.id),
            ~exists().where(source_providers.c.provider_id == providers.c.id),
        ),
        "images": and_(
            ~exists().where(article_images.c.image_id == images.c.id),
            ~exists().where(article_provider_images.c.image_id == images.c.id),
            ~exists().where(provider_images.c.image_id == images.c.id),
            ~exists().where(provider_document_images.c.image_id == images.c.id),
        ),
    }
    return conditions[kind]
