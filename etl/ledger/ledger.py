"""Runs' liveness: the lock that tells a run still working from one whose process died.

Owns the clock the ledger records with (:func:`now`), each run's liveness lock
(taken by ``etl.ledger.runs.start_run``, released by :func:`end_lease`), telling
whether a run left ``running`` still has a process (:func:`run_is_gone`, which
``etl runs`` reports as ``abandoned``), and recording the runs whose process died as
``interrupted`` (:func:`mark_abandoned_runs`). The rest of the ledger is in
``runs`` (a run's row), ``sources``, ``files`` (``source_files``) and
``rejections``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import SQLAlchemyError

from etl.db.database import describe_error
from etl.db.locks import LockAction, run_lease
from etl.db.schema import etl_runs
from etl.db.sql import transaction
from etl.records import RunStatus

log = logging.getLogger("etl")


def now() -> datetime:
    return datetime.now(UTC)


# --- liveness: runs left `running` by a process that was killed --------------------------


def _lease(conn: Connection, run_id: int, action: LockAction) -> bool | None:
    """Take, release or probe (True: nobody holds it) a run's liveness lock.

    A session lock held by the run's own connection (``etl.db.locks.run_lease``): it
    vanishes with the process or its connection, on whatever machine the run was, which
    is what tells a run that is still working from one that was killed. SQLite has none
    (host and pid instead).
    """
    return run_lease(conn, run_id, action)


def end_lease(conn: Connection, run_id: int | None) -> None:
    """Release a run's liveness lock (its connection may go back to a pool)."""
    if run_id is None or conn.invalidated or conn.closed:
        return
    try:
        with transaction(conn):
            _lease(conn, run_id, LockAction.RELEASE)
    except SQLAlchemyError as exc:
        log.warning("could not release the lock of run %s: %s", run_id, describe_error(exc))


def _process_gone(process: Any) -> bool:
    """SQLite: a run of a process on this host that no longer exists."""
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return False  # another machine (or an older run): cannot tell, leave it
    pid = process.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, another user's
    return False


def run_is_gone(conn: Connection, run_id: int, arguments: Mapping[str, Any] | None) -> bool:
    """Whether a run recorded as ``running`` has no process any more: on SQLite its
    process (recorded in ``arguments``) is gone; elsewhere nobody holds its lock."""
    if conn.dialect.name == "sqlite":
        return _process_gone((arguments or {}).get("process"))
    return bool(_lease(conn, run_id, LockAction.PROBE))


def mark_abandoned_runs(conn: Connection, run_id: int) -> list[int]:
    """Record runs left ``running`` by a process that died (SIGKILL, power loss) as
    ``interrupted``; runs still working (concurrent shards, other machines) keep going."""
    with transaction(conn):
        running = conn.execute(
            select(etl_runs.c.id, etl_runs.c.arguments).where(
                etl_runs.c.status == RunStatus.RUNNING.value, etl_runs.c.id != run_id
            )
        ).all()
        if not running:
            return []
        gone = [row.id for row in running if run_is_gone(conn, row.id, row.arguments)]
        if gone:
            conn.execute(
                update(etl_runs)
                .where(etl_runs.c.id.in_(gone), etl_runs.c.status == RunStatus.RUNNING.value)
                .values(
                    status=RunStatus.INTERRUPTED.value,
                    finished_at=now(),
                    error=(
                        "the process ended without recording the end of the run (killed, "
                        f"or its machine stopped); found by run {run_id}"
                    ),
                )
            )
    for gone_id in gone:
        log.warning("run %s was left running by a process that ended: now interrupted", gone_id)
    return gone
