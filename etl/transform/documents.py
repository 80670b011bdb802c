"""The input: pydantic models of a news document's front-matter, and of a site's
taxonomy entries (``_data/topics`` and ``_data/organizations``).

Validation is lenient where the README documents a coercion (a single topic
string, numeric strings, zone-less dates) and strict everywhere else. Keys the
models do not know are collected by :func:`unknown_keys` and end up in
``articles.extra``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

__all__ = [
    "Image",
    "NewsDocument",
    "Organization",
    "Provider",
    "RelatedEntry",
    "TopicEntry",
    "ValidationError",
    "unknown_keys",
]


def _to_utc(value: Any) -> Any:
    """Dates become midnight UTC; a datetime without a zone is taken as UTC."""
    if type(value) is datetime and value.tzinfo is UTC:  # the common case, ~166k per corpus
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(), UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return value  # pydantic gives the error message
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59-05:00 is past the end of the calendar in UTC
            raise ValueError("date is out of range in UTC") from None
    return value


UtcDateTime = Annotated[datetime, BeforeValidator(_to_utc)]


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# Ranges of the columns they land in, so every backend accepts or refuses alike.
OptionalInt = Annotated[
    Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None, BeforeValidator(_blank_to_none)
]
OptionalInt32 = Annotated[
    Annotated[int, Field(ge=-(2**31), le=2**31 - 1)] | None, BeforeValidator(_blank_to_none)
]


def _none_to_empty(value: Any) -> Any:
    """``images:`` with nothing after it is YAML null: read it as an empty list."""
    return [] if value is None else value


class _Model(BaseModel):
    # YAML reads `title: 1984` as a number; it is still a title. Unknown keys are
    # read from the raw mapping by unknown_keys(): keeping them on 160k model
    # instances cost more than validating them.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Image(_Model):
    url: str
    width: OptionalInt32 = None
    height: OptionalInt32 = None
    title: str | None = None
    isCached: bool | None = None


ImageList = Annotated[list[Image], BeforeValidator(_none_to_empty)]


class Provider(_Model):
    name: str | None = None
    domain: str | None = None
    images: ImageList = Field(default_factory=list)


class _ArticleFields(_Model):
    """What an article's own document and a related snippet of it have in common."""

    excerpt: str | None = None
    publishedDateTime: UtcDateTime | None = None
    webUrl: str | None = None
    originalUrl: str | None = None
    ampWebUrl: str | None = None
    cdnAmpWebUrl: str | None = None
    type: str | None = None
    quality: OptionalInt = None
    provider: Provider | None = None
    images: ImageList = Field(default_factory=list)


class _RelatedEntryModel(_ArticleFields):
    title: str | None = None


# typing_extensions.TypedDict called at run time, with a name and fields only known
# then: type checkers cannot follow such a call (they see the aliases below instead).
_make_typed_dict: Any = TypedDict


def _dict_type(name: str, model: type[BaseModel], **replace: Any) -> Any:
    """A TypedDict with ``model``'s fields and rules (``replace`` swaps a field's type).

    pydantic validates into a plain dict about twice as fast as into a model
    instance, which counts for the 160k related entries of a corpus. Keys a
    document leaves out are absent from the dict (read them with ``.get``).
    """
    fields: dict[str, Any] = {}
    for field, info in model.model_fields.items():
        if field in replace:
            fields[field] = replace[field]
        elif info.metadata:
            fields[field] = Annotated[(info.annotation, *info.metadata)]
        else:
            fields[field] = info.annotation
    typed = _make_typed_dict(name, fields, total=False)
    typed.__pydantic_config__ = model.model_config
    return typed


if TYPE_CHECKING:
    # What validation gives the rest of the code: plain dicts, read with ``.get``.
    SnippetImage: TypeAlias = dict[str, Any]
    SnippetProvider: TypeAlias = dict[str, Any]
    RelatedEntry: TypeAlias = dict[str, Any]
else:
    # Snippets' images are validated (a broken one drops the entry) but not kept.
    SnippetImage = _dict_type("SnippetImage", Image)
    SnippetImages = Annotated[list[SnippetImage], BeforeValidator(_none_to_empty)]
    SnippetProvider = _dict_type("SnippetProvider", Provider, images=SnippetImages)
    RelatedEntry = _dict_type(
        "RelatedEntry", _RelatedEntryModel, provider=SnippetProvider | None, images=SnippetImages
    )
