"""Counting what each writer transaction changes, in that transaction.

A run's counts (``etl_runs``, the summary) are the sums of what its committed
transactions changed. Each transaction that writes news tables runs inside
:func:`counted`: before it changes an article it reads that article's state (and,
for a full article, its links) under the writer lock, through :meth:`Tally.remember`
or :meth:`Tally.created`; before it commits it reads the same rows again, counts the
difference, and adds it to the run's row (``UPDATE etl_runs SET n = n + ...``) in the
same transaction. So a count is made by exactly the run whose transaction committed
the change, against the database as that transaction found it: an interrupted or
failed run keeps the counts of what it committed, concurrent runs never count each
other's work, and over any set of runs the sums telescope to the change of the tables
(articles inserted minus removed is the change in full articles; stubs created minus
deleted, the change in stubs; links added minus removed, the change in links).
No table is scanned whole: only the rows the transaction touched are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, func, select

from etl.db import timing
from etl.db.schema import articles, related_articles
from etl.db.sql import in_conditions, writer_transaction
from etl.records import Counts, LoadLedger

ABSENT, STUB, TOMBSTONE, FULL = "absent", "stub", "tombstone", "full"

State = tuple[str, str | None]  # (state, fingerprint)
_Holder = tuple[int, int | None, str | None]  # the article at a URL: (id, source id, path)

_STATE_COLUMNS = (articles.c.id, articles.c.is_stub, articles.c.source_path, articles.c.fingerprint)


def state_of(is_stub: Any, source_path: str | None) -> str:
    """An existing article's state: a stub, a tombstone (no file describes it) or full."""
    if is_stub:
        return STUB
    return TOMBSTONE if source_path is None else FULL


def transition(before: State, after: State) -> dict[str, int]:
    """What one article's change counts for (a pure rule; see the README's "Counts").

    A full article that was not full before is inserted (new, a stub filled, a
    tombstone back); full before and after with another fingerprint, updated; full
    before and not after, removed. A stub that was not a stub before is created; a stub
    that is not one after (deleted, filled, a tombstone) is deleted.
    """
    (old, old_fingerprint), (new, new_fingerprint) = before, after
    counts: dict[str, int] = {}
    if new == FULL and old != FULL:
        counts["articles_inserted"] = 1
    elif new == FULL and new_fingerprint != old_fingerprint:
        counts["articles_updated"] = 1
    elif old == FULL and new != FULL:
        counts["articles_removed"] = 1
    if new == STUB and old != STUB:
        counts["stubs_created"] = 1
    elif old == STUB and new != STUB:
        counts["stubs_deleted"] = 1
    return counts


