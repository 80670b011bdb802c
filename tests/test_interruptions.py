"""Interrupted runs: signals during a real load, and runs a killed process left behind.

SIGTERM and SIGINT during a corpus load (exit codes, no process left, the run row, a
re-run that heals); a second signal during the clean-up; the signal handlers restored
after a run; runs left ``running`` by a process that was killed, marked ``interrupted``
by the next run (and a live one, or one on another host, left alone).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

import etl
from etl.db import database
from etl.db.schema import etl_runs
from etl.ledger import ledger
from etl.ledger.runs import start_run
from tests.helpers import (
    SEEDS,
    SLOW_CLI_TIMEOUT,
    make_database,
    make_doc,
    render,
    run_etl,
    run_python,
    start_etl,
    start_python,
    token,
    write_tree,
)
from tests.snapshots import CorpusLoads, loaded_articles, snapshot


def run_row(url: str, run_id: int | None = None) -> Any:
    engine = create_engine(database.resolve_url(url))
    try:
        with engine.connect() as conn:
            query = select(etl_runs).order_by(etl_runs.c.id.desc()).limit(1)
            if run_id is not None:
                query = select(etl_runs).where(etl_runs.c.id == run_id)
            return conn.execute(query).one()
    finally:
        engine.dispose()


# --- signals during a corpus load ---------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.update(int(child) for child in (task / "children").read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status is left


def _articles_loaded(url: str) -> int:
    return loaded_articles(url) or 0


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("backend", "signum", "code"),
    [
        pytest.param("postgresql", signal.SIGTERM, 143, marks=pytest.mark.postgresql),
        pytest.param("postgresql", signal.SIGINT, 130, marks=pytest.mark.postgresql),
        pytest.param("sqlite", signal.SIGTERM, 143),
    ],
    ids=["postgresql-SIGTERM", "postgresql-SIGINT", "sqlite-SIGTERM"],
)
def test_signal_during_corpus_load_stops_cleanly_and_a_rerun_heals(
    backend: str,
    signum: int,
    code: int,
    corpus_news: Path,
    corpus_loads: CorpusLoads,
    tmp_path: Path,
) -> None:
    # An uninterrupted load of the same files (the session's: `etl run` is etl.run).
    expected = corpus_loads(backend).snapshot
    databases = make_database(backend, tmp_path)
    url = next(databases)
    try:
        proc = start_etl(
            "run",
            str(corpus_news),
            "--database-url",
            url,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: Ctrl-C reaches it all
        )
        workers: set[int] = set()
        try:
            deadline = time.monotonic() + SLOW_CLI_TIMEOUT
            while _articles_loaded(url) == 0 and proc.poll() is None:
                assert time.monotonic() < deadline, "nothing loaded"
                workers |= _children(proc.pid)
                time.sleep(0.05)
            workers |= _children(proc.pid)
            if signum == signal.SIGINT:
                os.killpg(proc.pid, signum)  # what a terminal's Ctrl-C does
            else:
                os.kill(proc.pid, signum)  # what cron, systemd, Kubernetes do
            _, err = proc.communicate(timeout=SLOW_CLI_TIMEOUT)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == code, err[-3000:]
        assert workers, "the run started no worker process"
        assert not [pid for pid in workers if _alive(pid)], "a worker survived the run"
        assert "Traceback" not in err, err[-3000:]
        name = signal.Signals(signum).name
        assert f"stopped by {name}" in err
        row = run_row(url)
        assert row.status == "interrupted"
        assert row.error == f"interrupted by {name}"
        assert row.finished_at is not None

        result = run_etl("run", str(corpus_news), "--database-url", url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        after = snapshot(url)
        for table in expected:
            assert after[table] == expected[table], f"{table} differs from an uninterrupted load"
    finally:
        databases.close()


# The signal's exception, raised right after the driver ran one of the run's statements
# (where the handler runs when the signal arrives during it): the run still records
# itself as interrupted, at once. On SQLite, SQLAlchemy then closed the connection with
# the statement's cursor open, which kept the file's write lock; the run's end, recorded
# through another connection, waited 300 s for it (a CI run hung so, 1 signal in ~40).
_STOPPED_AFTER = textwrap.dedent(
    """
    import signal, sys, time
    from sqlalchemy import event
    import etl
    from etl.db import database
    from etl.records import RunInterrupted

    url, marker = sys.argv[1], sys.argv[2]
    engine = database.make_engine(url)
    state = {"started": False, "fired": False}

    @event.listens_for(engine, "after_cursor_execute")
    def stop_here(conn, cursor, statement, *_):
        state["started"] = state["started"] or statement.startswith("INSERT INTO etl_runs")
        if state["started"] and not state["fired"] and statement.startswith(marker):
            state["fired"] = True
            raise RunInterrupted(signal.SIGTERM)

    started = time.monotonic()
    try:
        etl.run([sys.argv[3]], engine=engine, handle_signals=False)
        print("not stopped", 0)
    except RunInterrupted as exc:
        print(exc.summary.status.value, round(time.monotonic() - started, 1))
    engine.dispose()
    """
)


_STATEMENTS = {
    "begin": ("BEGIN IMMEDIATE", ["sqlite"]),  # SQLite's writer lock, just taken
    "insert-returning": ("INSERT INTO articles (url, web_url", ["sqlite", "postgresql"]),
    "update": ("UPDATE articles SET fingerprint", ["sqlite", "postgresql", "mariadb"]),
    "select": (  # rows not read yet
        "SELECT articles.provider_id, articles.provider_name",
        ["sqlite", "postgresql", "mariadb"],
    ),
}


@pytest.mark.parametrize(
    ("marker", "backend"),
    [
        pytest.param(
            marker,
            backend,
            marks=[getattr(pytest.mark, backend)] if backend != "sqlite" else [],
            id=f"{backend}-{name}",
        )
        for name, (marker, backends) in _STATEMENTS.items()
        for backend in backends
    ],
)
def test_a_signal_just_after_a_statement_ends_the_run_at_once(
    marker: str, backend: str, tmp_path: Path
) -> None:
    databases = make_database(backend, tmp_path)
    url = next(databases)
    try:
        result = run_python(_STOPPED_AFTER, url, marker, str(SEEDS), timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        status, seconds = result.stdout.rsplit(maxsplit=1)
        assert status == "interrupted", result.stdout
        assert float(seconds) < 30  # not the 300 s a lock left behind is waited for
        row = run_row(url)
        assert (row.status, row.error) == ("interrupted", "interrupted by SIGTERM")
        # The next run finds every lock free and loads the files.
        assert etl.run([SEEDS], url).status.value == "succeeded"
    finally:
        databases.close()


# Python ignores what a __del__ method raises, and a signal's handler may run in one:
# the workers are stopped and the handler's RunInterrupted is lost. A run that went on
# recorded the worker pool's breakdown (exit code 3, `failed`; seen once in ~650
# SIGTERMs), or, with no workers, ignored the signal.
_LOST_SIGNAL = textwrap.dedent(
    """
    import logging, os, signal, sys, time
    from sqlalchemy import event
    import etl
    from etl.db import database
    from etl.records import RunInterrupted

    class Dropped:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs here, and what it raises is dropped

    url, root, where = sys.argv[1:]
    if where == "parsed-ahead":  # as `etl run` does first (etl.__main__)
        from etl.runner import parse_ahead

        parse_ahead.start(2)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # to stderr
    engine = database.make_engine(url)
    fired = []

    def once(*_):
        if not fired:
            fired.append(True)
            Dropped()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn, cursor, statement, *_):
        if where == "failure" and fired == [True]:
            fired.append(False)
            raise RuntimeError("disk full")  # the next statement fails, once
        if where != "workers" and statement.startswith("UPDATE articles SET fingerprint"):
            once()

    options = {"workers": 2, "progress": once} if where == "workers" else {"batch_size": 5}
    try:
        summary = etl.run([root], engine=engine, **options)
        print("finished", summary.status.value)
    except RunInterrupted as exc:
        print("stopped", exc.summary.status.value)
    """
)


@pytest.mark.parametrize(
    ("where", "files"),
    [("inline", 19), ("parsed-ahead", 19), ("failure", 19), ("workers", 300)],
)
def test_a_signal_whose_exception_python_dropped_still_stops_the_run(
    where: str, files: int, sqlite_url: str, tmp_path: Path
) -> None:
    # ``files``: fewer than a worker pool is used for, then enough for chunks to be
    # left to send when the first one is collected. ``failure``: the next statement
    # fails, and the run records that as the interruption, the failure logged.
    root = tmp_path / "news"
    tag = token()
    write_tree(root, {f"{tag}-{n}.md": render(make_doc(f"{tag}-{n}")) for n in range(files)})
    result = run_python(_LOST_SIGNAL, sqlite_url, str(root), where, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    # The handler's exception was raised, and dropped, inside Dropped.__del__.
    assert "Exception ignored in: <function Dropped.__del__" in result.stderr
    assert "RunInterrupted: interrupted by SIGTERM" in result.stderr
    assert result.stdout.split() == ["stopped", "interrupted"], result.stderr[-3000:]
    row = run_row(sqlite_url)
    assert (row.status, row.error) == ("interrupted", "interrupted by SIGTERM")
    assert row.articles_inserted < files  # it stopped before the end
    assert ("after the signal: RuntimeError: disk full" in result.stderr) == (where == "failure")
    parsed_ahead = f"{files} files parsed by 2 parse-ahead processes" in result.stderr
    assert parsed_ahead == (where == "parsed-ahead")


def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, time
        from etl.runner.interrupts import stop_on_signals
        from etl.records import RunInterrupted

        with stop_on_signals():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
            except RunInterrupted:
                print("first", flush=True)
                os.kill(os.getpid(), signal.SIGINT)  # during the clean-up
                time.sleep(30)
                print("clean-up finished")
        """
    )
    result = run_python(script, timeout=60)
    assert result.returncode == 130, result.stderr
    assert result.stdout == "first\n"
    assert "second signal (SIGINT): exiting at once" in result.stderr