_validate_related_entry = TypeAdapter(RelatedEntry).validate_python


class NewsDocument(_ArticleFields):
    title: str
    category: str | None = None
    heat: OptionalInt = None
    published: bool | None = None
    removed: bool = False
    featuredContent: Any = None
    topics: list[str] = Field(default_factory=list)
    if TYPE_CHECKING:
        # validate_document puts None where it dropped a broken entry (keeps positions).
        related: list[RelatedEntry | None]
    else:
        # A broken related entry does not reject the document: see validate_document.
        related: Annotated[list[RelatedEntry], BeforeValidator(_none_to_empty)] = Field(
            default_factory=list
        )
    secured: str | None = None

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title is empty")
        return value

    @field_validator("topics", mode="before")
    @classmethod
    def _topics_as_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("removed", mode="before")
    @classmethod
    def _null_false(cls, value: Any) -> Any:
        return False if value is None else value


ENTRY_CACHE = 8192  # validated related entries kept per process (the corpus has ~3,500)

# id(a parsed related entry) -> (that entry, its validated value). etl.extract.shared_items
# gives every document that lists an item the same parsed object: validated once.
_validated: dict[int, tuple[Any, RelatedEntry]] = {}


def validate_document(front_matter: dict[str, Any]) -> tuple[NewsDocument, list[str]]:
    """The validated document and warnings for related entries that were dropped.

    The document without its related list is validated in one call, then each entry,
    each parsed entry object once per process (they are shared, and never changed).
    A broken entry is dropped with a warning; anything else broken rejects the
    document, with every problem the whole mapping has.
    """
    related = front_matter.get("related")
    if not isinstance(related, list):
        return _validate_whole(front_matter)
    rest = {key: value for key, value in front_matter.items() if key != "related"}
    try:
        doc = NewsDocument.model_validate(rest)
    except ValidationError:
        return _validate_whole(front_matter)  # raises, naming every problem
    return doc, _add_entries(doc, related)


def _validated_entry(entry: Any) -> RelatedEntry:
    found = _validated.get(id(entry))
    if found is not None and found[0] is entry:
        return found[1]
    value: RelatedEntry = _validate_related_entry(entry)
    if len(_validated) >= ENTRY_CACHE:
        _validated.clear()
    _validated[id(entry)] = (entry, value)
    return value


def _validate_whole(front_matter: dict[str, Any]) -> tuple[NewsDocument, list[str]]:
    """The whole mapping in one call; when only related entries are broken, the
    document without them, and each entry alone (the broken ones dropped)."""
    try:
        return NewsDocument.model_validate(front_matter), []
    except ValidationError as exc:
        if any(problem["loc"][:1] != ("related",) for problem in exc.errors()):
            raise
    rest = {key: value for key, value in front_matter.items() if key != "related"}
    doc = NewsDocument.model_validate(rest)
    raw = front_matter["related"]
    if not isinstance(raw, list):
        return doc, [f"related dropped: a list was expected, not {type(raw).__name__}"]
    return doc, _add_entries(doc, raw)


def _add_entries(doc: NewsDocument, entries: list[Any]) -> list[str]:
    """Validate ``entries`` one by one into ``doc.related``; the broken ones are dropped
    (None keeps the positions), a warning each."""
    warnings = []
    for position, entry in enumerate(entries):
        try:
            doc.related.append(_validated_entry(entry))
        except ValidationError as exc:
            doc.related.append(None)
            warnings.append(f"related[{position}] dropped: {format_validation_error(exc)}")
    return warnings


_DOCUMENT_KEYS = frozenset(NewsDocument.model_fields)
_RELATED_KEYS = frozenset(_RelatedEntryModel.model_fields)
_PROVIDER_KEYS = frozenset(Provider.model_fields)
_IMAGE_KEYS = frozenset(Image.model_fields)
_PLAIN_PROVIDER_KEYS = _PROVIDER_KEYS - {"images"}  # a provider without logos to look into


