"""The change feed's reader side: changes since a cursor, following, compaction.

Owns reading ``article_changes`` (written only by the database triggers of
migration 0006, whoever changes ``articles``), the too-old-cursor check against
``change_feed_state``, waiting for new changes (``LISTEN news_etl`` on
PostgreSQL, on a connection made again when the server cuts it; polling elsewhere)
and compaction. Cursors are assigned under the
writer lock, so "everything after cursor C" read again with the largest cursor
received gives every change exactly once, in commit order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, inspect, select, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from etl.db import database
from etl.db.database import ConfigurationError
from etl.db.schema import article_changes, change_feed_state
from etl.db.writer import writer_transaction
from etl.records import ChangeOp

log = logging.getLogger(__name__)

PAGE = 1000  # changes read per query
LISTEN_TIMEOUT = 30.0  # PostgreSQL --follow: poll anyway after this long without NOTIFY
CHANNEL = "news_etl"


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change to an article. ``op`` is the article's state after it:
    ``upsert`` (the row exists and is not removed), ``remove`` (``is_removed`` is
    true) or ``delete`` (the row is gone)."""

    cursor: int
    op: ChangeOp
    article_id: int
    url: str
    is_stub: bool
    run_id: int | None
    committed_at: datetime  # UTC, the database's clock when the change was written

    def to_dict(self) -> dict[str, Any]:
        """The change as ``etl changes --json`` prints it (``committed_at`` in ISO 8601, UTC)."""
        return {
            "cursor": self.cursor,
            "op": self.op.value,
            "article_id": self.article_id,
            "url": self.url,
            "is_stub": self.is_stub,
            "run_id": self.run_id,
            "committed_at": self.committed_at.isoformat(),
        }


class CursorTooOld(Exception):
    """The cursor is older than the change log kept: entries after it were compacted away.

    The consumer must resynchronise: take ``latest_cursor()``, reload its copy from
    the tables, then follow from that cursor.
    """

    def __init__(self, since: int, compacted_through: int) -> None:
        super().__init__(
            f"cursor {since} is older than the change log kept (entries up to "
            f"{compacted_through} were compacted): resynchronise from the tables, then "
            "follow from the cursor `etl changes --latest` prints"
        )
        self.since = since
        self.compacted_through = compacted_through


@dataclass(frozen=True, slots=True)
class Compaction:
    removed: int  # entries deleted by this compaction
    compacted_through: int  # consumers need a cursor at least this large


def changes(
    database_url: str | URL | None = None,
    *,
    since: int = 0,
    limit: int | None = None,
    follow: bool = False,
    poll_interval: float = 1.0,
    engine: Engine | None = None,
) -> Iterator[Change]:
    """The changes after cursor ``since``, oldest first.

    Stops after ``limit`` changes, or when none are left unless ``follow``: then it
    waits for new ones (NOTIFY on PostgreSQL, a query every ``poll_interval``
    seconds elsewhere) until the caller stops iterating. Raises ``CursorTooOld``
    when entries after ``since`` were compacted, ``ConfigurationError`` when the
    database has no change feed.
    """
    if since < 0 or (limit is not None and limit < 1) or poll_interval <= 0:
        raise ConfigurationError("since must be >= 0, limit >= 1 and poll_interval > 0")
    # existing: a read creates no SQLite file
    with database.engine_for(database_url, engine, read_only=True, existing=True) as reader:
        listener: _Listener | None = None
        try:
            _require_feed(reader)
            if follow and reader.dialect.name == "postgresql":
                listener = _Listener(reader)  # before the first read: no NOTIFY in between
            left = limit
            while True:
                page = PAGE if left is None else min(PAGE, left)
                read = _read_again_if_cut if follow else _read
                rows = read(reader, since, page)
                for change in rows:
                    yield change
                    since = change.cursor
                if left is not None:
                    left -= len(rows)
                    if left <= 0:
                        return
                if len(rows) == page:
                    continue
                if not follow:
                    return
                if listener is not None:
                    listener.wait(LISTEN_TIMEOUT)
                else:
                    time.sleep(poll_interval)
        finally:
            if listener is not None:
                listener.close()


def _read_again_if_cut(engine: Engine, since: int, page: int) -> list[Change]:
    """:func:`_read`, once more when the server cut the connection it was reading on
    (discarded: the pool's next one is new); a second failure is raised."""
    try:
        return _read(engine, since, page)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning(
            "the change feed's connection was lost (%s): connecting again",
            database.describe_error(exc),
        )
        return _read(engine, since, page)