def test_signal_handlers_are_restored_after_a_run(sqlite_url: str) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    etl.run([SEEDS], sqlite_url)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# --- runs left `running` by a process that was killed ---------------------------------------------


def test_a_run_whose_process_is_gone_is_marked_interrupted_by_the_next(db_url: str) -> None:
    etl.run([SEEDS], db_url)
    engine = database.make_engine(db_url)
    try:
        with engine.connect() as killed, engine.connect() as alive, engine.connect() as later:
            killed_id = start_run(killed, {"paths": []})
            alive_id = start_run(alive, {"paths": []})
            if engine.dialect.name == "sqlite":
                # SQLite tells by host and process id: make the first run a dead process's.
                gone = start_python("pass")
                gone.wait()
                with engine.begin() as conn:
                    conn.execute(
                        etl_runs.update()
                        .where(etl_runs.c.id == killed_id)
                        .values(
                            arguments={
                                "paths": [],
                                "process": {"host": socket.gethostname(), "pid": gone.pid},
                            }
                        )
                    )
                    # And the live one another process's (this one is never judged dead).
                    conn.execute(
                        etl_runs.update()
                        .where(etl_runs.c.id == alive_id)
                        .values(
                            arguments={
                                "paths": [],
                                "process": {"host": socket.gethostname(), "pid": os.getppid()},
                            }
                        )
                    )
            else:
                killed.invalidate()  # its session ends, as when its process is killed
            later_id = start_run(later, {"paths": []})
            assert ledger.mark_abandoned_runs(later, later_id) == [killed_id]
            ledger.end_lease(alive, alive_id)
    finally:
        engine.dispose()
    assert run_row(db_url, killed_id).status == "interrupted"
    assert "ended without recording" in run_row(db_url, killed_id).error
    assert run_row(db_url, alive_id).status == "running"  # a concurrent run goes on


def test_a_run_on_another_host_is_left_alone_on_sqlite(sqlite_url: str) -> None:
    etl.run([SEEDS], sqlite_url)
    engine = database.make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            key = conn.execute(
                etl_runs.insert().values(
                    started_at=ledger.now(),
                    status="running",
                    arguments={"process": {"host": "elsewhere.invalid", "pid": 1}},
                )
            ).inserted_primary_key
            assert key is not None
            other = key[0]
    finally:
        engine.dispose()
    etl.run([SEEDS], sqlite_url)
    assert run_row(sqlite_url, other).status == "running"
