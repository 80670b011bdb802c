"""Load: normalized news records -> the news tables, one batch at a time.

Owns what the news entities mean in SQL: articles, providers, topics, images,
their child rows, stubs, and the entities nothing references any more. Every
statement goes through the per-dialect toolkit in ``etl.db.sql``; the caller holds
the writer transaction. This module elects, for each URL a batch touches, the file
whose document its article holds (:func:`settle`); ``etl.load.writes`` writes the
articles and their child rows, ``etl.load.stubs`` the rows no file describes.

Each article row keeps what its file says of its provider, topics, images and logos;
the derived columns of those entities are recomputed from such rows, for exactly the
entities a write touched, by ``etl.load.aggregates``.

Which files describe which article (``source_files``) is the ledger's: :func:`settle`
asks it and reports to it through the ``etl.records.LoadLedger`` the runner passes in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    Connection,
    select,
)

from etl.db.schema import (
    articles,
)
from etl.db.sql import ids_by, in_conditions
from etl.load.aggregates import (
    defer,
    references,
)
from etl.load.prepared import Prepared
from etl.load.stubs import make_tombstones
from etl.load.tally import Tally
from etl.load.unchanged import unchanged_references
from etl.load.writes import write_articles
from etl.records import (
    Candidate,
    FileKey,
    LoadLedger,
    TransformedDocument,
    fingerprint,
)


@dataclass(frozen=True, slots=True)
class _Existing:
    id: int
    url: str
    is_stub: bool
    source_path: str | None  # NULL: a stub or a tombstone, which no file describes
    fingerprint: str | None


_EXISTING_COLUMNS = (
    articles.c.id,
    articles.c.url,
    articles.c.is_stub,
    articles.c.source_path,
    articles.c.fingerprint,
)


def _existing_articles(
    conn: Connection, urls: Iterable[str], ids: Iterable[int] = ()
) -> dict[str, _Existing]:
    """The articles at ``urls`` and with ``ids``, by URL."""
    found: dict[str, _Existing] = {}
    for column, values in ((articles.c.url, urls), (articles.c.id, ids)):
        for condition in in_conditions(conn, column, values):
            for row in conn.execute(select(*_EXISTING_COLUMNS).where(condition)):
                found[row.url] = _Existing(
                    row.id, row.url, bool(row.is_stub), row.source_path, row.fingerprint
                )
    return found


# Reads a recorded file again (it wins a URL whose article does not hold it yet):
# its document, or None when it cannot be had (gone, unreadable, rejected).
Reader = Callable[[Candidate], TransformedDocument | None]


@dataclass
class _Plan:
    writes: list[TransformedDocument] = field(default_factory=list)
    to_read: list[Candidate] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)  # full articles no file describes now
    existing: dict[str, _Existing] = field(default_factory=dict)


def settle(
    conn: Connection,
    docs: Sequence[TransformedDocument],
    *,
    source_ids: Mapping[str, int],
    now: datetime,
    run_id: int | None,
    ledger: LoadLedger,
    reader: Reader,
    tally: Tally,
    affected: Iterable[int] = (),
    prepared: Prepared | None = None,
) -> None:
    """Make every article these documents (or the files behind ``affected`` article ids)
    touch equal to what the files that describe its URL now say. The caller owns the
    transaction (and holds the writer lock) and ``tally``, told of each change first;
    ``ledger`` says which files describe what, and records what the files say now.

    Of all files that describe a URL (``source_files``, with this batch's documents
    in place of what their rows said before), the winner is the one with the latest
    date, then the greatest (source name, path): the article holds exactly its
    document. A winner whose content the article does not hold yet and that is not
    in the batch is read again through ``reader``. A URL no file describes any more
    loses its article's content: it becomes a tombstone (``refresh_stubs`` turns it
    into a stub if links point at it). So the result never depends on which files
    came in which batch or run: it is a function of the files that exist.

    ``prepared``: the documents' rows made ready before the writer lock was taken.
    """
    by_file = {FileKey(source_ids[d.source], d.source_key): d for d in docs}
    # A winner may be read from a source that is not in this run: its id comes along.
    source_ids = dict(source_ids)
    reread: dict[FileKey, TransformedDocument] = {}
    excluded: set[FileKey] = set()
    affected_ids = set(affected)
    while True:
        plan = _elect(conn, by_file, ledger, affected_ids, excluded)
        if not plan.to_read:
            break
        for candidate in plan.to_read:
            doc = reader(candidate)
            if doc is None or doc.source != candidate.source:
                excluded.add(candidate.file)
            else:
                source_ids[candidate.source] = candidate.source_id
                by_file[candidate.file] = doc
                if doc.content_hash != candidate.content_hash:
                    reread[candidate.file] = doc  # changed since recorded

    ids = _write(conn, plan, source_ids, now, tally, prepared)
    recorded = [*docs, *reread.values()]
    missing = {d.article.url for d in recorded} - ids.keys()
    if missing:  # URLs of batch files that lost to files whose articles exist
        ids.update(ids_by(conn, articles, "url", missing))
    ledger.record_files(conn, recorded, source_ids, ids, now, run_id)
    tally.recorded((source_ids[d.source], d.source_key, d.article.url) for d in recorded)


def _write(
    conn: Connection,
    plan: _Plan,
    source_ids: Mapping[str, int],
    now: datetime,
    tally: Tally,
    prepared: Prepared | None,
) -> dict[str, int]:
    """Write the elected documents and make tombstones of the orphaned articles; the
    entities whose references changed are deferred to the run's end. URL -> article id
    of every URL the plan names."""
    existing = plan.existing
    replaced = [existing[d.article.url].id for d in plan.writes if d.article.url in existing]
    tally.remember(conn, [*replaced, *plan.orphaned])
    rewritten = {
        item.id: d.article
        for d in plan.writes
        if (item := existing.get(d.article.url)) is not None and item.source_path is not None
    }
    kept = unchanged_references(conn, rewritten)  # their child sets and entities stay
    # What the rewritten articles referenced: those entities are recomputed below.
    touched = references(conn, [*(i for i in replaced if i not in kept), *plan.orphaned])
    ids = {url: item.id for url, item in existing.items()}
    if plan.writes:
        written = write_articles(
            conn,
            plan.writes,
            list(rewritten),
            source_ids,
            now,
            tally,
            touched,
            prepared,
            ids,
            kept,
        )
        tally.created(i for url, i in written.items() if url not in existing)
        ids.update(written)
    make_tombstones(conn, plan.orphaned, now)
    defer(conn, touched)
    return ids


def _elect(
    conn: Connection,
    by_file: Mapping[FileKey, TransformedDocument],
    ledger: LoadLedger,
    affected: set[int],
    excluded: set[FileKey],
) -> _Plan:
    docs = list(by_file.values())
    # What the batch's files described before (a file whose URL changed no longer
    # describes its old URL): their rows' article ids.
    previous: set[int] = set(affected)
    previous.update(ledger.described_articles(conn, by_file))
    existing = _existing_articles(conn, {d.article.url for d in docs}, previous)
    url_of = {item.id: url for url, item in existing.items()}
    entries: dict[str, list[TransformedDocument | Candidate]] = defaultdict(list)
    for d in docs:
        entries[d.article.url].append(d)
    for candidate in ledger.recorded_files(conn, url_of):
        if candidate.file in by_file:
            continue  # the batch's document says what the file says now
        if candidate.file in excluded:
            continue
        entries[url_of[candidate.article_id]].append(candidate)

    plan = _Plan(existing=existing)
    for url in sorted(entries.keys() | existing.keys()):
        current = existing.get(url)
        group = entries.get(url)
        if not group:
            if current is not None and current.source_path is not None:
                plan.orphaned.append(current.id)
            continue
        winner = max(group, key=lambda item: item.winner_key)
        if isinstance(winner, Candidate):
            expected = fingerprint(winner.source, winner.path, winner.content_hash)
            if current is None or current.fingerprint != expected:
                plan.to_read.append(winner)
        elif current is None or current.fingerprint != winner.fingerprint:
            plan.writes.append(winner)
    return plan
