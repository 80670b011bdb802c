"""A site's taxonomy in the database: ``source_topics``, ``source_providers`` and the
names and logos of the providers they declare.

:func:`refresh` replaces a source's rows by what ``etl.taxonomy`` read from its files;
:func:`recompute_providers` names every provider a declaration was added to or
withdrawn from again. The caller holds the writer transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from etl.load import ensure_images, ensure_topics
from etl.records import ImageRecord, Taxonomy
from etl.schema import (
    provider_document_images,
    provider_images,
    providers,
    source_providers,
    source_topics,
)
from etl.sql import delete_where_in, ids_by, upsert


def refresh(conn: Connection, source_id: int, taxonomy: Taxonomy, now: datetime) -> None:
    """Replace a source's taxonomy rows by ``taxonomy`` and name again every provider
    it declared before or declares now. The caller holds the writer transaction."""

    before = set(
        conn.execute(
            select(source_providers.c.provider_id).where(source_providers.c.source_id == source_id)
        ).scalars()
    )
    conn.execute(delete(source_topics).where(source_topics.c.source_id == source_id))
    conn.execute(delete(source_providers).where(source_providers.c.source_id == source_id))
    # A parent's spelling names the topic only when it has no entry of its own.
    defined = {entry.topic.slug for entry in taxonomy.topics}
    topic_ids = ensure_topics(
        conn,
        [entry.topic for entry in taxonomy.topics]
        + [
            entry.parent
            for entry in taxonomy.topics
            if entry.parent and entry.parent.slug not in defined
        ],
        now,
    )
    if taxonomy.topics:
        conn.execute(
            insert(source_topics),
            [
                {
                    "source_id": source_id,
                    "topic_id": topic_ids[entry.topic.slug],
                    "parent_topic_id": topic_ids[entry.parent.slug] if entry.parent else None,
                    "position": entry.position,
                    "name": entry.topic.name,
                    "shortname": entry.shortname,
                    "taxonomy_id": entry.taxonomy_id,
                    "keywords": list(entry.keywords),
                    "hashtags": list(entry.hashtags),
                    "images": list(entry.images),
                    "services": entry.services,
                    "extra": entry.extra,
                    "file": entry.file,
                }
                for entry in taxonomy.topics
            ],
        )
    provider_ids: dict[str, int] = {}
    if taxonomy.providers:
        # A new provider is created under the declared name, with no document name;
        # an existing one is named again by recompute_providers below.
        rows = [
            {
                "domain": entry.provider.domain,
                "name": entry.provider.name,
                "named_by_source": True,
                "created_at": now,
                "updated_at": now,
            }
            for entry in taxonomy.providers
        ]
        upsert(conn, providers, rows, ["domain"])
        provider_ids = ids_by(conn, providers, "domain", [row["domain"] for row in rows])
        conn.execute(
            insert(source_providers),
            [
                {
                    "source_id": source_id,
                    "provider_id": provider_ids[entry.provider.domain],
                    "name": entry.provider.name,
                    "images": [_image_json(image) for image in entry.provider.images],
                    "extra": entry.extra,
                    "file": entry.file,
                }
                for entry in taxonomy.providers
            ],
        )
    recompute_providers(conn, before | set(provider_ids.values()), now)


def _image_json(image: ImageRecord) -> dict[str, Any]:
    return {"url": image.url, "width": image.width, "height": image.height}


def recompute_providers(conn: Connection, provider_ids: Iterable[int], now: datetime) -> None:
    """Name the providers and set their logos from what declares them now.

    Declared (by one source or more): the smallest declared name, and the logos of
    every declaration (each at its smallest position). Not declared: the documents'
    name (``document_name``) and logos (``provider_document_images``).
    """

    ids = sorted(set(provider_ids))
    if not ids:
        return
    names: dict[int, str] = {}
    logos: dict[int, dict[str, int]] = {}  # provider -> logo URL -> smallest position
    reported: list[ImageRecord] = []  # every declared size: the largest wins
    rows = conn.execute(
        select(
            source_providers.c.provider_id, source_providers.c.name, source_providers.c.images
        ).where(source_providers.c.provider_id.in_(ids))
    )
    for provider_id, name, images in rows:
        if provider_id not in names or name < names[provider_id]:
            names[provider_id] = name
        mine = logos.setdefault(provider_id, {})
        for position, image in enumerate(images or []):
            reported.append(ImageRecord(image["url"], image.get("width"), image.get("height")))
            mine[image["url"]] = min(position, mine.get(image["url"], position))
    undeclared = [pid for pid in ids if pid not in names]
    if names:
        conn.execute(
            update(providers)
            .where(providers.c.id == bindparam("b_id"))
            .values(name=bindparam("b_name"), named_by_source=True, updated_at=now),
            [{"b_id": pid, "b_name": name} for pid, name in sorted(names.items())],
        )
    if undeclared:
        conn.execute(
            update(providers)
            .where(providers.c.id.in_(undeclared))
            .values(
                name=func.coalesce(providers.c.document_name, providers.c.domain),
                named_by_source=False,
                updated_at=now,
            )
        )
    delete_where_in(conn, provider_images, "provider_id", ids)
    image_ids = ensure_images(conn, reported, now) if reported else {}
    declared_rows = [
        {"provider_id": pid, "image_id": image_ids[url], "position": position}
        for pid, mine in sorted(logos.items())
        for url, position in sorted(mine.items())
    ]
    if declared_rows:
        conn.execute(insert(provider_images), declared_rows)
    if undeclared:
        conn.execute(
            insert(provider_images).from_select(
                ["provider_id", "image_id", "position"],
                select(
                    provider_document_images.c.provider_id,
                    provider_document_images.c.image_id,
                    provider_document_images.c.position,
                ).where(provider_document_images.c.provider_id.in_(undeclared)),
            )
        )
