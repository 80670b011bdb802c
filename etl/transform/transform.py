"""Transform: validated front-matter -> normalized records. Pure functions, no I/O.

Every normalization rule the README lists lives here: canonical URLs, provider,
topic and image identity and related-link clean-up. Which of two documents with
the same URL wins (``winner_key``) sits with the records in ``etl.records``,
because the loader applies it across batches. The loader only writes what these
functions return.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import ValidationError

from etl.extract.extract import MAX_NESTING
from etl.records import (
    ArticleRecord,
    DocumentError,
    ImageRecord,
    LinkRecord,
    ProviderRecord,
    RawDocument,
    TopicRecord,
    TransformedDocument,
    fingerprint,
)
from etl.transform.documents import (
    ENTRY_CACHE,
    Image,
    NewsDocument,
    Provider,
    RelatedEntry,
    SnippetProvider,
    format_validation_error,
    unknown_keys,
    validate_document,
)

_TRACKING_PARAMS = frozenset({"fbclid", "gclid"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --- identity rules ---------------------------------------------------------


@lru_cache(maxsize=1 << 13)  # related links repeat the same few thousand URLs
def canonical_url(raw: str) -> str:
    """The article identity: see "Canonical article URL" in the README.

    Raises ``ValueError`` for anything that is not an absolute http(s) URL.
    """
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {text[:200]!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {text[:200]!r}")
    host = parts.hostname.lower().removeprefix("www.")
    if not host:
        raise ValueError(f"URL has no host: {text[:200]!r}")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return urlunsplit(("https", netloc, path, _strip_tracking(parts.query), ""))


def _strip_tracking(query: str) -> str:
    kept = []
    for pair in query.split("&"):
        name = unquote(pair.partition("=")[0]).lower()
        if not pair or name.startswith("utm_") or name in _TRACKING_PARAMS:
            continue
        kept.append(pair)
    return "&".join(kept)


def normalize_domain(domain: str) -> str:
    """Provider identity: lowercase, no ``www.``, no trailing dot (a URL gives its host)."""
    text = domain.strip()
    if "://" in text:
        try:
            text = urlsplit(text).hostname or ""
        except ValueError:  # e.g. "http://[::1": no usable host, the caller falls back
            text = ""
    return text.lower().rstrip(".").removeprefix("www.")


def normalize_provider_name(name: str) -> str:
    """URL-decoded (``%2c`` -> ``,``) and whitespace-collapsed.

    ``%00`` would decode to NUL, which no backend may store: the document is
    rejected, as for any other NUL.
    """
    decoded = unquote(name)
    if "\x00" in decoded:
        raise DocumentError(f"provider name {name[:100]!r} contains a NUL character (%00)")
    return " ".join(decoded.split())


def topic_slug(name: str) -> str:
    """Topic identity, blind to case and spacing: ``" AI  Ethics"`` -> ``ai-ethics``."""
    return "-".join(name.casefold().split())


# --- the transform ------------------------------------------------------------


def transform(raw: RawDocument) -> TransformedDocument:
    """Validate and normalize one document; raises ``DocumentError`` with the reason."""
    try:
        return _transform(raw)
    except RecursionError:
        raise DocumentError(f"front-matter is nested deeper than {MAX_NESTING} levels") from None


def _transform(raw: RawDocument) -> TransformedDocument:
    try:
        doc, warnings = validate_document(raw.front_matter)
    except ValidationError as exc:
        raise DocumentError(format_validation_error(exc)) from None
    url = _document_url(doc)
    article = ArticleRecord(
        url=url,
        web_url=_strip_or_none(doc.webUrl),
        original_url=_strip_or_none(doc.originalUrl),
        amp_web_url=_strip_or_none(doc.ampWebUrl),
        cdn_amp_web_url=_strip_or_none(doc.cdnAmpWebUrl),
        title=doc.title,
        excerpt=doc.excerpt,
        body=raw.body or None,
        category=doc.category,
        type=doc.type,
        published_at=doc.publishedDateTime,
        quality=doc.quality,
        heat=doc.heat,
        is_published=doc.published,
        is_removed=doc.removed,
        featured_content=jsonable(doc.featuredContent),
        secured=doc.secured,
        extra=jsonable(unknown_keys(raw.front_matter, doc)) or None,
        provider=_document_provider(doc.provider, url),
        topics=_topics(doc.topics),
        images=_images(doc.images, warnings, "images"),
        links=_links(doc.related, url, warnings),
    )
    return TransformedDocument(
        source_key=raw.source.key,
        content_hash=raw.content_hash,
        article=article,
        fingerprint=fingerprint(raw.source.source, raw.source.key, raw.content_hash),
        warnings=tuple(warnings),
        source=raw.source.source,
    )


def _document_url(doc: NewsDocument) -> str:
    raw = _strip_or_none(doc.webUrl) or _strip_or_none(doc.originalUrl)
    if raw is None:
        raise DocumentError("neither webUrl nor originalUrl is given")
    field_name = "webUrl" if _strip_or_none(doc.webUrl) else "originalUrl"
    try:
        return canonical_url(raw)
    except ValueError as exc:
        raise DocumentError(f"{field_name}: {exc}") from None


def _document_provider(provider: Provider | None, article_url: str) -> ProviderRecord:
    domain = normalize_domain(provider.domain or "") if provider else ""
    if not domain:
        domain = normalize_domain(urlsplit(article_url).hostname or "")
    name = normalize_provider_name(provider.name or "") if provider else ""
    images = _images(provider.images, [], "provider.images") if provider else ()
    return ProviderRecord(domain, name or domain, tuple(image for _, image in images))


def _snippet_provider(provider: SnippetProvider | None, link_url: str) -> ProviderRecord:
    name, domain = (provider.get("name"), provider.get("domain")) if provider else (None, None)
    record = _provider_record(name, domain)
    if record is None:  # no domain: the link's host
        host = normalize_domain(urlsplit(link_url).hostname or "")
        return ProviderRecord(host, normalize_provider_name(name or "") or host)
    return record


@lru_cache(maxsize=1 << 12)
def _provider_record(name: str | None, domain: str | None) -> ProviderRecord | None:
    """A snippet's provider (snippets carry no logos); cached, as snippets repeat providers."""
    normalized = normalize_domain(domain or "")
    if not normalized:
        return None
    return ProviderRecord(normalized, normalize_provider_name(name or "") or normalized)


