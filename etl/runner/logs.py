"""What the ``etl`` command logs, and how: levels per ``-v``/``-q``, text or JSON lines.

Owns the one stderr handler of the command (stdlib ``logging``), the verbosity ladder
(see :func:`levels`), the JSON formatter of ``--log-format json`` (one object per line:
``time`` in UTC ISO 8601, ``level``, ``logger``, ``message``, ``run_id``, ``source``,
and the event's own fields, given as ``extra=``), the run's context that every record
carries (:func:`bind`: set by the pipeline, inherited by forked workers), and the one
place a rejected document is reported (:func:`rejected`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from etl.records import Rejection

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
# Rejected documents have a logger of their own, so that -q can silence them alone.
REJECTED_LOGGER = "etl.rejected"

_CONTEXT: dict[str, Any] = {}  # the run's run_id and sources; a forked worker inherits it
# What every LogRecord has: anything else on a record is an event's field (extra=).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def bind(**fields: Any) -> None:
    """Fields every later record carries (``run_id``, ``sources``); None removes one."""
    for key, value in fields.items():
        if value is None:
            _CONTEXT.pop(key, None)
        else:
            _CONTEXT[key] = value


def rejected(item: Rejection, source: str | None = None) -> None:
    """Report a rejected document (once: this is the only place that does)."""
    logging.getLogger(REJECTED_LOGGER).error(
        "rejected %s",
        item,
        extra={
            "path": item.path,
            "error": item.error,
            "line": item.line,
            "column": item.column,
            **({"source": source} if source else {}),
        },
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for journald, Loki, CloudWatch or any log shipper."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": _CONTEXT.get("run_id"),
        }
        sources = _CONTEXT.get("sources") or []
        data["source"] = sources[0] if len(sources) == 1 else None
        if len(sources) > 1:
            data["sources"] = list(sources)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # formatted where it was raised (etl.runner.parse_ahead)
            data["exception"] = record.exc_text
        return json.dumps(data, default=str, ensure_ascii=False)


def levels(verbosity: int) -> dict[str, int]:
    """Logger -> level for a verbosity (``-v`` counts +1, ``-q`` -1).

    -2 and below: errors only. -1: warnings (and the summary, on stdout), no rejected
    documents (``etl rejects`` lists them). 0: warnings and each rejected document.
    1: what the run does (sources, paths, shard, workers, batches with sizes and
    timings) and Alembic's steps. 2: each file. 3: SQLAlchemy's statements too.
    """
    if verbosity <= -2:
        etl, other = logging.ERROR, logging.ERROR
    elif verbosity <= 0:
        etl, other = logging.WARNING, logging.WARNING
    elif verbosity == 1:
        etl, other = logging.INFO, logging.INFO
    else:
        etl, other = logging.DEBUG, logging.INFO
    return {
        "": other,
        "etl": etl,
        REJECTED_LOGGER: logging.CRITICAL + 1 if verbosity < 0 else logging.NOTSET,
        "sqlalchemy": logging.INFO if verbosity >= 3 else logging.WARNING,
        # Alembic names each plugin it sets up on every start: noise below -vvv.
        "alembic.runtime.plugins": logging.INFO if verbosity >= 3 else logging.WARNING,
    }


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The command's handler: found again (and reconfigured) by its type."""


def configure(verbosity: int = 0, log_format: str = "text") -> None:
    """Set up (again: options after the subcommand change it) the stderr handler."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None:
        handler = _Handler(sys.stderr)
        root.addHandler(handler)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    for name, level in levels(verbosity).items():
        logging.getLogger(name).setLevel(level)


def is_json() -> bool:
    """Whether the command's handler writes JSON (errors are then JSON too)."""
    return any(
        isinstance(h, _Handler) and isinstance(h.formatter, JsonFormatter)
        for h in logging.getLogger().handlers
    )
