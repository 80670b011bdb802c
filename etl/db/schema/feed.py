"""The change feed's tables: ``article_changes`` and its compaction watermark.

Their rows are written by the triggers of migration 0006 and read by ``etl.query.feed``;
how a writing transaction tags its entries with its run is ``etl.db.writer``'s.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, String, Table, Text

from etl.db.schema.base import UTCDateTime, metadata

# The change feed (etl/query/feed.py). Rows are written only by database triggers on
# ``articles`` (created by migration 0006), never by the load code, so every writer
# is recorded. Cursors are taken under the writer lock, so they follow commit order.
article_changes = Table(
    "article_changes",
    metadata,
    # SQLite: the migration makes it AUTOINCREMENT, so a cursor is never reused after
    # the newest rows are deleted (compaction); a plain INTEGER PRIMARY KEY may hand out
    # max(rowid)+1 again. Not declared here (sqlite_autoincrement=True): like the MySQL
    # options above, it would import the SQLite dialect on every start.
    Column(
        "cursor",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
        comment="Position in the feed: strictly increasing in commit order.",
    ),
    # upsert (the row exists, not removed), remove (is_removed), delete (row gone):
    # the state of the article after the change.
    Column(
        "op",
        String(8),
        nullable=False,
        comment="`upsert` (the row exists, not removed), `remove` (is_removed), `delete` (row "
        "gone): the article's state after the change.",
    ),
    Column(
        "article_id",
        Integer,
        nullable=False,
        comment="The article changed (no foreign key: it may be deleted).",
    ),
    Column("url", Text, nullable=False, comment="Its canonical URL."),
    Column("is_stub", Boolean, nullable=False, comment="Whether it is a stub after the change."),
    Column(
        "run_id",
        Integer,
        comment="The run that made the change; NULL for a change made outside a run.",
    ),
    Column(
        "committed_at",
        UTCDateTime(),
        nullable=False,
        comment="When the change was written, inside its committing transaction (UTC).",
    ),
    comment="The change feed: one row per committed change to an article, written by triggers on "
    "articles (see `etl changes`).",
)

# One row (id 1): the newest cursor compaction removed. A consumer whose cursor is
# older must resynchronise; the feed never skips entries silently.
change_feed_state = Table(
    "change_feed_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="Always 1: one row."),
    Column(
        "compacted_through",
        BigInteger,
        nullable=False,
        server_default="0",
        comment="The newest cursor compaction removed: a consumer with an older cursor must "
        "resynchronise.",
    ),
    Column("compacted_at", UTCDateTime(), comment="When the last compaction ran (UTC)."),
    comment="The change feed's compaction watermark (one row).",
)
