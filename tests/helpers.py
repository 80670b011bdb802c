"""Test helpers: read a database back as plain, id-free data to compare states."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, func, select

from etl.database import resolve_url
from etl.schema import (
    article_images,
    article_topics,
    articles,
    images,
    provider_images,
    providers,
    related_articles,
    source_files,
    topics,
)

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

    Two databases hold the same data exactly when their snapshots are equal,
    whatever order or split the documents were loaded in.
    """
    engine = create_engine(resolve_url(url))
    try:
        with engine.connect() as conn:
            a_url = {r.id: r.url for r in conn.execute(select(articles.c.id, articles.c.url))}
            p_dom = {
                r.id: r.domain for r in conn.execute(select(providers.c.id, providers.c.domain))
            }
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
            data["providers"] = sorted(
                (r.domain, r.name, bool(r.named_by_document))
                for r in conn.execute(select(providers))
            )
            data["topics"] = sorted((r.slug, r.name) for r in conn.execute(select(topics)))
            data["images"] = sorted(
                (r.url, r.width, r.height) for r in conn.execute(select(images))
            )
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
            return data
    finally:
        engine.dispose()


def counts(url: str) -> dict[str, int]:
    """Row counts of the data tables, plus stubs."""
    engine = create_engine(resolve_url(url))
    try:
        with engine.connect() as conn:
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
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    """Booleans come back as 0/1 from MariaDB; JSON as dicts everywhere."""
    if isinstance(value, bool | None):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value
