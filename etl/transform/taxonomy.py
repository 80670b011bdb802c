"""A site's taxonomy: ``_data/topics`` and ``_data/organizations`` -> the source's tables.

A Jekyll site root keeps its topic hierarchy in ``_data/topics/NN-slug.yaml`` (one
entry a file, ``parent`` by name, ordered by the ``NN-`` prefix) and the publishers
it knows in ``_data/organizations/<domain>.md`` (front-matter: ``name``, ``domain``,
``images``). Neither is ever a news document. Data files are read as Jekyll reads
them, and their site-relative image URLs made absolute with the site's ``url`` and
``baseurl`` (``etl.extract.site_data``).

Like the documents, the tables are a function of the files that exist now: when a
source's taxonomy files or its ``_config.yml`` change (their sizes and mtimes, hashed
into ``sources.taxonomy_stamp``), its ``source_topics`` and ``source_providers`` rows are
replaced by what the files say, and every provider a declaration was added to or
withdrawn from is named again (``etl.load.taxonomy_load`` writes, ``etl.load.aggregates``
names). Unchanged files are not read. Reading and parsing are pure
(:func:`read_taxonomy`, :func:`topic_entry`, :func:`organization_entry`,
:func:`check_topics`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from etl.db.schema import (
    providers,
    topics,
)
from etl.extract.extract import DEFAULT_MAX_FILE_BYTES, parse_yaml, refuse_nul, split_front_matter
from etl.extract.site_data import (
    AS_WRITTEN,
    CONFIG_FILES,
    DATA_SUFFIXES,
    SiteUrls,
    absolute_url,
    config_file,
    data_value,
    read_site_config,
    read_text,
)
from etl.extract.sources import DATA_DIR
from etl.records import (
    DeclaredProvider,
    DocumentError,
    ImageRecord,
    ProviderRecord,
    Rejection,
    Taxonomy,
    TaxonomyTopic,
    TopicRecord,
)

TOPICS_DIR = f"{DATA_DIR}/topics"
ORGANIZATIONS_DIR = f"{DATA_DIR}/organizations"
TOPIC_SUFFIXES = DATA_SUFFIXES
ORGANIZATION_SUFFIXES = (".md", *DATA_SUFFIXES)  # .md: front-matter, as the sites write them
_POSITION = re.compile(r"^(\d+)-")
# Keys the tables store in columns of their own (`taxonomy: topic` only says what the file is).
_TOPIC_KEYS = frozenset(
    {"_id", "name", "shortname", "parent", "keywords", "hashtags", "images", "services"}
)
_ORGANIZATION_KEYS = frozenset({"name", "domain", "images"})
_KIND = "taxonomy"
Entry = TypeVar("Entry", TaxonomyTopic, DeclaredProvider)


# --- files ---------------------------------------------------------------------------


def taxonomy_files(root: str | os.PathLike[str]) -> list[Path]:
    """The taxonomy files of a site root, in order: topics, then organizations."""
    found: list[Path] = []
    for folder, suffixes in (
        (TOPICS_DIR, TOPIC_SUFFIXES),
        (ORGANIZATIONS_DIR, ORGANIZATION_SUFFIXES),
    ):
        directory = Path(root, folder)
        if directory.is_dir():
            found.extend(
                sorted(
                    path
                    for path in directory.iterdir()
                    if path.name.endswith(suffixes) and not path.name.startswith(".")
                )
            )
    return found


def stamp(root: str | os.PathLike[str]) -> str:
    """A hash of the names, sizes and mtimes of the site's configuration file and its
    taxonomy files: equal means unchanged."""
    digest = hashlib.sha256()
    config = config_file(root)
    for path in [config, *taxonomy_files(root)] if config else taxonomy_files(root):
        try:
            info = path.stat()
            digest.update(
                f"{path.relative_to(root)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode()
            )
        except OSError:
            digest.update(f"{path.relative_to(root)}\0unreadable\n".encode())
    return digest.hexdigest()[:STAMP_PART]


# sources.taxonomy_stamp is "<files stamp>:<content digest>" (64 characters): equal files
# stamps mean nothing is read; files read again with an equal content digest (touched,
# or a rejected file read again) mean nothing is written. A taxonomy with a rejected
# file stores no files stamp, so the next run reads it again.
STAMP_PART = 31
CONTENT_PART = 32
REREAD = "-" * STAMP_PART


def stored_parts(stored: str | None) -> tuple[str | None, str | None]:
    """(files stamp, content digest) of a stored ``sources.taxonomy_stamp``."""
    if not stored or ":" not in stored:
        return None, None
    files, content = stored.split(":", 1)
    return files, content


# --- rules (pure) -----------------------------------------------------------------------


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    collapsed = " ".join(text.split())
    return collapsed or None


def _extra(data: dict[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    from etl.transform.transform import jsonable

    extra = {
        str(key): jsonable(value)
        for key, value in data.items()
        if key not in known and not (key == _KIND and value in ("topic", "organization"))
    }
    return extra or None


POSITION_LIMIT = 2**31 - 1  # source_topics.position is a 32-bit INTEGER


def _check_key(what: str, value: str, column: Any) -> None:
    """Identities longer than their column would fail the whole taxonomy's write."""
    if len(value) > column.type.length:
        raise DocumentError(f"{what}: over {column.type.length} characters")


