"""Where a run's time goes: per-process accumulators, cheap enough to stay on.

Owns the timers behind ``timings`` in ``etl run --json`` and its ``-v`` line: CPU
seconds spent reading and parsing files (``fill``), seconds spent waiting for the
writer lock (``wait``) and holding it (``lock``), and, while it is held, the
seconds of each statement by kind (``lock_kinds``: the table it writes or reads,
see :func:`kind_of`). The writer lock's section (``etl.db.writer``)
reports to :func:`writer_lock`; statements are timed by SQLAlchemy's cursor
events, and raw-driver paths that bypass them (PostgreSQL COPY) by
:func:`statement`. Nothing is done per row: a clock read or two per file,
statement and transaction.

The timers are this process's; a worker process resets them for each chunk
(:func:`reset`) and sends :func:`snapshot` back with its chunk's summary, which
the main process adds up (``RunSummary.merge``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from etl.records import add_timings

clock = time.perf_counter

_totals: dict[str, float] = {"fill": 0.0, "wait": 0.0, "lock": 0.0}
_kinds: dict[str, float] = {}
_held = False  # this process holds the writer lock: statements are timed only then
_label: str | None = None  # what the caller says its statements are for (see labelled)
_statement_started = 0.0
_acquired = 0.0  # when this process took the writer lock it holds

# A statement's first table: after INSERT INTO, UPDATE, DELETE FROM, FROM or COPY.
_FIRST_TABLE = re.compile(r"\b(?:INTO|UPDATE|FROM|COPY)\s+[`\"]?(\w+)", re.IGNORECASE)
_STAGING_PREFIX = "etl_staging_"  # etl.db.sql's PostgreSQL staging tables

ENTITY_TABLES = frozenset(
    {
        "providers",
        "images",
        "topics",
        "article_topics",
        "article_images",
        "article_provider_images",
        "provider_images",
        "provider_document_images",
        "source_providers",
        "source_topics",
    }
)
_KIND_OF_TABLE = {
    "related_articles": "links",
    "etl_runs": "counts",
    "pending_aggregates": "aggregates",
    "article_changes": "feed",
    "sqlite_sequence": "feed",  # SQLite's change-feed tagging reads it
    **dict.fromkeys(ENTITY_TABLES, "entities"),
}
_kind_cache: dict[str, str] = {}
_KIND_CACHE_SIZE = 4096  # SQLite's IN lists make many distinct texts: bound the cache
_KIND_CACHE_LENGTH = 4096  # MariaDB's bulk INSERTs of literals are a megabyte each: not kept


def kind_of(statement: str) -> str:
    """What a statement run under the writer lock is for, from its verb and first table.

    ``articles upsert`` (any write to ``articles``, stubs included), ``articles read``,
    ``elect`` (reading ``source_files``: which file wins a URL), ``source_files`` (writing
    them), ``links``, ``entities`` (providers, images, topics and their link tables),
    ``counts`` (the run's row), ``aggregates`` (the pending ones), ``feed``, else
    ``other``. A pure rule; PostgreSQL staging tables count as the table they stage.
    """
    verb = statement.lstrip()[:6].upper()
    match = _FIRST_TABLE.search(statement)
    if match is None:
        return "other"
    table = match.group(1).lower().removeprefix(_STAGING_PREFIX)
    if table == "articles":
        return "articles read" if verb == "SELECT" else "articles upsert"
    if table == "source_files":
        return "elect" if verb == "SELECT" else "source_files"
    return _KIND_OF_TABLE.get(table, "other")


def _cached_kind(statement: str) -> str:
    found = _kind_cache.get(statement)
    if found is None:
        found = kind_of(statement)
        if len(_kind_cache) < _KIND_CACHE_SIZE and len(statement) <= _KIND_CACHE_LENGTH:
            _kind_cache[statement] = found
    return found


def _add_kind(kind: str, seconds: float) -> None:
    _kinds[kind] = _kinds.get(kind, 0.0) + seconds


def _before_cursor_execute(*_: Any) -> None:
    global _statement_started
    if _held:
        _statement_started = clock()


def _after_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
    if _held:
        _add_kind(_label or _cached_kind(statement), clock() - _statement_started)


# On the class: every engine of the process, however it was made, reports.
event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
event.listen(Engine, "after_cursor_execute", _after_cursor_execute)


def reset() -> None:
    """Start this process's timers from zero (a run's start, a worker's chunk)."""
    global _held, _label
    for name in _totals:
        _totals[name] = 0.0
    _kinds.clear()
    _held, _label = False, None


def add(name: str, seconds: float) -> None:
    """Add to a timer: ``fill`` (the CPU seconds of reading and parsing a file)."""
    _totals[name] += seconds


def snapshot() -> dict[str, Any]:
    """This process's timers so far, in seconds (``lock_kinds`` by kind); a lock still
    held (a dry run's, held to its end) counts until now."""
    held = clock() - _acquired if _held else 0.0
    return {**_totals, "lock": _totals["lock"] + held, "lock_kinds": dict(_kinds)}


def report(startup: float, load: float, finish: float, workers: dict[str, Any]) -> dict[str, Any]:
    """A run's ``timings``: its phases (wall seconds), then this process's timers added
    to those its workers sent, in milliseconds; ``lock_kinds`` the largest first."""
    total: dict[str, Any] = {"startup": startup, "load": load, "finish": finish}
    add_timings(total, workers)
    add_timings(total, snapshot())
    kinds = sorted(total.pop("lock_kinds", {}).items(), key=lambda item: -item[1])
    rounded: dict[str, Any] = {name: round(value, 3) for name, value in total.items()}
    rounded["lock_kinds"] = {name: round(value, 3) for name, value in kinds}
    return rounded


class Section:
    """What :func:`writer_lock` yields: call it once the lock is held; :meth:`asking`
    when the body starts asking for it after work of its own (not ``wait``)."""

    def __init__(self, nested: bool) -> None:
        self.nested = nested
        self.entered = clock()

    def asking(self) -> None:
        self.entered = clock()

    def __call__(self) -> None:
        global _held, _acquired
        if self.nested:
            return
        _acquired = clock()
        _totals["wait"] += _acquired - self.entered
        _held = True


@contextmanager
def writer_lock() -> Iterator[Section]:
    """The writer lock's section: entered before asking for the lock, left after the
    commit. The body calls the yielded section once it holds the lock: the time
    before is ``wait``, the time after ``lock``. Nested sections (savepoints) count
    nothing of their own."""
    section = Section(nested=_held)
    if section.nested:
        yield section
        return
    try:
        yield section
    finally:
        _released()


def _released() -> None:
    global _held
    if _held:
        _totals["lock"] += clock() - _acquired
        _held = False


@contextmanager
def statement(table: str, verb: str = "INSERT") -> Iterator[None]:
    """Time a statement that bypasses SQLAlchemy's events (the driver's own cursor:
    PostgreSQL COPY) as the kind of ``verb`` on ``table``."""
    if not _held:
        yield
        return
    started = clock()
    try:
        yield
    finally:
        _add_kind(_label or kind_of(f"{verb} INTO {table}"), clock() - started)


@contextmanager
def labelled(kind: str) -> Iterator[None]:
    """Count the statements of the body as ``kind`` whatever their tables (for work
    known by its purpose: the run's counts, stubs, aggregates)."""
    global _label
    outer, _label = _label, kind
    try:
        yield
    finally:
        _label = outer