def _read(engine: Engine, since: int, page: int) -> list[Change]:
    c = article_changes.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(article_changes).where(c.cursor > since).order_by(c.cursor).limit(page)
        ).all()
        # Read after the rows: a compaction that took rows this query should have
        # seen is committed, so its watermark shows here.
        through = _compacted_through(conn)
        conn.rollback()
    if since < through:
        raise CursorTooOld(since, through)
    return [
        Change(
            r.cursor,
            ChangeOp(r.op),
            r.article_id,
            r.url,
            bool(r.is_stub),
            r.run_id,
            r.committed_at,
        )
        for r in rows
    ]


def _compacted_through(conn: Connection) -> int:
    value = conn.execute(
        select(change_feed_state.c.compacted_through).where(change_feed_state.c.id == 1)
    ).scalar()
    return int(value or 0)


def latest_cursor(database_url: str | URL | None = None, *, engine: Engine | None = None) -> int:
    """The newest cursor handed out (0 if none): where a consumer that has just
    reloaded its copy from the tables starts following."""
    # existing: a read creates no SQLite file
    with database.engine_for(database_url, engine, read_only=True, existing=True) as reader:
        _require_feed(reader)
        with reader.connect() as conn:
            newest = conn.execute(select(func.max(article_changes.c.cursor))).scalar()
            through = _compacted_through(conn)
            conn.rollback()
        return max(int(newest or 0), through)


def compact(
    database_url: str | URL | None = None,
    *,
    keep: timedelta,
    engine: Engine | None = None,
) -> Compaction:
    """Delete the changes committed more than ``keep`` ago and record the watermark.

    Entries go oldest first, so what remains is every change after the watermark;
    cursors keep growing (sequences and AUTOINCREMENT never hand a cursor out twice),
    even when every entry is deleted.
    """
    if keep < timedelta(0):
        raise ConfigurationError("keep must not be negative")
    c = article_changes.c
    with database.engine_for(database_url, engine) as writer:
        _require_feed(writer)
        now = datetime.now(UTC)
        with writer.connect() as conn:
            # Outside the writer lock: entries this old no longer change.
            through = conn.execute(
                select(func.max(c.cursor)).where(c.committed_at < now - keep)
            ).scalar()
            conn.rollback()
            if through is None:
                return Compaction(0, _compacted_through(conn))
            with writer_transaction(conn):
                removed = conn.execute(delete(article_changes).where(c.cursor <= through)).rowcount
                conn.execute(
                    update(change_feed_state)
                    .where(
                        change_feed_state.c.id == 1,
                        change_feed_state.c.compacted_through < through,
                    )
                    .values(compacted_through=through, compacted_at=now)
                )
                through = max(through, _compacted_through(conn))
            return Compaction(removed, through)


def _require_feed(engine: Engine) -> None:
    with engine.connect() as conn:
        present = inspect(conn).has_table(article_changes.name)
        conn.rollback()
    if not present:
        raise ConfigurationError(
            f"database {database.redact(engine.url)} has no change feed (schema revision "
            f"{database.current_revision(engine) or 'none'}): run `etl db upgrade` or `etl run`"
        )


class _Listener:
    """A PostgreSQL connection of its own that ``LISTEN``s on ``news_etl``, made by the
    reader's engine (its timeouts, its TLS) and never given back to its pool; made again
    when the server cuts it (a restart, a failover, an operator). Changes committed
    meanwhile are not lost: the caller reads everything after its cursor once the wait
    returns."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.raw, self.driver = self._connect()

    def _connect(self) -> tuple[PoolProxiedConnection, Any]:
        raw = self.engine.raw_connection()
        driver: Any = raw.driver_connection
        raw.detach()  # LISTENing: closed when done with, never reused
        statement = f"LISTEN {CHANNEL}"
        try:
            driver.autocommit = True
            driver.execute(statement)
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raw.close()
            raise DBAPIError.instance(
                statement, None, exc, self.engine.dialect.loaded_dbapi.Error
            ) from None
        return raw, driver

    def wait(self, timeout: float) -> None:
        """Return at the next notification (and any queued with it), after ``timeout``
        s, or once connected again after the connection was lost."""
        try:
            for _ in self.driver.notifies(timeout=timeout, stop_after=1):
                pass
        except self.engine.dialect.loaded_dbapi.OperationalError as exc:
            log.warning(
                "the change feed's LISTEN connection was lost (%s): connecting again",
                database.describe_error(exc),
            )
            self.raw.close()
            self.raw, self.driver = self._connect()

    def close(self) -> None:
        self.raw.close()