def _images(entry: Any, urls: SiteUrls) -> tuple[ImageRecord, ...]:
    seen: dict[str, ImageRecord] = {}
    for image in entry.images:
        url = absolute_url(image.url.strip(), urls)
        if url and url not in seen:
            seen[url] = ImageRecord(url, image.width, image.height)
    return tuple(seen.values())


def _validate(model: Any, data: dict[str, Any]) -> Any:
    from etl.transform.documents import ValidationError, format_validation_error

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DocumentError(format_validation_error(exc)) from None


def topic_entry(data: dict[str, Any], file: str, urls: SiteUrls = AS_WRITTEN) -> TaxonomyTopic:
    """One topic file's mapping -> its entry; ``DocumentError`` says what is wrong.
    Site-relative image URLs are made absolute with ``urls`` (the site's)."""
    from etl.transform.documents import TopicEntry
    from etl.transform.transform import jsonable, topic_slug

    entry = _validate(TopicEntry, data)
    name = _clean(entry.name)
    slug = topic_slug(entry.name)
    if name is None or not slug:
        raise DocumentError("name: must not be blank")
    parent_name = _clean(entry.parent)
    parent = TopicRecord(topic_slug(parent_name), parent_name, 0) if parent_name else None
    if parent is not None and parent.slug == slug:
        raise DocumentError(f"parent: {entry.parent!r} is the topic itself")
    _check_key("name", slug, topics.c.slug)
    if parent is not None:
        _check_key("parent", parent.slug, topics.c.slug)
    match = _POSITION.match(Path(file).name)
    if match and int(match.group(1)) > POSITION_LIMIT:
        raise DocumentError(f"the file name's {match.group(1)}- prefix is over {POSITION_LIMIT}")
    return TaxonomyTopic(
        topic=TopicRecord(slug, name, 0),
        parent=parent,
        position=int(match.group(1)) if match else None,
        shortname=_clean(entry.shortname),
        taxonomy_id=entry.id,
        keywords=tuple(entry.keywords),
        hashtags=tuple(entry.hashtags),
        images=tuple(
            absolute_url(image.url.strip(), urls) for image in entry.images if image.url.strip()
        ),
        services=jsonable(entry.services),
        extra=_extra(data, _TOPIC_KEYS),
        file=file,
    )


def organization_entry(
    data: dict[str, Any], file: str, urls: SiteUrls = AS_WRITTEN
) -> DeclaredProvider:
    """One organization file's front-matter (or data) -> the provider it declares.

    The domain is ``domain``, else the file's name without its suffix; it is normalized
    as a document's provider domain is, so declarations meet documents. Site-relative
    logo URLs are made absolute with ``urls`` (the site's).
    """
    from etl.transform.documents import Organization
    from etl.transform.transform import normalize_domain, normalize_provider_name

    entry = _validate(Organization, data)
    domain = normalize_domain(entry.domain or _without_suffix(Path(file).name))
    if not domain:
        raise DocumentError("domain: missing, and the file's name gives none")
    _check_key("domain", domain, providers.c.domain)
    name = normalize_provider_name(entry.name)
    if not name:
        raise DocumentError("name: must not be blank")
    return DeclaredProvider(
        ProviderRecord(domain, name, _images(entry, urls)), _extra(data, _ORGANIZATION_KEYS), file
    )


def _without_suffix(name: str) -> str:
    for suffix in ORGANIZATION_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _first_by_file(
    entries: Iterable[Entry], key: Callable[[Entry], str], what: Callable[[Entry], str]
) -> tuple[dict[str, Entry], list[Rejection]]:
    """One entry per key: the first file's (by name); the others are rejected."""
    kept: dict[str, Entry] = {}
    rejected: list[Rejection] = []
    for entry in sorted(entries, key=lambda item: item.file):
        first = kept.setdefault(key(entry), entry)
        if first is not entry:
            rejected.append(Rejection(entry.file, f"{what(entry)} is already in {first.file}"))
    return kept, rejected