def unknown_keys(front_matter: dict[str, Any], doc: NewsDocument) -> dict[str, Any]:
    """Every key the models do not know, by dotted path (``provider.logo``, ``images[0].alt``).

    Read from the raw mapping that validated as ``doc``; related entries that
    ``validate_document`` dropped contribute nothing.
    """
    found: dict[str, Any] = {}
    _collect(found, front_matter, _DOCUMENT_KEYS, "")
    _collect_provider(found, front_matter.get("provider"), "provider.")
    _collect_images(found, front_matter.get("images"), "images")
    related = front_matter.get("related")
    if isinstance(related, list):
        # The hot loop (160k entries per corpus): each distinct entry is looked into once.
        for index, (entry, kept) in enumerate(zip(related, doc.related, strict=False)):
            if kept is None or not isinstance(entry, dict):
                continue
            unknown = _entry_unknowns(entry)
            if unknown:
                prefix = f"related[{index}]."
                for key, value in unknown:
                    found[prefix + key] = value
    return found


# id(a parsed related entry) -> (that entry, the keys the models do not know in it, by
# their path in the entry, with their values): looked into once per entry, as _validated.
_unknown_in_entries: dict[int, tuple[Any, tuple[tuple[str, Any], ...]]] = {}


def _entry_unknowns(entry: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    cached = _unknown_in_entries.get(id(entry))
    if cached is not None and cached[0] is entry:
        return cached[1]
    found: dict[str, Any] = {}
    _collect(found, entry, _RELATED_KEYS, "")
    provider = entry.get("provider")
    if isinstance(provider, dict) and not _PLAIN_PROVIDER_KEYS.issuperset(provider):
        _collect_provider(found, provider, "provider.")
    if entry.get("images"):
        _collect_images(found, entry["images"], "images")
    unknown = tuple(found.items())
    if len(_unknown_in_entries) >= ENTRY_CACHE:
        _unknown_in_entries.clear()
    _unknown_in_entries[id(entry)] = (entry, unknown)
    return unknown


def _collect(found: dict[str, Any], mapping: Any, known: frozenset[str], prefix: str) -> None:
    # issuperset first: no throwaway set per mapping, unlike `mapping.keys() - known`.
    if isinstance(mapping, dict) and not known.issuperset(mapping):
        for key, value in mapping.items():
            if key not in known:
                found[f"{prefix}{key}"] = value


def _collect_provider(found: dict[str, Any], provider: Any, prefix: str) -> None:
    if isinstance(provider, dict):
        _collect(found, provider, _PROVIDER_KEYS, prefix)
        _collect_images(found, provider.get("images"), prefix + "images")


def _collect_images(found: dict[str, Any], items: Any, prefix: str) -> None:
    if isinstance(items, list):
        for index, image in enumerate(items):
            if isinstance(image, dict) and not _IMAGE_KEYS.issuperset(image):
                _collect(found, image, _IMAGE_KEYS, f"{prefix}[{index}].")


def _strings(value: Any) -> Any:
    """A lone string is a one-item list; null is an empty one."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


StringList = Annotated[list[str], BeforeValidator(_strings)]


def _image_items(value: Any) -> Any:
    """Taxonomy images are URLs or ``{url, width, height}`` mappings."""
    value = _none_to_empty(value)
    if isinstance(value, list):
        return [{"url": item} if isinstance(item, str) else item for item in value]
    return value


TaxonomyImages = Annotated[list[Image], BeforeValidator(_image_items)]


class _Entry(_Model):
    # Keys these models do not name go to source_*.extra (etl.transform.taxonomy reads them raw).
    name: str = Field(min_length=1)
    images: TaxonomyImages = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class TopicEntry(_Entry):
    """One ``_data/topics/NN-slug.yaml`` file."""

    id: str | None = Field(default=None, alias="_id")
    shortname: str | None = None
    parent: str | None = None
    keywords: StringList = Field(default_factory=list)
    hashtags: StringList = Field(default_factory=list)
    services: dict[str, Any] | None = None


class Organization(_Entry):
    """One ``_data/organizations/<domain>.md`` file's front-matter."""

    domain: str | None = None


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: ``publishedDateTime: Input should be a valid datetime``."""
    parts = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "front-matter"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)
