"""The records transform hands to load: one frozen dataclass per normalized entity.

This is the explicit data between the two stages. It imports nothing heavy, so the
loader (and a run that finds nothing to parse) never loads pydantic or the YAML
parsers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

_EPOCH = datetime.min.replace(tzinfo=UTC)


def winner_key(published_at: datetime | None, source_key: str) -> tuple[datetime, str]:
    """Of two documents with one URL, the greater key wins: later date, then greater path."""
    return (published_at or _EPOCH, source_key)


@dataclass(frozen=True, slots=True)
class ImageRecord:
    url: str
    width: int | None
    height: int | None
    title: str | None = None
    is_cached: bool | None = None


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    domain: str
    name: str
    images: tuple[ImageRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicRecord:
    slug: str
    name: str
    position: int


class LinkRecord(NamedTuple):
    """A related entry: a link to the article at ``url``, with the snippet shown for it.

    A NamedTuple, not a frozen dataclass like the others: a corpus makes 160k of
    them, and a frozen dataclass takes six times as long to build.
    """

    url: str
    position: int
    title: str | None
    excerpt: str | None
    published_at: datetime | None
    web_url: str | None
    provider: ProviderRecord | None


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    url: str
    web_url: str | None
    original_url: str | None
    amp_web_url: str | None
    cdn_amp_web_url: str | None
    title: str
    excerpt: str | None
    body: str | None
    category: str | None
    type: str | None
    published_at: datetime | None
    quality: int | None
    heat: int | None
    is_published: bool | None
    is_removed: bool
    featured_content: Any
    secured: str | None
    extra: dict[str, Any] | None
    provider: ProviderRecord
    topics: tuple[TopicRecord, ...]
    images: tuple[tuple[int, ImageRecord], ...]
    links: tuple[LinkRecord, ...]


@dataclass(frozen=True, slots=True)
class TransformedDocument:
    """What the loader receives for one source file."""

    source_key: str
    content_hash: str
    article: ArticleRecord
    fingerprint: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def winner_key(self) -> tuple[datetime, str]:
        return winner_key(self.article.published_at, self.source_key)