def check_topics(entries: Sequence[TaxonomyTopic]) -> tuple[list[TaxonomyTopic], list[Rejection]]:
    """Entries a hierarchy can hold: a topic defined twice keeps its first file's entry
    (by file name); entries whose parents lead back to themselves are refused."""
    kept, rejected = _first_by_file(
        entries, lambda entry: entry.topic.slug, lambda entry: f"topic {entry.topic.name!r}"
    )
    parent_of = {slug: entry.parent.slug for slug, entry in kept.items() if entry.parent}
    in_cycle = set()
    for start in parent_of:
        seen = [start]
        slug = parent_of.get(start)
        while slug is not None and slug not in seen:
            seen.append(slug)
            slug = parent_of.get(slug)
        if slug == start:
            in_cycle.add(start)
    for slug in sorted(in_cycle):
        entry = kept.pop(slug)
        parent = entry.parent.name if entry.parent else ""
        rejected.append(Rejection(entry.file, f"parent: {parent!r} leads back to this topic"))
    return [kept[slug] for slug in sorted(kept)], rejected


def check_providers(
    entries: Sequence[DeclaredProvider],
) -> tuple[list[DeclaredProvider], list[Rejection]]:
    """A domain declared by two files keeps its first file's declaration (by file name)."""
    kept, rejected = _first_by_file(
        entries,
        lambda entry: entry.provider.domain,
        lambda entry: f"organization {entry.provider.domain!r}",
    )
    return [kept[domain] for domain in sorted(kept)], rejected


def read_taxonomy(
    root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Taxonomy:
    """Read and check a site root's taxonomy files; the ones that fail are rejected alone.

    A configuration file that cannot be read rejects the whole taxonomy (Jekyll cannot
    build the site): the source has none until it is fixed.
    """
    try:
        config = read_site_config(root, max_bytes)
    except DocumentError as exc:
        return _without_config(root, exc)
    content = hashlib.sha256()
    # Only what the files use of the configuration: another setting changed writes nothing.
    content.update(f"{config.file}\0{config.urls.url}\0{config.urls.baseurl}\n".encode())
    topics: list[TaxonomyTopic] = []
    declared: list[DeclaredProvider] = []
    rejected: list[Rejection] = []
    warnings: list[str] = list(config.warnings)
    for path in taxonomy_files(root):
        file = path.relative_to(root).as_posix()
        content.update(f"{file}\0".encode())
        try:
            text = read_text(path, max_bytes)
            content.update(hashlib.sha256(text.encode()).digest())
            if file.startswith(TOPICS_DIR):
                topics.append(
                    topic_entry(_mapping(text, file, warnings, "a topic file"), file, config.urls)
                )
            else:
                parsed = _mapping(text, file, warnings, "an organization file")
                declared.append(organization_entry(parsed, file, config.urls))
        except DocumentError as exc:
            rejected.append(Rejection(file, exc.reason, exc.line, exc.column))
        except RecursionError:
            rejected.append(Rejection(file, "nested too deeply"))
    kept_topics, refused = check_topics(topics)
    kept_providers, refused_providers = check_providers(declared)
    rejected.extend(refused + refused_providers)
    return Taxonomy(
        tuple(kept_topics),
        tuple(kept_providers),
        tuple(sorted(rejected, key=lambda r: r.path)),
        content.hexdigest()[:CONTENT_PART],
        tuple(warnings),
    )


def _without_config(root: str | os.PathLike[str], error: DocumentError) -> Taxonomy:
    """The taxonomy of a site whose configuration file is rejected: none."""
    path = config_file(root)
    file = path.relative_to(root).as_posix() if path else CONFIG_FILES[0]
    rejection = Rejection(file, error.reason, error.line, error.column)
    content = hashlib.sha256(f"{rejection}\0rejected\n".encode()).hexdigest()
    return Taxonomy(rejected=(rejection,), content=content[:CONTENT_PART])


def _mapping(text: str, file: str, warnings: list[str], what: str) -> dict[str, Any]:
    """A taxonomy file's mapping: an organization's ``.md`` front-matter, else the data
    file's first YAML document (its warning, if more followed, goes to ``warnings``)."""
    if file.endswith(".md"):
        front_matter, _, first_line = split_front_matter(text)
        parsed = parse_yaml(front_matter, first_line)
        refuse_nul(parsed)
        return parsed
    value, warned = data_value(text, file)
    if not isinstance(value, dict):
        kind = "empty" if value is None else f"a {type(value).__name__}"
        raise DocumentError(f"{what} must be a mapping of keys to values, not {kind}")
    warnings.extend(warned)
    return value
