"""The ``source_files`` rows: which file holds which content, and the article it describes.

Owns every statement on ``source_files``: what the last load recorded of each file
(:func:`known_files`, for a re-run's quick check), what a batch's files say now
(:func:`record_sources`, with the stamp each document carries), new stamps of files
touched but not edited (:func:`refresh_stamps`), the files ``--prune`` forgets
(:func:`forget_files`), and what load asks while it settles a batch (which articles
files describe, which files describe articles). Load reaches these through
:data:`LEDGER`, the ledger as ``etl.records.LoadLedger`` describes it, which the
runner hands to load: load never imports the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, delete, select, update

from etl.db.schema import source_files, sources
from etl.db.sql import in_conditions, transaction, upsert
from etl.ledger.runs import add_counts
from etl.records import Candidate, FileKey, FileStamp, LoadLedger, Stored, TransformedDocument


def known_files(conn: Connection, source_ids: Sequence[int]) -> dict[FileKey, Stored]:
    """What the last load recorded of every file of the given sources.

    One plain query: on a re-run it is several times faster than asking for the
    files a block at a time, and on a first load it is empty.
    """
    columns = (
        source_files.c.source_id,
        source_files.c.path,
        source_files.c.content_hash,
        source_files.c.size,
        source_files.c.mtime_ns,
    )
    with transaction(conn):
        # all(): the driver's fetchall, not a fetch per row (5,000 rows: ~10 ms less).
        rows = conn.execute(
            select(*columns).where(source_files.c.source_id.in_(list(source_ids)))
        ).all()
    return {FileKey(row[0], row[1]): Stored(row[2], row[3], row[4]) for row in rows}


SOURCE_FILE_COLUMNS = (
    "content_hash",
    "size",
    "mtime_ns",
    "article_id",
    "canonical_url",
    "published_at",
    "loaded_at",
    "last_run_id",
)


def record_sources(
    conn: Connection,
    docs: Sequence[TransformedDocument],
    source_ids: Mapping[str, int],
    article_ids: Mapping[str, int],
    at: datetime,
    run_id: int | None,
) -> None:
    """Record what each file says now (its URL, date and content), with its stamp."""
    rows = []
    for d in sorted(docs, key=lambda d: (d.source, d.source_key)):
        stamp = d.stamp
        rows.append(
            {
                "source_id": source_ids[d.source],
                "path": d.source_key,
                "content_hash": d.content_hash,
                "size": stamp.size if stamp else None,
                "mtime_ns": stamp.mtime_ns if stamp else None,
                "article_id": article_ids[d.article.url],
                "canonical_url": d.article.url,
                "published_at": d.article.published_at,
                "loaded_at": at,
                "last_run_id": run_id,
            }
        )
    upsert(
        conn,
        source_files,
        rows,
        ["source_id", "path"],
        lambda table, new: [(name, new[name]) for name in SOURCE_FILE_COLUMNS],
    )


def refresh_stamps(conn: Connection, stamps: Mapping[FileKey, FileStamp]) -> None:
    """Record new stamps of files whose content turned out unchanged (touched, not edited)."""
    if not stamps:
        return
    stmt = (
        update(source_files)
        .where(
            source_files.c.source_id == bindparam("b_source_id"),
            source_files.c.path == bindparam("b_path"),
        )
        .values(size=bindparam("b_size"), mtime_ns=bindparam("b_mtime_ns"))
    )
    conn.execute(
        stmt,
        [
            {"b_source_id": sid, "b_path": path, "b_size": stamp.size, "b_mtime_ns": stamp.mtime_ns}
            for (sid, path), stamp in sorted(stamps.items())
        ],
    )


def forget_files(conn: Connection, gone: Sequence[FileKey]) -> set[int]:
    """Delete the rows of files that disappeared; the articles they described."""
    affected: set[int] = set()
    by_source: dict[int, list[str]] = {}
    for source_id, path in gone:
        by_source.setdefault(source_id, []).append(path)
    for source_id, paths in sorted(by_source.items()):
        for condition in in_conditions(conn, source_files.c.path, paths):
            where = and_(source_files.c.source_id == source_id, condition)
            affected.update(
                conn.execute(
                    select(source_files.c.article_id).where(
                        where, source_files.c.article_id.is_not(None)
                    )
                ).scalars()
            )
            conn.execute(delete(source_files).where(where))
    return affected


def described_articles(conn: Connection, files: Iterable[FileKey]) -> set[int]:
    """The ids of the articles the recorded ``files`` describe (a file whose URL
    changed still describes its old one here, until its row is recorded again)."""
    found: set[int] = set()
    keyed: dict[int, list[str]] = defaultdict(list)
    for source_id, path in files:
        keyed[source_id].append(path)
    for source_id, paths in keyed.items():
        for condition in in_conditions(conn, source_files.c.path, paths):
            found.update(
                conn.execute(
                    select(source_files.c.article_id).where(
                        source_files.c.source_id == source_id,
                        condition,
                        source_files.c.article_id.is_not(None),
                    )
                ).scalars()
            )
    return found


def recorded_files(conn: Connection, article_ids: Iterable[int]) -> Iterator[Candidate]:
    """Every recorded file that describes one of the articles ``article_ids``, with its
    source's name and root (a file of a source this run does not load included)."""
    columns = (
        source_files.c.source_id,
        sources.c.name,
        sources.c.root,
        source_files.c.path,
        source_files.c.published_at,
        source_files.c.content_hash,
        source_files.c.article_id,
    )
    for condition in in_conditions(conn, source_files.c.article_id, article_ids):
        query = (
            select(*columns)
            .join(sources, sources.c.id == source_files.c.source_id)
            .where(condition)
        )
        for row in conn.execute(query):
            yield Candidate(*row)


class _LoadLedger:
    """The ledger as load sees it (``etl.records.LoadLedger``)."""

    described_articles = staticmethod(described_articles)
    recorded_files = staticmethod(recorded_files)
    record_files = staticmethod(record_sources)
    add_counts = staticmethod(add_counts)


LEDGER: LoadLedger = _LoadLedger()
