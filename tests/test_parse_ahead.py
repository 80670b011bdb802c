"""The parse-ahead processes (etl.runner.parse_ahead): a run with a few changed files has
them parsed by processes forked before the database layer was imported, and loads
exactly what a run that parses them itself loads; when they are gone, the run parses
the files itself; they never outlive the main process."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import etl
import etl.runner.pipeline
import etl.runner.planning
from etl.extract.extract import extract
from etl.records import SourceFile
from etl.runner import logs, parse_ahead
from etl.runner.parsing import Task
from tests.helpers import make_doc, render, run_etl, run_python, start_python, token, write_tree
from tests.snapshots import snapshot


@pytest.fixture
def helpers() -> Iterator[None]:
    """Parse-ahead processes forked from this test's process, stopped after the test."""
    parse_ahead.start(2)
    try:
        yield
    finally:
        parse_ahead.stop()


def _site(root: Path, broken: bool = True) -> None:
    """A few documents with related entries, and (``broken``) one the parser refuses."""
    tag = token()
    files: dict[str, bytes] = {f"doc{i}.md": render(make_doc(f"{tag}-{i}")) for i in range(5)}
    if broken:
        files["broken.md"] = b"---\ntitle: [unclosed\n---\n"
    write_tree(root / "_news", files)


def _not_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing in this process fails the test: only the helpers (forked before) parse."""

    def refuse(task: Any) -> Any:
        raise AssertionError(f"{task.source.key} parsed in the main process")

    monkeypatch.setattr(etl.runner.pipeline, "timed_process_file", refuse)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _helper_pids() -> list[int]:
    first = parse_ahead._pid
    assert first is not None
    children = Path(f"/proc/{first}/task/{first}/children")
    deadline = time.monotonic() + 10
    while not children.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.01)  # the first helper forks the others once it is ready
    return [first, *map(int, children.read_text().split())]


def test_few_files_are_parsed_by_the_helpers_and_load_as_parsed_in_process(
    tmp_path: Path, helpers: None, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    _site(tmp_path / "site")
    ahead_url = f"sqlite:///{tmp_path / 'ahead.sqlite3'}"
    with monkeypatch.context() as patched:
        _not_in_this_process(patched)
        caplog.set_level(logging.INFO, logger="etl")
        ahead = etl.run([tmp_path / "site"], ahead_url, workers=2)
    assert "6 files parsed by 2 parse-ahead processes" in caplog.text
    assert parse_ahead._pid is None, "the helpers serve one run"

    here_url = f"sqlite:///{tmp_path / 'here.sqlite3'}"
    here = etl.run([tmp_path / "site"], here_url, workers=1)
    assert ahead.line().split(" [")[0] == here.line().split(" [")[0]
    assert (
        [r.path for r in ahead.rejected] == [r.path for r in here.rejected] == ["_news/broken.md"]
    )
    assert ahead.rejected[0].error == here.rejected[0].error
    assert snapshot(ahead_url) == snapshot(here_url)


def test_the_run_parses_itself_when_the_helpers_died(tmp_path: Path, helpers: None) -> None:
    pids = _helper_pids()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    _site(tmp_path / "site", broken=False)
    summary = etl.run([tmp_path / "site"], f"sqlite:///{tmp_path / 'etl.sqlite3'}", workers=2)
    assert summary.status == "succeeded"
    assert summary.articles_inserted == 5
    assert parse_ahead._pid is None


def test_a_re_run_takes_the_files_the_first_helper_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tree is walked and stamped by the first helper: the main process does
    neither, and still finds the one file edited since the last run."""
    _site(tmp_path / "site", broken=False)
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    assert etl.run([tmp_path / "site"], url, workers=1).articles_inserted == 5
    edited = tmp_path / "site" / "_news" / "doc3.md"
    edited.write_bytes(edited.read_bytes().replace(b"Body text.", b"Edited body."))
    for path in (tmp_path / "site" / "_news").iterdir():  # not changed just now: stamped
        os.utime(path, (time.time() - 60 + (path == edited), time.time() - 60 + (path == edited)))

    def refused(*args: Any) -> Any:
        raise AssertionError("walked or stamped in the main process")

    monkeypatch.setattr(etl.runner.planning, "discover_source", refused)
    monkeypatch.setattr(etl.runner.planning, "file_stamp", refused)
    parse_ahead.start(2)
    try:
        summary = etl.run([tmp_path / "site"], url, workers=2)
    finally:
        parse_ahead.stop()
    assert (summary.files_seen, summary.files_skipped_unchanged) == (5, 4)
    assert summary.articles_updated == 1