class Tally:
    """The articles one transaction touches, as they were before it changed them, and
    the files it records; :meth:`count` compares them with what they are now."""

    def __init__(self) -> None:
        self.before: dict[int, State] = {}
        self.links_before: dict[int, set[int]] = {}
        self.files: list[tuple[int, str, str]] = []  # (source id, path, canonical URL)
        self.links_written: dict[int, int] = {}  # article id -> links this transaction wrote
        self.links_kept: set[int] = set()  # articles whose links it left as they were

    def remember(self, conn: Connection, ids: Iterable[int]) -> None:
        """Read the state of articles ``ids`` before this transaction first changes them."""
        wanted = set(ids) - self.before.keys()
        full: list[int] = []
        columns = _STATE_COLUMNS
        for condition in in_conditions(conn, articles.c.id, wanted):
            for row in conn.execute(select(*columns).where(condition)):
                state = state_of(row.is_stub, row.source_path)
                self.before[row.id] = (state, row.fingerprint)
                if state == FULL:  # only full articles have links of their own
                    full.append(row.id)
        self.links_before.update(_links(conn, full))

    def created(self, ids: Iterable[int]) -> None:
        """Articles this transaction just inserted: absent before it."""
        for article_id in ids:
            self.before.setdefault(article_id, (ABSENT, None))

    def linked(self, numbers: Iterable[tuple[int, int]]) -> None:
        """Articles (id, number of links) whose whole link set this transaction wrote."""
        self.links_written.update(numbers)

    def kept(self, ids: Iterable[int]) -> None:
        """Articles whose links this transaction leaves as they were: they are not read
        back (an edit of 1% of the corpus: thousands of rows)."""
        self.links_kept.update(ids)

    def recorded(self, files: Iterable[tuple[int, str, str]]) -> None:
        """Files (source id, path, canonical URL) whose content this transaction records."""
        self.files.extend(files)

    def count(self, conn: Connection) -> Counts:
        """What the transaction changed: read before it commits, under the writer lock."""
        counts = Counts()
        after: dict[int, State] = {}
        # What holds each URL read: the files recorded are counted against it (_count_files).
        holders: dict[str, _Holder] = {}
        columns = (*_STATE_COLUMNS, articles.c.url, articles.c.source_id)
        for condition in in_conditions(conn, articles.c.id, self.before):
            for row in conn.execute(select(*columns).where(condition)):
                after[row.id] = (state_of(row.is_stub, row.source_path), row.fingerprint)
                holders[row.url] = (row.id, row.source_id, row.source_path)
        full = [i for i, (state, _) in after.items() if state == FULL]
        # Only an article full before had links: the others' links are all new, and
        # their number is enough (a batch of new articles has thousands).
        was_full = [i for i in full if self.before[i][0] == FULL]
        links_after = _links(conn, [i for i in was_full if i not in self.links_kept])
        links_after.update(
            (i, self.links_before.get(i, set())) for i in was_full if i in self.links_kept
        )
        # A new full article's links are the ones its write inserted, all of them:
        # their number is known without reading thousands of rows back.
        fresh = [i for i in full if self.before[i][0] != FULL]
        numbers_after = {i: self.links_written[i] for i in fresh if i in self.links_written}
        numbers_after.update(_link_numbers(conn, [i for i in fresh if i not in numbers_after]))
        written: set[int] = set()
        for article_id, before in self.before.items():
            changes = transition(before, after.get(article_id, (ABSENT, None)))
            for name, value in changes.items():
                setattr(counts, name, getattr(counts, name) + value)
            if before[0] == FULL:
                old = self.links_before.get(article_id, set())
                new = links_after.get(article_id, set())
                counts.links_added += len(new - old)
                counts.links_removed += len(old - new)
                number = len(new)
            else:
                number = numbers_after.get(article_id, 0)
                counts.links_added += number
            if "articles_inserted" in changes or "articles_updated" in changes:
                written.add(article_id)
                counts.links_written += number
        self._count_files(conn, written, holders, counts)
        return counts

    def _count_files(
        self, conn: Connection, written: set[int], holders: dict[str, _Holder], counts: Counts
    ) -> None:
        """Each recorded file either holds its URL's article (which this transaction wrote
        for it, or which already held it: unchanged) or loses it to another (duplicate).
        ``holders``: the articles already read, by URL; the other URLs' are read here (in a
        full load, none: every file's article was written)."""
        columns = (articles.c.url, articles.c.id, articles.c.source_id, articles.c.source_path)
        unread = {url for _, _, url in self.files} - holders.keys()
        for condition in in_conditions(conn, articles.c.url, unread):
            for row in conn.execute(select(*columns).where(condition)):
                holders[row.url] = (row.id, row.source_id, row.source_path)
        for source_id, path, url in self.files:
            holder = holders.get(url)
            if holder is None or holder[1:] != (source_id, path):
                counts.duplicates += 1
            elif holder[0] not in written:
                counts.articles_unchanged += 1


def _links(conn: Connection, ids: Iterable[int]) -> dict[int, set[int]]:
    """Article id -> the ids its links (related_articles rows) point at."""
    found: dict[int, set[int]] = {}
    columns = (related_articles.c.article_id, related_articles.c.related_article_id)
    for condition in in_conditions(conn, related_articles.c.article_id, ids):
        for source, target in conn.execute(select(*columns).where(condition)):
            found.setdefault(source, set()).add(target)
    return found


def _link_numbers(conn: Connection, ids: Iterable[int]) -> dict[int, int]:
    """Article id -> how many links (related_articles rows) it has."""
    found: dict[int, int] = {}
    source = related_articles.c.article_id
    for condition in in_conditions(conn, source, ids):
        query = select(source, func.count()).where(condition).group_by(source)
        found.update((row[0], row[1]) for row in conn.execute(query))
    return found


@contextmanager
def counted(
    conn: Connection,
    run_id: int | None,
    total: Counts,
    extra: Counts,
    ledger: LoadLedger,
    before_lock: Callable[[], None] | None = None,
) -> Iterator[Tally]:
    """A writer transaction whose changes are counted and recorded as it commits.

    The body reports what it touches to the yielded :class:`Tally`; before the commit
    its counts, plus ``extra`` (what the caller counts itself: warnings, files found
    unchanged), are added to run ``run_id``'s row by ``ledger`` in the same
    transaction, and after the commit to ``total`` (the summary), so both hold only
    what was committed. ``before_lock``: work of the transaction that may precede the
    lock (``etl.db.writer.writer_transaction``).
    """
    tally = Tally()
    with writer_transaction(conn, run_id, before_lock):
        yield tally
        with timing.labelled("counts"):
            counts = tally.count(conn)
            counts.add(extra)
            ledger.add_counts(conn, run_id, counts)
    total.add(counts)
