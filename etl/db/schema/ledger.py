"""What the ledger and each source keep beside the news: files, runs, taxonomies, rejects.

Owns ``source_files`` (which file holds which content), ``etl_runs`` (one row per run,
a count column for each field of ``etl.records.Counts``), each source's declared
taxonomy (``source_topics``, ``source_providers``) and ``rejected_documents``. One
module for all of them because the data dictionary lists tables in the order they are
defined, and these come between the news tables and the change feed's.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from etl.db.schema.base import UTCDateTime, metadata
from etl.records import COUNTER_NAMES

source_files = Table(
    "source_files",
    metadata,
    Column(
        "source_id",
        Integer,
        ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The source (tree) the file belongs to.",
    ),
    Column(
        "path",
        String(700),
        primary_key=True,
        comment="The file's path relative to its source's root.",
    ),
    Column(
        "content_hash",
        String(64),
        nullable=False,
        comment="sha256 of the file's bytes when last read.",
    ),
    # The file's size and mtime when it was hashed: equal on the next run means
    # unchanged without reading it. NULL when the mtime was too recent to trust.
    Column(
        "size",
        BigInteger,
        comment="The file's size in bytes when hashed (NULL if it was modified within "
        "2 s of that).",
    ),
    Column(
        "mtime_ns",
        BigInteger,
        comment="The file's modification time in ns when hashed (NULL if modified within "
        "2 s of that); size and mtime equal on a re-run mean unchanged, not read.",
    ),
    Column(
        "article_id",
        Integer,
        ForeignKey("articles.id", ondelete="SET NULL"),
        index=True,
        comment="The article at the file's canonical URL (articles.id). Two files with "
        "one URL both point to it; the document that wins supplies the article's data.",
    ),
    Column("canonical_url", Text, comment="The canonical URL of the file's document."),
    Column(
        "published_at",
        UTCDateTime(),
        comment="The file's `publishedDateTime` (decides which of two files with one URL wins).",
    ),
    Column(
        "loaded_at",
        UTCDateTime(),
        nullable=False,
        comment="When the file's content was last loaded (UTC).",
    ),
    Column("last_run_id", Integer, comment="The run (etl_runs.id) that last loaded the file."),
    comment="Every input file loaded, one row per path. An article whose files are all "
    "gone is marked is_removed by `etl run --prune`, which also deletes their rows.",
)

# etl_runs has one column per field of etl.records.Counts, described here, in the
# table's column order: the order the migrations added them in (0001, 0003, 0012),
# which existing databases keep and which is not the order of Counts' fields.
RUN_COUNTERS: dict[str, str] = {
    "files_seen": "Files found under the run's PATHS (in its shard).",
    "files_skipped_unchanged": "Files not loaded because they did not change since their last "
    "load (same size and mtime, or same content).",
    "articles_inserted": "Full articles the run's transactions made of rows that were not full "
    "articles before them (new, a stub filled, or a tombstone back).",
    "articles_updated": "Full articles the run's transactions rewrote with another document "
    "(another fingerprint).",
    "articles_unchanged": "Files the run loaded whose article already held exactly their "
    "document (nothing written).",
    "articles_removed": "Full articles the run's transactions left described by no file "
    "(tombstones, or stubs when links point at them).",
    "stubs_created": "Stubs the run's transactions made of rows that were not stubs before "
    "them (new link targets, tombstones linked again).",
    "stubs_deleted": "Stubs the run's transactions ended: deleted (no link references them), "
    "filled by their own document, or made tombstones.",
    "links_written": "The links (related_articles rows) of the articles the run inserted or "
    "updated, as each transaction wrote them.",
    "documents_rejected": "Documents rejected (see rejected_documents).",
    "warnings": "Warnings, e.g. related entries without a usable URL, dropped.",
    "duplicates": "Files the run loaded that lose their URL to another file (the later "
    "`publishedDateTime` wins; ties: the greater source name, then path).",
    "links_added": "related_articles rows the run's transactions added (the article's "
    "links before the transaction did not have them).",
    "links_removed": "related_articles rows the run's transactions removed.",
}


def _counter_columns() -> list[Column[int]]:
    """A column for each counter of ``Counts``: an integer, 0 until a transaction adds to it.

    A counter without a column (or a column without a counter) stops the import: the
    ledger writes every counter to its column, and a new one needs a migration too.
    """
    if set(RUN_COUNTERS) != set(COUNTER_NAMES):
        raise RuntimeError(
            "etl_runs' counters and etl.records.Counts differ: "
            f"{sorted(set(RUN_COUNTERS) ^ set(COUNTER_NAMES))}"
        )
    return [
        Column(name, Integer, nullable=False, server_default="0", comment=comment)
        for name, comment in RUN_COUNTERS.items()
    ]


etl_runs = Table(
    "etl_runs",
    metadata,
    Column("id", Integer, primary_key=True, comment="Run number."),
    Column("started_at", UTCDateTime(), nullable=False, comment="Start of the run (UTC)."),
    Column("finished_at", UTCDateTime(), comment="End of the run (UTC); NULL while running."),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="`running`, `succeeded`, `partial` (some documents rejected), `failed` or "
        "`interrupted` (stopped by a signal, or its process died).",
    ),
    Column("arguments", JSON, comment="The run's options (paths, prune, shard, ...) (JSON)."),
    *_counter_columns(),
    Column("error", Text, comment="Why a failed or interrupted run stopped."),
    Index("ix_etl_runs_started_at", "started_at"),
    comment="One row per `etl run`. Each count is added by the transaction that commits "
    "what it counts, so a stopped run keeps the counts of what it committed.",
)

# A source's topic taxonomy (``_data/topics/NN-slug.yaml``): each site keeps its own
# hierarchy over the shared topics (identified, as everywhere, by the slug of the name).
source_topics = Table(
    "source_topics",
    metadata,
    Column(
        "source_id",
        Integer,
        ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The source (site) whose taxonomy this entry is.",
    ),
    Column(
        "topic_id",
        Integer,
        ForeignKey("topics.id"),
        primary_key=True,
        index=True,
        comment="The topic (identified, as everywhere, by the slug of its name).",
    ),
    Column(
        "parent_topic_id",
        Integer,
        ForeignKey("topics.id"),
        index=True,
        comment="Its parent in this source's hierarchy (`parent`, by name); NULL for a root.",
    ),
    Column(
        "parent_name",
        Text,
        comment="`parent` as the entry writes it (whitespace-collapsed); it names the "
        "topic when this taxonomy has no entry of its own for it.",
    ),
    # The NN- prefix of the taxonomy file's name, which orders the site's taxonomy.
    Column(
        "position",
        Integer,
        comment="The `NN-` prefix of the taxonomy file's name, which orders the site's taxonomy.",
    ),
    Column("name", Text, nullable=False, comment="The name as the taxonomy writes it."),
    Column("shortname", Text, comment="`shortname` as given."),
    Column(
        "taxonomy_id", Text, comment="`_id` as given (the slug of the name on every site checked)."
    ),
    Column("keywords", JSON, comment="`keywords` (JSON list)."),
    Column("hashtags", JSON, comment="`hashtags` (JSON list)."),
    Column("images", JSON, comment="`images` (JSON)."),
    Column("services", JSON, comment="`services`: a map of URLs (JSON)."),
    Column("extra", JSON, comment="Other keys of the entry (JSON)."),
    Column(
        "file",
        String(700),
        nullable=False,
        comment="The taxonomy file, relative to the source's root.",
    ),
    comment="Each source's topic taxonomy (`_data/topics/NN-slug.yaml`): its own hierarchy over "
    "the shared topics.",
)

# The organizations a source declares (``_data/organizations/<domain>.md``): providers
# that stay while declared, whose declared name and logos beat what documents say.
source_providers = Table(
    "source_providers",
    metadata,
    Column(
        "source_id",
        Integer,
        ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The source (site) that declares the organization.",
    ),
    Column(
        "provider_id",
        Integer,
        ForeignKey("providers.id"),
        primary_key=True,
        index=True,
        comment="The provider it declares.",
    ),
    Column(
        "name",
        Text,
        nullable=False,
        comment="The name the organization file gives (beats names from documents).",
    ),
    Column("images", JSON, comment="The organization's logos as declared (JSON)."),
    Column("extra", JSON, comment="Other keys of the organization file (JSON)."),
    Column(
        "file",
        String(700),
        nullable=False,
        comment="The organization file, relative to the source's root.",
    ),
    comment="The organizations each source declares (`_data/organizations/<domain>.md`): "
    "providers kept while declared.",
)

rejected_documents = Table(
    "rejected_documents",
    metadata,
    Column("id", Integer, primary_key=True, comment="Surrogate key."),
    Column(
        "run_id",
        Integer,
        ForeignKey("etl_runs.id", ondelete="CASCADE"),
        index=True,
        comment="The run that rejected it (etl_runs.id).",
    ),
    Column("source_path", Text, nullable=False, comment="The file rejected."),
    Column("error", Text, nullable=False, comment="Why it was rejected."),
    Column("line", Integer, comment="Line of a YAML error, if any."),
    Column("column", Integer, comment="Column of a YAML error, if any."),
    Column("content_hash", String(64), comment="sha256 of the file's bytes, if read."),
    Column("rejected_at", UTCDateTime(), nullable=False, comment="When (UTC)."),
    comment="Documents a run refused, with the reason; a fixed file loads on the next run.",
)
