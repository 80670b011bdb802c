"""A site's taxonomy: ``_data/topics`` and ``_data/organizations`` -> the source's tables.

A Jekyll site root keeps its topic hierarchy in ``_data/topics/NN-slug.yaml`` (one
entry a file, ``parent`` by name, ordered by the ``NN-`` prefix) and the publishers
it knows in ``_data/organizations/<domain>.md`` (front-matter: ``name``, ``domain``,
``images``). Neither is ever a news document.

Like the documents, the tables are a function of the files that exist now: when a
source's taxonomy files change (their sizes and mtimes, hashed into
``sources.taxonomy_stamp``), its ``source_topics`` and ``source_providers`` rows are
replaced by what the files say, and every provider a declaration was added to or
withdrawn from is named again (:func:`etl.aggregates.recompute`). Unchanged files are not
read. Reading and parsing are pure (:func:`read_taxonomy`, :func:`topic_entry`,
:func:`organization_entry`, :func:`check_topics`); :func:`refresh` writes.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, insert, select

from etl.aggregates import Touched, ensure_topics, recompute
from etl.extract import (
    DEFAULT_MAX_FILE_BYTES,
    decode,
    parse_yaml,
    read_bytes,
    refuse_nul,
    split_front_matter,
)
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
from etl.schema import (
    providers,
    source_providers,
    source_topics,
    topics,
)
from etl.sources import DATA_DIR
from etl.sql import ids_by, upsert

TOPICS_DIR = f"{DATA_DIR}/topics"
ORGANIZATIONS_DIR = f"{DATA_DIR}/organizations"
TOPIC_SUFFIXES = (".yaml", ".yml")
ORGANIZATION_SUFFIX = ".md"
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
        (ORGANIZATIONS_DIR, (ORGANIZATION_SUFFIX,)),
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
    """A hash of the taxonomy files' names, sizes and mtimes: equal means unchanged."""
    digest = hashlib.sha256()
    for path in taxonomy_files(root):
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
    from etl.transform import jsonable

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


def _images(entry: Any) -> tuple[ImageRecord, ...]:
    seen: dict[str, ImageRecord] = {}
    for image in entry.images:
        url = image.url.strip()
        if url and url not in seen:
            seen[url] = ImageRecord(url, image.width, image.height)
    return tuple(seen.values())


def _validate(model: Any, data: dict[str, Any]) -> Any:
    from etl.documents import ValidationError, format_validation_error

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DocumentError(format_validation_error(exc)) from None


def topic_entry(data: dict[str, Any], file: str) -> TaxonomyTopic:
    """One topic file's mapping -> its entry; ``DocumentError`` says what is wrong."""
    from etl.documents import TopicEntry
    from etl.transform import jsonable, topic_slug

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
        images=tuple(image.url.strip() for image in entry.images if image.url.strip()),
        services=jsonable(entry.services),
        extra=_extra(data, _TOPIC_KEYS),
        file=file,
    )


def organization_entry(data: dict[str, Any], file: str) -> DeclaredProvider:
    """One organization file's front-matter -> the provider it declares.

    The domain is ``domain``, else the file's name without ``.md``; it is normalized
    as a document's provider domain is, so declarations meet documents.
    """
    from etl.documents import Organization
    from etl.transform import normalize_domain, normalize_provider_name

    entry = _validate(Organization, data)
    domain = normalize_domain(entry.domain or Path(file).name.removesuffix(ORGANIZATION_SUFFIX))
    if not domain:
        raise DocumentError("domain: missing, and the file's name gives none")
    _check_key("domain", domain, providers.c.domain)
    name = normalize_provider_name(entry.name)
    if not name:
        raise DocumentError("name: must not be blank")
    return DeclaredProvider(
        ProviderRecord(domain, name, _images(entry)), _extra(data, _ORGANIZATION_KEYS), file
    )


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
    """Read and check a site root's taxonomy files; the ones that fail are rejected alone."""
    topics: list[TaxonomyTopic] = []
    declared: list[DeclaredProvider] = []
    rejected: list[Rejection] = []
    content = hashlib.sha256()
    for path in taxonomy_files(root):
        file = path.relative_to(root).as_posix()
        content.update(f"{file}\0".encode())
        try:
            data = read_bytes(path, max_bytes)
            content.update(hashlib.sha256(data).digest())
            text = decode(data)
            if "\x00" in text:  # yaml-rs would silently stop at it
                raise DocumentError("contains a NUL character")
            if file.startswith(TOPICS_DIR):
                parsed = _topic_yaml(text)
                refuse_nul(parsed)
                topics.append(topic_entry(parsed, file))
            else:
                front_matter, _, first_line = split_front_matter(text)
                parsed = parse_yaml(front_matter, first_line)
                refuse_nul(parsed)
                declared.append(organization_entry(parsed, file))
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
    )


def _yaml_part(text: str) -> str:
    """A topic file is plain YAML; one written as front-matter (``---`` first) is read too."""
    if text.startswith("---\n"):
        try:
            return split_front_matter(text)[0]
        except DocumentError:
            return text
    return text


def _topic_yaml(text: str) -> dict[str, Any]:
    try:
        return parse_yaml(_yaml_part(text))
    except DocumentError as exc:  # a topic file has no front-matter: say what it is
        reason = exc.reason.replace("front-matter", "a topic file", 1)
        raise DocumentError(reason, exc.line, exc.column) from None


# --- the database ---------------------------------------------------------------------


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