def test_a_survey_not_collected_is_not_taken_for_a_parse(tmp_path: Path, helpers: None) -> None:
    """A run that asked for a survey and failed before collecting it (a database that
    does not answer), then parses: the parse gets its own answer."""
    _site(tmp_path / "site", broken=False)
    root = str(tmp_path / "site")
    parse_ahead.survey([root], None, None)
    tasks = [Task(SourceFile(root, f"_news/doc{i}.md"), None, 10**6, None) for i in range(5)]
    parsed = parse_ahead.parse(tasks, 2)
    assert parsed is not None
    keys = [getattr(outcome, "source_key", None) for outcome in parsed.outcomes]
    assert keys == [task.source.key for task in tasks]
    assert parse_ahead.surveyed() is None


def test_a_survey_asked_twice_is_made_once_and_another_replaces_it(
    tmp_path: Path, helpers: None
) -> None:
    """``etl run`` asks as soon as its command line is parsed, the run again: the same
    survey is made once; a different one (the run's PATHs differ from what the command
    line seemed to say) replaces it, and only its answer is taken."""
    one, other = tmp_path / "one", tmp_path / "other"
    write_tree(one / "_news", {"a.md": b"---\ntitle: a\n---\n"})
    write_tree(other / "_news", {"b.md": b"---\ntitle: b\n---\n", "c.md": b"x"})
    parse_ahead.survey([str(one) + "/"], None, None)
    parse_ahead.survey([one], None, None)  # the same PATH, as the run spells it
    [found] = parse_ahead.surveyed() or []
    assert found.keys == ["_news/a.md"]
    assert parse_ahead.surveyed() is None  # one answer: nothing else owed
    parse_ahead.survey([one], None, None)
    parse_ahead.survey([other], None, None)
    [found] = parse_ahead.surveyed() or []
    assert (found.spec.root, found.keys) == (str(other), ["_news/b.md", "_news/c.md"])
    assert parse_ahead.surveyed() is None


def test_what_breaks_the_parser_is_logged_by_the_main_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    real = extract

    def breaks_on_doc2(source: Any, *args: Any, **kwargs: Any) -> Any:
        if source.key.endswith("doc2.md"):
            raise RuntimeError("a bug in the parser")
        return real(source, *args, **kwargs)

    # Before forking: the helpers inherit the broken parser.
    monkeypatch.setattr("etl.runner.parsing.extract_document", breaks_on_doc2)
    parse_ahead.start(2)
    try:
        _not_in_this_process(monkeypatch)
        _site(tmp_path / "site", broken=False)
        summary = etl.run([tmp_path / "site"], f"sqlite:///{tmp_path / 'etl.sqlite3'}", workers=2)
    finally:
        parse_ahead.stop()
    assert [r.path for r in summary.rejected] == ["_news/doc2.md"]
    assert "RuntimeError: a bug in the parser" in summary.rejected[0].error
    [record] = [r for r in caplog.records if r.getMessage().startswith("unexpected error in")]
    assert record.name == "etl" and record.levelno == logging.ERROR
    assert record.getMessage().endswith("doc2.md")
    assert record.exc_text and "RuntimeError: a bug in the parser" in record.exc_text
    as_json = json.loads(logs.JsonFormatter().format(record))
    assert "RuntimeError: a bug in the parser" in as_json["exception"]


