"""``etl runs`` tells sites apart: sources, status, duration, net counts, error,
``--source`` and ``--status``; a run whose process is gone is ``abandoned`` at once, on
every backend. Run as the operator would (``python -m etl`` in a subprocess)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from etl.db.schema import etl_runs
from etl.ledger.run_history import run_sources
from tests.helpers import fetch, make_doc, render, run_etl, start_python, token, write_tree

# A process that starts a run and then waits, as a run does while it loads.
_START_RUN = """
import sys, time
from etl.db import database
from etl.ledger import runs
engine = database.make_engine(sys.argv[1])
conn = engine.connect()
print(runs.start_run(conn, {"paths": [], "sources": [sys.argv[2]]}), flush=True)
time.sleep(600)
"""


def _two_sites(root: Path) -> tuple[Path, Path]:
    tag = token()
    alpha, beta = root / "alpha", root / "beta"
    write_tree(alpha / "_news", {"a.md": render(make_doc(f"{tag}-a"))})
    write_tree(
        beta / "_news",
        {"b.md": render(make_doc(f"{tag}-b")), "broken.md": b"---\ntitle: [\n---\n"},
    )
    return alpha, beta


def test_runs_name_their_sources_and_filter_by_source_and_status(
    db_url: str, tmp_path: Path
) -> None:
    alpha, beta = _two_sites(tmp_path)
    first = run_etl("run", str(alpha), "--source", "alpha", "--json", "--database-url", db_url)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["sources"] == ["alpha"]
    second = run_etl("run", str(beta), "--source", "beta", "--database-url", db_url)
    assert second.returncode == 1, second.stderr
    assert second.stdout.rstrip().endswith("; source beta]")

    listing = run_etl("runs", "--database-url", db_url)
    assert listing.returncode == 0, listing.stderr
    newest, oldest = listing.stdout.splitlines()
    assert "  partial  " in newest and "  beta  " in newest
    assert "inserted=1 updated=0 removed=0 duplicates=0 rejected=1" in newest
    assert "  succeeded  " in oldest and "  alpha  " in oldest and "rejected=0" in oldest

    rows = json.loads(run_etl("runs", "--json", "--database-url", db_url).stdout)
    assert [row["sources"] for row in rows] == [["beta"], ["alpha"]]
    assert all(row["seconds"] is not None and row["seconds"] >= 0 for row in rows)
    assert {"articles_removed", "duplicates", "documents_rejected", "error"} <= set(rows[0])

    def ids(*options: str) -> list[int]:
        result = run_etl("runs", "--json", "--database-url", db_url, *options)
        assert result.returncode == 0, result.stderr
        return [row["id"] for row in json.loads(result.stdout)]

    assert ids("--source", "alpha") == [rows[1]["id"]]
    assert ids("--source", "beta", "--source", "alpha") == [rows[0]["id"], rows[1]["id"]]
    assert ids("--status", "partial") == [rows[0]["id"]]
    assert ids("--source", "alpha", "--status", "partial") == []
    bad = run_etl("runs", "--status", "exploded", "--database-url", db_url)
    assert bad.returncode == 2


def test_a_killed_run_is_abandoned_at_once_and_a_live_one_running(
    db_url: str, tmp_path: Path
) -> None:
    assert run_etl("db", "upgrade", "--database-url", db_url).returncode == 0
    processes = [
        start_python(_START_RUN, db_url, name, stdout=subprocess.PIPE, text=True)
        for name in ("killed", "alive")
    ]
    try:
        run_ids = []
        for process in processes:
            assert process.stdout is not None
            run_ids.append(int(process.stdout.readline()))
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=30)
        result = run_etl("runs", "--json", "--database-url", db_url)
        assert result.returncode == 0, result.stderr
        status = {row["id"]: row["status"] for row in json.loads(result.stdout)}
        assert status == {run_ids[0]: "abandoned", run_ids[1]: "running"}
        only = run_etl("runs", "--status", "abandoned", "--database-url", db_url)
        assert only.stdout.count("\n") == 1 and "killed" in only.stdout
        # Reading wrote nothing: the row is still `running` until the next run...
        (row,) = fetch(db_url, select(etl_runs.c.status).where(etl_runs.c.id == run_ids[0]))
        assert row.status == "running"
        # ... which records it as interrupted, with the error `etl runs` shows.
        site = tmp_path / "site"
        write_tree(site / "_news", {"a.md": render(make_doc(token()))})
        assert run_etl("run", str(site), "--database-url", db_url).returncode == 0
        listing = run_etl("runs", "--status", "interrupted", "--database-url", db_url).stdout
        assert listing.count("\n") == 1 and "  killed  " in listing
        assert "error: the process ended without recording the end of the run" in listing
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"sources": ["azure", "docs"], "source": None}, ["azure", "docs"]),
        ({"sources": [], "source": None}, []),
        ({"source": "azure", "paths": ["/srv/azure"]}, ["azure"]),  # before sources were kept
        ({"paths": ["/srv/azure"]}, []),
        (None, []),
        ("not a mapping", []),
    ],
)
def test_the_sources_of_a_run_as_recorded(arguments: object, expected: list[str]) -> None:
    assert run_sources(arguments) == expected
