"""Lost connections: which driver errors mean one, and that a lost connection is
discarded, never rolled back or reused, whether SQLAlchemy or the driver's own cursor
(COPY, LOAD DATA) ran the statement. A run whose connections are killed is in
``test_faults``."""

from __future__ import annotations

import logging
import threading

import psycopg
import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, text
from sqlalchemy.exc import OperationalError

from etl.db import load_data, sql
from etl.db.database import make_engine
from etl.db.disconnects import is_lost_connection
from etl.db.schema import articles
from tests.helpers import kill_other_connections


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (psycopg.errors.AdminShutdown("terminating connection"), True),  # 57P01
        (psycopg.errors.CrashShutdown("terminating connection"), True),  # 57P02
        (psycopg.errors.IdleSessionTimeout("terminating connection"), True),  # 57P05
        (psycopg.errors.ConnectionFailure("connection failure"), True),  # 08006
        # libpq's own failures, which psycopg raises with no SQLSTATE, the connection
        # not yet marked broken in the first.
        (psycopg.OperationalError("cannot exit pipeline mode while busy"), True),
        (psycopg.OperationalError("consuming input failed: server closed the connection"), True),
        # The session goes on after these.
        (psycopg.errors.QueryCanceled("canceling statement"), False),  # 57014
        (psycopg.errors.LockNotAvailable("could not obtain lock"), False),  # 55P03
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),  # 40P01
        (psycopg.errors.ProgramLimitExceeded("index row size 3256"), False),  # 54000
        (psycopg.errors.StringDataRightTruncation("value too long"), False),  # 22001
        (psycopg.errors.PipelineAborted("pipeline aborted"), False),
        (psycopg.InterfaceError("the cursor is closed"), False),
        (ValueError("not the driver's"), False),
    ],
    ids=lambda value: repr(value)[:60] if not isinstance(value, bool) else str(value),
)
def test_psycopg_errors_that_mean_the_connection_is_gone(error: Exception, lost: bool) -> None:
    assert is_lost_connection(error, psycopg) is lost


@pytest.mark.parametrize(
    ("condition", "discarded"), [("admin_shutdown", True), ("query_canceled", False)]
)
def test_a_postgresql_engine_discards_a_connection_the_server_says_is_over(
    pg_url: str, condition: str, discarded: bool
) -> None:
    """Raised by the server on a live connection, so that psycopg has not marked it
    broken, as when a terminated backend's farewell is read before the socket's end:
    SQLAlchemy's own check keeps it; the engine discards it all the same, instead of
    rolling back a dead connection when the run ends."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            with pytest.raises(OperationalError) as raised:
                conn.exec_driver_sql(
                    "DO $$ BEGIN RAISE EXCEPTION 'raised by the test' "
                    f"USING ERRCODE = '{condition}'; END $$"
                )
            assert raised.value.connection_invalidated is discarded
            assert conn.invalidated is discarded
    finally:
        engine.dispose()


def _statement_on_the_drivers_cursor(conn: Connection) -> None:
    """What the load runs on the driver's own cursor, made slow enough to be cut: a
    COPY into a table whose trigger sleeps (PostgreSQL), a statement of LOAD DATA's
    runner (MariaDB)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("CREATE TABLE slow_rows (id INTEGER)"))
        conn.execute(
            text(
                "CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER slow_row BEFORE INSERT ON slow_rows "
                "FOR EACH ROW EXECUTE FUNCTION slow_row()"
            )
        )
        table = Table("slow_rows", MetaData(), Column("id", Integer))
        sql._copy_rows(conn, table, ["id"], [[n] for n in range(20)])
    else:
        driver = conn.connection.driver_connection
        load_data._execute(conn, driver, articles, ["SELECT SLEEP(10)"])


def test_a_lost_connection_on_the_drivers_own_cursor_is_discarded(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """COPY and LOAD DATA run on the driver's own cursor, where SQLAlchemy never sees
    their errors: cut while one runs, the connection is invalidated as SQLAlchemy's own
    would be (``driver_error``), so that nothing rolls it back or logs a traceback."""
    engine = make_engine(server_url)
    try:
        with engine.connect() as conn:
            killer = threading.Timer(1, kill_other_connections, [server_url])
            killer.start()
            try:
                with pytest.raises(OperationalError) as raised, conn.begin():
                    _statement_on_the_drivers_cursor(conn)
            finally:
                killer.join()
            assert raised.value.connection_invalidated, raised.value
            assert conn.invalidated
    finally:
        engine.dispose()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records


def test_a_connection_cut_while_idle_is_discarded_quietly_as_it_returns(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed between two transactions, the connection fails the pool's rollback as it
    returns: discarded with a line in the log, not an error's traceback, and the next
    checkout connects anew. (psycopg sends no rollback for a connection outside a
    transaction, so PostgreSQL's case never failed; MariaDB's did.)"""
    engine = make_engine(server_url)
    try:
        conn = engine.connect()
        conn.execute(text("SELECT 1"))
        conn.commit()
        assert kill_other_connections(server_url) == 1
        conn.close()
        with engine.connect() as again:
            assert again.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_connection_returned_in_a_transaction_is_still_rolled_back(server_url: str) -> None:
    """The pool's rollback of a connection given back mid-transaction, now done by
    ``roll_back_on_return``, still happens: what it wrote is gone when the same
    connection is next checked out and commits."""
    engine = make_engine(server_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE returned_rows (n INTEGER)"))
        raw = engine.raw_connection()
        first = raw.dbapi_connection
        cursor = raw.cursor()
        cursor.execute("INSERT INTO returned_rows (n) VALUES (1)")
        cursor.close()
        raw.close()  # back to the pool, uncommitted
        again = engine.raw_connection()
        assert again.dbapi_connection is first  # the same one, reused
        again.commit()
        again.close()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM returned_rows")).scalar() == 0
    finally:
        engine.dispose()
