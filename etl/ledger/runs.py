"""A run's row in ``etl_runs``: its start, the counts its transactions add, its end.

Which columns hold counts is :data:`etl.records.COUNTER_NAMES` (the fields of
``Counts``); whether a run's process is still alive is ``etl.ledger.ledger``'s.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from etl.db.database import describe_error
from etl.db.locks import LockAction
from etl.db.schema import etl_runs
from etl.db.sql import transaction
from etl.ledger.ledger import _lease, now
from etl.records import COUNTER_NAMES, Counts, RunStatus, RunSummary

log = logging.getLogger("etl")


def start_run(conn: Connection, arguments: dict[str, Any], counts: Counts | None = None) -> int:
    """Record a run as ``running``, with ``counts`` known before it writes (the files it
    found, and those it skips unread); ``conn`` holds its liveness lock until
    ``etl.ledger.ledger.end_lease``.

    The arguments get the host and process id (how SQLite tells a dead run from a
    live one, and what an operator looks for).
    """
    process = {"host": socket.gethostname(), "pid": os.getpid()}
    with transaction(conn):
        result = conn.execute(
            insert(etl_runs).values(
                started_at=now(),
                status=RunStatus.RUNNING.value,
                arguments={**arguments, "process": process},
                **(counts.nonzero() if counts else {}),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        run_id = int(key[0])
        # Taken before the row is committed: no other run sees it `running` unlocked.
        _lease(conn, run_id, LockAction.TAKE)
        return run_id


def add_counts(conn: Connection, run_id: int | None, counts: Counts) -> None:
    """Add ``counts`` to the run's row, in the caller's transaction: a run's counts are
    recorded by the transactions that commit what they count (etl.load.tally)."""
    values = counts.nonzero()
    if run_id is None or not values:
        return
    conn.execute(
        update(etl_runs)
        .where(etl_runs.c.id == run_id)
        .values({name: etl_runs.c[name] + value for name, value in values.items()})
    )


def record_run_end(target: Engine | Connection, summary: RunSummary) -> None:
    """Record a run's end (through a fresh connection of an engine: the run's own may be
    the one that broke; or through the connection a dry run holds), and read its counts
    back into ``summary``: what its committed transactions recorded, worker processes
    stopped mid-chunk included."""
    if summary.run_id is None:
        return
    if isinstance(target, Connection) and target.invalidated:
        return  # a dry run stopped mid-statement: its transaction is gone already
    statement = (
        update(etl_runs)
        .where(etl_runs.c.id == summary.run_id)
        .values(status=summary.status.value, finished_at=now(), error=summary.error)
    )
    counters = select(*(etl_runs.c[name] for name in COUNTER_NAMES)).where(
        etl_runs.c.id == summary.run_id
    )

    def record(conn: Connection) -> None:
        conn.execute(statement)
        row = conn.execute(counters).one()
        for name in COUNTER_NAMES:
            setattr(summary, name, row._mapping[name])

    try:
        if isinstance(target, Engine):
            with target.begin() as conn:
                record(conn)
        else:
            with transaction(target):
                record(target)
    except SQLAlchemyError as exc:
        if summary.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL):
            # The run's work is committed but its row would say `running`: the run
            # fails (a broken schema is exit 2, a lost connection 3) instead of
            # reporting success the run table contradicts.
            raise
        # Already failing: the run's own error is the one to report.
        log.warning("could not record the end of run %s: %s", summary.run_id, describe_error(exc))
