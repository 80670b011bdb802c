"""The contract between stages: every type that crosses a stage boundary.

Files found by discovery (``SourceFile``, ``FileStamp``), a recorded file's identity
(``FileKey``: source id and path, the one key of a file across ledger, load and
runner) and what the ledger holds of it (``Stored``, ``Candidate``), what extract
hands to transform (``RawDocument``, or a ``DocumentError``), the records transform
hands to load (one frozen dataclass per normalized entity, ``TransformedDocument``
per file, carrying the file's stamp), what a worker reports for a file
(``Outcome``), what load asks of the ledger (``LoadLedger``, which the ledger
implements: load never imports it), the counts a run reports (``Counts``,
``RunSummary``; one definition of the counter names, which ``etl_runs`` has a
column each for, and the summary line and ``--json`` are made of), and the values
stored as strings (``RunStatus``, ``ChangeOp``). It imports nothing heavy, so the
loader (and a run that finds nothing to parse) never loads pydantic or the YAML
parsers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection

_EPOCH = datetime.min.replace(tzinfo=UTC)


def winner_key(published_at: datetime | None, *tiebreak: str) -> tuple[Any, ...]:
    """Of two documents with one URL, the greater key wins: the later date, then the
    greater tie-break (for source files: the source's name, then the path)."""
    return (published_at or _EPOCH, *tiebreak)


# Bump when a rule changes what a document normalizes to: every article is then
# rewritten on its next load, even though its file did not change.
RULES_VERSION = "2"


def fingerprint(source: str, key: str, content_hash: str) -> str:
    """Identifies what the database holds for a document: a pure function of its file.

    The record is determined by (rules, source, path, content), so hashing those is
    as good as hashing the record, and thousands of times cheaper. The loader
    compares it with what an article holds without reading the file.
    """
    return hashlib.sha256(f"{RULES_VERSION}\0{source}\0{key}\0{content_hash}".encode()).hexdigest()


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
    source: str = ""  # the name of the source (tree) the file belongs to
    # Size and mtime seen before the file was read, recorded with its content (set by
    # the runner; None: not known or not to be trusted, so the next run reads it).
    stamp: FileStamp | None = None

    @property
    def winner_key(self) -> tuple[Any, ...]:
        return winner_key(self.article.published_at, self.source, self.source_key)


# --- a site's taxonomy (etl.transform.taxonomy) -------------------------------------------


@dataclass(frozen=True, slots=True)
class TaxonomyTopic:
    """One entry of a source's topic taxonomy (``_data/topics/NN-slug.yaml``)."""

    topic: TopicRecord  # slug and name (its position is unused: see `position`)
    parent: TopicRecord | None
    position: int | None  # the file name's NN- prefix; None without one
    shortname: str | None
    taxonomy_id: str | None
    keywords: tuple[str, ...]
    hashtags: tuple[str, ...]
    images: tuple[str, ...]
    services: dict[str, Any] | None
    extra: dict[str, Any] | None
    file: str  # relative to the source's root


@dataclass(frozen=True, slots=True)
class DeclaredProvider:
    """One organization a source declares (``_data/organizations/<domain>.md``)."""

    provider: ProviderRecord  # domain, declared name, logos
    extra: dict[str, Any] | None
    file: str


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """What a source's ``_data/`` says, and the files it could not read."""

    topics: tuple[TaxonomyTopic, ...] = ()
    providers: tuple[DeclaredProvider, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    content: str = ""  # a digest of the files' names and bytes: equal means the same taxonomy
    warnings: tuple[str, ...] = ()  # each names its file: what was read, and what was not


# --- files and documents -------------------------------------------------------


class DocumentError(Exception):
    """A document that cannot be loaded, with the reason and (for YAML) its position."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.reason} (line {self.line}, column {self.column})"
        return self.reason


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to load: its stable key (path relative to its source's root), that root,
    and the source's name.

    Files found under one root share its strings, so a 50,000-file run holds one
    short key per file rather than a full path too.
    """

    root: str
    key: str
    source: str = ""

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.key)


class FileStamp(NamedTuple):
    """What a re-run compares before reading a file: its size and modification time."""

    size: int
    mtime_ns: int


class FileKey(NamedTuple):
    """A recorded file: its source's id (``sources.id``) and its path in that source,
    the key of its ``source_files`` row."""

    source_id: int
    path: str


class Stored(NamedTuple):
    """What the ledger recorded of a file when it last loaded it."""

    content_hash: str
    size: int | None
    mtime_ns: int | None

    def stamped(self, stamp: FileStamp | None) -> bool:
        """Whether ``stamp`` is the recorded one: the file need not be read. A file
        without a stamp to trust (None), or recorded without one, never is."""
        return stamp is not None and (self.size, self.mtime_ns) == stamp


class Candidate(NamedTuple):
    """A recorded file that describes an article's URL, as ``source_files`` has it."""

    source_id: int
    source: str
    root: str
    path: str
    published_at: datetime | None
    content_hash: str
    article_id: int

    @property
    def file(self) -> FileKey:
        return FileKey(self.source_id, self.path)

    @property
    def winner_key(self) -> tuple[Any, ...]:
        return winner_key(self.published_at, self.source, self.path)


@dataclass(frozen=True, slots=True)
class RawDocument:
    source: SourceFile
    content_hash: str
    front_matter: dict[str, Any]
    body: str


# --- what a worker reports for a file -----------------------------------------------


class Unchanged(NamedTuple):
    """A file whose content hash equals the one recorded: nothing to parse or write."""

    key: str


@dataclass(frozen=True, slots=True)
class Rejection:
    path: str
    error: str
    line: int | None = None
    column: int | None = None
    content_hash: str | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}:{self.column}"
        return f"{where}: {self.error}"


