"""Rows no file describes: tombstones, stubs, and entities nothing references.

Stubs are maintained lazily: a batch marks the stubs whose incoming links changed
(``fingerprint`` set to NULL) and :func:`refresh_stubs` rebuilds or deletes them
from the links that point at them, so their content does not depend on load order.
A URL no file describes any more loses its content (:func:`make_tombstones`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    null,
    select,
    update,
)

from etl.db.schema import (
    article_images,
    article_provider_images,
    article_topics,
    articles,
    related_articles,
)
from etl.db.sql import delete_where_in, in_conditions, update_by_id
from etl.load.aggregates import (
    defer,
    ensure_providers,
    references,
)
from etl.load.tally import Tally
from etl.records import (
    ProviderRecord,
    winner_key,
)

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
# Its sets other than links, which etl.load.writes replaces only where they changed.
SET_TABLES = (article_topics, article_images, article_provider_images)


def clear_children(conn: Connection, ids: list[int], links: bool = True) -> set[int]:
    """Delete the child rows of articles ``ids``, their links only if ``links``; the ids
    the deleted links pointed at (whose stubs the caller marks for the refresh)."""
    targets: set[int] = set()
    if links:
        for condition in in_conditions(conn, related_articles.c.article_id, ids):
            targets.update(
                conn.execute(
                    select(related_articles.c.related_article_id).where(condition)
                ).scalars()
            )
    for table in (*SET_TABLES, related_articles) if links else SET_TABLES:
        delete_where_in(conn, table, "article_id", ids)
    return targets


def make_tombstones(conn: Connection, ids: list[int], now: datetime) -> None:
    """Articles no file describes any more keep no content and no child rows; the
    stub refresh makes each a stub if links point at it, else leaves it removed."""
    if not ids:
        return
    targets = clear_children(conn, ids)
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
    mark_stubs_dirty(conn, targets)


def mark_stubs_dirty(conn: Connection, article_ids: set[int]) -> None:
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


# A row no file describes whose incoming links changed. source_id is NULL exactly when
# source_path is, and indexed: finding the few such rows does not scan the articles.
_DIRTY = (
    articles.c.source_id.is_(None),
    articles.c.source_path.is_(None),
    articles.c.fingerprint.is_(None),
)


def has_dirty_stubs(conn: Connection) -> bool:
    """Whether some stub or tombstone waits for :func:`refresh_stubs`."""
    return conn.execute(select(articles.c.id).where(*_DIRTY).limit(1)).first() is not None


def refresh_stubs(conn: Connection, now: datetime, tally: Tally) -> None:
    """Settle the rows no file describes whose incoming links changed (fingerprint NULL).

    Linked: a stub showing the snippet of the referencing article with the latest
    ``published_at`` (ties: the greatest URL). Not linked: a stub is deleted; a
    former article stays as a tombstone (``is_removed``, no content of its own).
    Done a block at a time, so memory does not grow with their number.
    """
    dirty = sorted(conn.execute(select(articles.c.id).where(*_DIRTY)).scalars())
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
    # What a stub's refresh sets: STUB_COLUMNS.
    update_by_id(
        conn, articles, [{"id": row["id"]} | {n: row[n] for n in STUB_COLUMNS} for row in updates]
    )
    return set(provider_ids.values())