def _topics(names: list[str]) -> tuple[TopicRecord, ...]:
    seen: dict[str, TopicRecord] = {}
    for position, name in enumerate(names):
        slug = topic_slug(name)
        if slug and slug not in seen:
            seen[slug] = TopicRecord(slug, " ".join(name.split()), position)
    return tuple(seen.values())


def _images(
    images: list[Image], warnings: list[str], where: str
) -> tuple[tuple[int, ImageRecord], ...]:
    seen: dict[str, tuple[int, ImageRecord]] = {}
    for position, image in enumerate(images):
        url = image.url.strip()
        if not url:
            warnings.append(f"{where}[{position}]: image without a URL dropped")
            continue
        if url not in seen:
            record = ImageRecord(url, image.width, image.height, image.title, image.isCached)
            seen[url] = (position, record)
    return tuple(seen.values())


def _links(
    related: list[RelatedEntry | None], article_url: str, warnings: list[str]
) -> tuple[LinkRecord, ...]:
    # The hottest loop of a load (160k entries per corpus): keep it lean.
    seen: dict[str, LinkRecord] = {}
    for position, entry in enumerate(related):
        if entry is None:  # invalid, already warned about
            continue
        parts = _link_parts(entry)
        if parts.__class__ is str:
            warnings.append(f"related[{position}] dropped: {parts}")
            continue
        url = parts[0]
        if url == article_url or url in seen:
            continue
        provider = parts[5]
        if provider.__class__ is DocumentError:  # only a link kept refuses its document
            raise DocumentError(provider.reason)
        seen[url] = LinkRecord(url, position, *parts[1:])
    return tuple(seen.values())


# The link's URL, title, excerpt, date, URL as given, and provider (or why the
# provider cannot be had: the document is refused only if it keeps the link).
LinkParts = tuple[str, str | None, str | None, Any, str, Any]

# id(a validated related entry) -> (that entry, its link's values but the position, or
# why it makes no link). validate_document gives every document that lists an item the
# same entry: its URL and provider are normalized once.
_made_links: dict[int, tuple[Any, LinkParts | str]] = {}


def _link_parts(entry: RelatedEntry) -> LinkParts | str:
    cached = _made_links.get(id(entry))
    if cached is not None and cached[0] is entry:
        return cached[1]
    get = entry.get
    target = _strip_or_none(get("webUrl")) or _strip_or_none(get("originalUrl"))
    parts: LinkParts | str
    try:
        if target is None:
            raise ValueError("no webUrl or originalUrl")
        url = canonical_url(target)
    except ValueError as exc:
        parts = str(exc)
    else:
        provider: ProviderRecord | DocumentError
        try:
            provider = _snippet_provider(get("provider"), url)
        except DocumentError as exc:
            provider = exc
        parts = (url, get("title"), get("excerpt"), get("publishedDateTime"), target, provider)
    if len(_made_links) >= ENTRY_CACHE:
        _made_links.clear()
    _made_links[id(entry)] = (entry, parts)
    return parts


# --- helpers ------------------------------------------------------------------


def _strip_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def jsonable(value: Any) -> Any:
    """YAML values as JSON: dates become ISO strings, keys become strings."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):  # NaN/inf are not JSON
        return None
    return value
