"""Rewritten articles whose references stay as they were.

An article's references are what the aggregates are made of (``etl.load.aggregates``):
its provider and the name its document gives it, its topics as spelled, its images
and its provider's logos with their sizes. An edit seldom changes them (a title, a
date, the body). When a document's references equal, value for value, those its
article holds, its child sets are left as they are and the entities they name are
not recomputed: what a fresh load would write is there already. So a 1% edit
recomputes the entities of the 1% whose references changed, not those of every
provider and topic its articles name.

May import: ``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, select

from etl.db.schema import (
    article_images,
    article_provider_images,
    article_topics,
    articles,
    images,
    providers,
    topics,
)
from etl.db.sql import in_conditions
from etl.records import ArticleRecord

# (provider domain, provider name, topics, images, logos): each set as sorted tuples.
References = tuple[Any, ...]

_BY_KEY = itemgetter(0, 1)  # (slug or URL, position): unique within an article


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)  # MariaDB gives 0/1


def document_references(article: ArticleRecord) -> References:
    """What ``article``, as its document gives it, references (a pure function)."""
    return (
        article.provider.domain,
        article.provider.name,
        tuple(sorted(((t.slug, t.position, t.name) for t in article.topics), key=_BY_KEY)),
        tuple(
            sorted(
                (
                    (i.url, position, i.title, _flag(i.is_cached), i.width, i.height)
                    for position, i in article.images
                ),
                key=_BY_KEY,
            )
        ),
        tuple(
            sorted(
                (
                    (i.url, position, i.width, i.height)
                    for position, i in enumerate(article.provider.images)
                ),
                key=_BY_KEY,
            )
        ),
    )


def _rows(
    conn: Connection, table: Table, entity: Table, ids: list[int], *columns: Any
) -> dict[int, list[Any]]:
    """Article id -> the values of ``columns`` (of ``table`` joined with the ``entity``
    it names) of its rows, each a tuple."""
    found: dict[int, list[Any]] = defaultdict(list)
    joined = table.join(entity)
    for condition in in_conditions(conn, table.c.article_id, ids):
        query = select(table.c.article_id, *columns).select_from(joined).where(condition)
        for row in conn.execute(query).all():
            found[row[0]].append(tuple(row[1:]))
    return found


def stored_references(conn: Connection, ids: Iterable[int]) -> dict[int, References]:
    """Article id -> what the stored article references, for the full articles ``ids``."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    named: dict[int, tuple[str, str | None]] = {}
    for condition in in_conditions(conn, articles.c.id, wanted):
        query = (
            select(articles.c.id, providers.c.domain, articles.c.provider_name)
            .join(providers, providers.c.id == articles.c.provider_id)
            .where(condition)
        )
        named.update((row[0], (row[1], row[2])) for row in conn.execute(query).all())
    t = article_topics.c
    by_topic = _rows(conn, article_topics, topics, wanted, topics.c.slug, t.position, t.name)
    i = article_images.c
    image_columns = (images.c.url, i.position, i.title, i.is_cached, i.width, i.height)
    by_image = _rows(conn, article_images, images, wanted, *image_columns)
    lg = article_provider_images.c
    logo_columns = (images.c.url, lg.position, lg.width, lg.height)
    by_logo = _rows(conn, article_provider_images, images, wanted, *logo_columns)
    found: dict[int, References] = {}
    for article_id, (domain, name) in named.items():
        found[article_id] = (
            domain,
            name,
            tuple(sorted(by_topic.get(article_id, ()), key=_BY_KEY)),
            tuple(
                sorted(
                    ((*row[:3], _flag(row[3]), *row[4:]) for row in by_image.get(article_id, ())),
                    key=_BY_KEY,
                )
            ),
            tuple(sorted(by_logo.get(article_id, ()), key=_BY_KEY)),
        )
    return found


def unchanged_references(conn: Connection, rewritten: Mapping[int, ArticleRecord]) -> set[int]:
    """Of the full articles ``rewritten`` (id -> what its document gives now), those
    whose references the new document leaves exactly as they are."""
    stored = stored_references(conn, rewritten)
    return {
        article_id
        for article_id, article in rewritten.items()
        if stored.get(article_id) == document_references(article)
    }
