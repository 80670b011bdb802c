"""A site's taxonomy in the database: ``source_topics``, ``source_providers`` and the
names and logos of the providers they declare.

:func:`refresh` replaces a source's rows by what ``etl.transform.taxonomy`` read from its files;
every provider and topic a declaration was added to or withdrawn from is then
recomputed from what refers to it now (:func:`etl.load.aggregates.recompute`). The caller
holds the writer transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from etl.db.schema import providers, source_providers, source_topics
from etl.db.sql import ids_by, upsert
from etl.load.aggregates import Touched, ensure_topics, recompute
from etl.records import ImageRecord, Taxonomy


def refresh(conn: Connection, source_id: int, taxonomy: Taxonomy, now: datetime) -> None:
    """Replace a source's taxonomy rows by ``taxonomy`` and name again every provider
    it declared before or declares now. The caller holds the writer transaction."""

    touched = _declared(conn, source_id)  # named again below, with what is declared now
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
                    "parent_name": entry.parent.name if entry.parent else None,
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
        # every one is named again by recompute below.
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
    touched.topics.update(topic_ids.values())
    touched.providers.update(provider_ids.values())
    recompute(conn, touched, now)


def _declared(conn: Connection, source_id: int) -> Touched:
    """The providers and topics (and parents) a source's taxonomy refers to."""
    touched = Touched()
    touched.providers.update(
        conn.execute(
            select(source_providers.c.provider_id).where(source_providers.c.source_id == source_id)
        ).scalars()
    )
    for row in conn.execute(
        select(source_topics.c.topic_id, source_topics.c.parent_topic_id).where(
            source_topics.c.source_id == source_id
        )
    ):
        touched.topics.update(topic_id for topic_id in row if topic_id is not None)
    return touched


def _image_json(image: ImageRecord) -> dict[str, Any]:
    return {"url": image.url, "width": image.width, "height": image.height}