Outcome = TransformedDocument | Rejection | Unchanged


# --- counts -------------------------------------------------------------------------


@dataclass
class Counts:
    """What a run counts; ``etl_runs`` has a column of the same name for each field."""

    files_seen: int = 0
    files_skipped_unchanged: int = 0
    articles_inserted: int = 0
    articles_updated: int = 0
    articles_unchanged: int = 0
    articles_removed: int = 0
    # Files whose canonical URL another file with a later date (or greater path) holds.
    duplicates: int = 0
    stubs_created: int = 0
    stubs_deleted: int = 0
    links_written: int = 0
    links_added: int = 0
    links_removed: int = 0
    documents_rejected: int = 0
    warnings: int = 0

    def add(self, other: Counts) -> None:
        for name in COUNTER_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def nonzero(self) -> dict[str, int]:
        """The counters that are not 0, by name."""
        return {name: value for name in COUNTER_NAMES if (value := getattr(self, name))}


COUNTER_NAMES: tuple[str, ...] = tuple(item.name for item in fields(Counts))

# The summary line ``etl run`` prints, its counters by name; those it leaves out are
# LINE_OMITS (tests/test_counts_contract.py holds both to Counts).
SUMMARY_LINE = (
    "{files_seen} files ({files_skipped_unchanged} unchanged, skipped): "
    "{articles_inserted} articles inserted, {articles_updated} updated, "
    "{articles_unchanged} unchanged, {articles_removed} removed, "
    "{duplicates} duplicates; "
    "{stubs_created} stubs created, {stubs_deleted} deleted; "
    "{links_added} links added, {links_removed} removed; "
    "{documents_rejected} documents rejected"
)
LINE_OMITS = frozenset({"links_written", "warnings"})


class RunStatus(StrEnum):
    """A run's status, as ``etl_runs.status`` stores it (a str: the stored values are
    these strings)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # finished, some documents rejected
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by a signal, or its process died
    # Never stored: what `etl runs` reports for a run left `running` whose process is gone.
    ABANDONED = "abandoned"


@dataclass
class RunSummary(Counts):
    """What a run did; ``etl run --json`` prints exactly ``to_dict()``."""

    run_id: int | None = None
    status: RunStatus = RunStatus.RUNNING
    database: str = ""
    seconds: float = 0.0
    rejected: list[Rejection] = field(default_factory=list)
    error: str | None = None
    dry_run: bool = False  # computed inside a transaction that was rolled back
    sources: list[str] = field(default_factory=list)  # the names of the sources it loaded
    # Where the time went, in seconds (etl.db.timing); not stored in etl_runs.
    timings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["rejected"] = [asdict(item) for item in self.rejected]
        return data

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_NAMES}

    def line(self) -> str:
        return (
            f"{SUMMARY_LINE.format_map(self.counts())} "
            f"[{self.status}{', dry run: nothing written' if self.dry_run else ''}, "
            f"{self.seconds:.1f}s{self._sources_note()}]"
        )

    def _sources_note(self) -> str:
        if not self.sources:
            return ""
        return f"; source{'s' if len(self.sources) > 1 else ''} {', '.join(self.sources)}"

    def merge(self, part: RunSummary) -> None:
        """Add the counts, rejections and timings of a part of this run (a worker's chunk)."""
        self.add(part)
        self.rejected.extend(part.rejected)
        add_timings(self.timings, part.timings)


def add_timings(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add ``part``'s seconds to ``total``'s, key by key, nested dicts too."""
    for name, value in part.items():
        if isinstance(value, dict):
            add_timings(total.setdefault(name, {}), value)
        else:
            total[name] = total.get(name, 0.0) + value


class LoadLedger(Protocol):
    """What load reads from and reports to the ledger: the files recorded for articles,
    what a batch's files say now, and the counts of a transaction. The ledger
    implements it (``etl.ledger.files.LEDGER``) and the runner hands it to
    ``etl.load.load.settle`` and ``etl.load.tally.counted``: load never imports the
    ledger. Each call runs in the caller's transaction."""

    def described_articles(self, conn: Connection, files: Iterable[FileKey]) -> set[int]:
        """The ids of the articles the recorded ``files`` describe."""
        ...

    def recorded_files(self, conn: Connection, article_ids: Iterable[int]) -> Iterator[Candidate]:
        """Every recorded file that describes one of the articles ``article_ids``."""
        ...

    def record_files(
        self,
        conn: Connection,
        docs: Sequence[TransformedDocument],
        source_ids: Mapping[str, int],
        article_ids: Mapping[str, int],
        at: datetime,
        run_id: int | None,
    ) -> None:
        """Record what each file says now (its URL, date and content), with its stamp."""
        ...

    def add_counts(self, conn: Connection, run_id: int | None, counts: Counts) -> None:
        """Add ``counts`` to the run's row."""
        ...


class ChangeOp(StrEnum):
    """An article's state after a change, as ``article_changes.op`` stores it (the
    triggers of migration 0006 write these strings)."""

    UPSERT = "upsert"  # the row exists and is not removed
    REMOVE = "remove"  # is_removed is true
    DELETE = "delete"  # the row is gone


class ConfigurationError(Exception):
    """A usage or configuration problem (exit code 2)."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached or used (exit code 3)."""


class RunAborted(Exception):
    """The run stopped for a reason that is no document's fault: a worker process died
    (killed, out of memory) or hit a bug. Exit code 3; the run is recorded as failed."""


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGTERM, SIGINT): its workers were stopped, its
    open batch rolled back, and it is recorded as ``interrupted``. A KeyboardInterrupt,
    so that code which stops on Ctrl-C stops on it too; the ``etl`` command exits with
    128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.summary: RunSummary | None = None  # what the run did before it stopped
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