def test_busy_helpers_end_with_the_main_process() -> None:
    """Killed (SIGKILL: no exit hook, no pipe closed on purpose) while both helpers
    parse: they die with it, not when their parse would have ended."""
    code = (
        "import os, sys, threading, time\n"
        "import etl.runner.parsing\n"
        "from etl.records import SourceFile\n"
        "from etl.runner import parse_ahead\n"
        "from etl.runner.parsing import Task\n"
        "etl.runner.parsing.process_file = lambda task: time.sleep(120)\n"
        "parse_ahead.start(2)\n"
        "first = parse_ahead._pid\n"
        "children = f'/proc/{first}/task/{first}/children'\n"
        "while not open(children).read().split():\n"
        "    time.sleep(0.01)\n"
        "tasks = [Task(SourceFile('/', f'{i}.md'), None, 1, None) for i in range(2)]\n"
        "threading.Thread(target=parse_ahead.parse, args=(tasks, 2), daemon=True).start()\n"
        "time.sleep(0.5)\n"
        "print(first, *open(children).read().split(), flush=True)\n"
        "time.sleep(120)\n"
    )
    process = start_python(code, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        pids = [int(pid) for pid in process.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        assert all(_state(pid) == "S" for pid in pids)  # asleep in the slow parse
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def test_no_helpers_when_there_is_one_core_or_none_was_started() -> None:
    assert parse_ahead.parse([], 2) is None
    parse_ahead.start(1)
    assert parse_ahead._pid is None
    assert parse_ahead.parse([object()], 2) is None  # type: ignore[list-item]


def test_no_helpers_when_the_system_refuses_the_pipes() -> None:
    code = (
        "import resource\n"
        "from etl.runner import parse_ahead\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12))\n"
        "parse_ahead.start(8)\n"
        "print(parse_ahead._pid, len(parse_ahead._helpers))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "0"]


def test_a_run_uses_no_more_helpers_than_its_workers(tmp_path: Path, helpers: None) -> None:
    _site(tmp_path / "site", broken=False)
    _helper_pids()  # both ready: two could take a share
    root = str(tmp_path / "site")
    names = sorted(path.name for path in (tmp_path / "site" / "_news").iterdir())
    tasks = [Task(SourceFile(root, f"_news/{name}"), None, 10**6, None) for name in names]
    parsed = parse_ahead.parse(tasks, 1)
    assert parsed is not None and parsed.processes == 1
    keys = [getattr(outcome, "source_key", None) for outcome in parsed.outcomes]
    assert keys == [task.source.key for task in tasks]  # all parsed, in order
    parsed = parse_ahead.parse(tasks, 4)
    assert parsed is not None and parsed.processes == 2


def test_a_helper_lost_mid_parse_leaves_the_parse_here_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """The first helper answers (and has logged what broke on doc0), the second dies
    parsing doc4: the run parses every file itself, and what broke is logged once."""
    real = extract

    def breaks(source: Any, *args: Any, **kwargs: Any) -> Any:
        if source.key.endswith("doc0.md"):
            raise RuntimeError("a bug in the parser")
        return real(source, *args, **kwargs)

    def breaks_or_dies(source: Any, *args: Any, **kwargs: Any) -> Any:
        if source.key.endswith("doc4.md"):
            os._exit(1)  # as the OOM killer would
        return breaks(source, *args, **kwargs)

    monkeypatch.setattr("etl.runner.parsing.extract_document", breaks_or_dies)
    parse_ahead.start(2)  # the helpers inherit breaks_or_dies
    try:
        first, _ = _helper_pids()
        monkeypatch.setattr("etl.runner.parsing.extract_document", breaks)  # this process
        _site(tmp_path / "site", broken=False)  # doc0-doc2 to one helper, doc3-doc4 to the other
        url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
        summary = etl.run([tmp_path / "site"], url, workers=2)
    finally:
        parse_ahead.stop()
    assert [r.path for r in summary.rejected] == ["_news/doc0.md"]
    assert summary.articles_inserted == 4
    logged = [r for r in caplog.records if r.getMessage().startswith("unexpected error in")]
    assert len(logged) == 1
    assert not _alive(first)


def test_a_command_that_only_mentions_run_stops_the_helpers(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from etl.__main__ import main\n"
        "sys.argv = ['etl', 'search', 'run', '--database-url', sys.argv[1]]\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    from etl.runner import parse_ahead\n"
        "    print('helper', parse_ahead._pid, file=sys.stderr)\n"
    )
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    assert run_etl("db", "upgrade", "--database-url", url).returncode == 0
    result = run_python(code, url)
    assert "helper None" in result.stderr, result.stderr


@pytest.mark.parametrize("changed", [0, 3, 80])
def test_etl_run_stops_its_helpers_whatever_it_parses(tmp_path: Path, changed: int) -> None:
    """Nothing to parse, a few files (the helpers parse them) or many (the worker pool
    does): `etl run` ends at once, and leaves no process behind."""
    tag = token()
    files = {f"doc{i}.md": render(make_doc(f"{tag}-{i}")) for i in range(changed)}
    write_tree(tmp_path / "site" / "_news", files or {"doc.md": render(make_doc(tag))})
    for path in (tmp_path / "site" / "_news").iterdir():  # not changed just now: skipped
        os.utime(path, (time.time() - 100, time.time() - 100))
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    if not changed:
        assert run_etl("run", str(tmp_path / "site"), "--database-url", url).returncode == 0
    code = (
        "import os, sys\n"
        "from etl.__main__ import main\n"
        "sys.argv = ['etl', 'run', sys.argv[1], '--database-url', sys.argv[2], '-v']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    from etl.runner import parse_ahead\n"
        "    children = open(f'/proc/{os.getpid()}/task/{os.getpid()}/children').read()\n"
        "    print('helper', parse_ahead._pid, 'children', children.split(), file=sys.stderr)\n"
    )
    result = run_python(code, str(tmp_path / "site"), url)
    assert result.returncode == 0, result.stderr
    assert "helper None children []" in result.stderr
    assert ("parse-ahead processes" in result.stderr) == (0 < changed < 64)
