"""One definition of the counters: ``etl.records.Counts``.

``etl_runs`` has a column for each counter, ``etl run --json`` and ``etl.run()``'s
summary a key for each, and the summary line shows each but those it names as left
out; these tests fail as soon as any of them drifts from ``Counts``.
"""

from __future__ import annotations

import json
import string
from dataclasses import fields
from pathlib import Path

from sqlalchemy import Integer, select

from etl.db.schema import etl_runs
from etl.ledger.run_history import SHOWN_COUNTS
from etl.load.tally import ABSENT, FULL, STUB, TOMBSTONE, transition
from etl.records import COUNTER_NAMES, LINE_OMITS, SUMMARY_LINE, Counts, RunSummary
from tests.helpers import fetch, make_doc, render, run_etl, token, write_tree

# The columns of etl_runs that describe the run rather than count what it did.
RUN_COLUMNS = {"id", "started_at", "finished_at", "status", "arguments", "error"}
# The keys of the summary that are not counters.
SUMMARY_KEYS = {f.name for f in fields(RunSummary)} - {f.name for f in fields(Counts)}


def test_the_counter_names_are_the_fields_of_counts() -> None:
    assert tuple(f.name for f in fields(Counts)) == COUNTER_NAMES


def test_etl_runs_has_one_counter_column_per_counter() -> None:
    columns = {column.name: column for column in etl_runs.columns}
    assert columns.keys() >= RUN_COLUMNS
    assert sorted(columns.keys() - RUN_COLUMNS) == sorted(COUNTER_NAMES)
    for name in COUNTER_NAMES:
        column = columns[name]
        assert isinstance(column.type, Integer), name
        assert not column.nullable, name
        assert column.server_default is not None, name
        assert str(column.server_default.arg) == "0", name  # type: ignore[attr-defined]


def test_the_summary_line_shows_every_counter_but_those_it_leaves_out() -> None:
    shown = [name for _, name, _, _ in string.Formatter().parse(SUMMARY_LINE) if name]
    assert len(shown) == len(set(shown))
    assert not set(shown) & LINE_OMITS
    assert sorted([*shown, *LINE_OMITS]) == sorted(COUNTER_NAMES)


def test_the_summary_line_prints_each_counter_it_shows() -> None:
    # Distinct values, so that each number in the line can only come from its counter.
    summary = RunSummary()
    for i, name in enumerate(COUNTER_NAMES):
        setattr(summary, name, 1000 + i)
    line = summary.line()
    for i, name in enumerate(COUNTER_NAMES):
        assert (f"{1000 + i} " in line) == (name not in LINE_OMITS), name


def test_etl_runs_lists_counters_that_exist() -> None:
    assert set(SHOWN_COUNTS) <= set(COUNTER_NAMES)


def test_every_count_an_article_change_makes_is_a_counter() -> None:
    """``etl.load.tally`` adds what :func:`transition` names by name: a name that is no
    counter would be set on the summary and never recorded."""
    named: set[str] = set()
    for old in (ABSENT, STUB, TOMBSTONE, FULL):
        for new in (ABSENT, STUB, TOMBSTONE, FULL):
            for fingerprint in ("same", "other"):
                named.update(transition((old, "same"), (new, fingerprint)))
    assert named  # the enumeration reaches the transitions that count
    assert named <= set(COUNTER_NAMES)


def test_json_summary_and_run_row_hold_exactly_the_counters(tmp_path: Path) -> None:
    """``etl run --json`` has a key per counter and no other but the summary's own, and
    each equals the run's row in ``etl_runs`` (which ``etl runs --json`` prints)."""
    tree = tmp_path / "news"
    write_tree(tree, {"a.md": render(make_doc(token())), "b.md": b"---\n: [\n---\n"})
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    result = run_etl("run", str(tree), "--json", "--database-url", url)
    assert result.returncode == 1, result.stderr  # b.md is rejected
    summary = json.loads(result.stdout)
    assert summary.keys() - SUMMARY_KEYS == set(COUNTER_NAMES)
    assert summary.keys() >= SUMMARY_KEYS
    [row] = fetch(url, select(etl_runs))
    recorded = {name: row._mapping[name] for name in COUNTER_NAMES}
    assert {name: summary[name] for name in COUNTER_NAMES} == recorded
    assert recorded["articles_inserted"] == 1 and recorded["documents_rejected"] == 1
    listed = run_etl("runs", "--json", "--database-url", url)
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)
    assert {name: run[name] for name in COUNTER_NAMES} == recorded
