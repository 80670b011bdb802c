"""One file, parsed: read it, hash it, skip it if its content is unchanged, else
extract and transform it (:func:`process_file`).

Free of the database layer (no SQLAlchemy, no driver), so that a process can get
ready to parse without importing it (``etl.runner.parse_ahead``).

May import: ``etl.extract``, ``etl.transform`` (on first use), ``etl.records``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import NamedTuple

from etl.extract.extract import content_hash, prefetch, read_bytes
from etl.extract.extract import extract as extract_document
from etl.records import (
    DocumentError,
    FileStamp,
    Outcome,
    Rejection,
    SourceFile,
    Unchanged,
)

log = logging.getLogger("etl")


class Task(NamedTuple):
    """A file to process, with what the database knows of it."""

    source: SourceFile
    known_hash: str | None  # content hash stored by an earlier run
    max_bytes: int
    stamp: FileStamp | None  # size and mtime seen before reading, recorded after loading


def prefetch_files(tasks: Iterable[Task]) -> None:
    """Start reading the files of ``tasks`` (``etl.extract.extract.prefetch``): what
    parses a list of tasks calls it first, so the disk reads ahead of the parser."""
    prefetch(task.source.path for task in tasks)


def process_file(task: Task) -> Outcome:
    """Read, hash, and (if the content changed) parse and normalize one file; its
    document carries the task's stamp, for the ledger to record with its content."""
    # Imported here, not at the top: pydantic and the models cost a tenth of a second,
    # which a re-run that finds nothing to parse does not pay.
    from etl.transform.transform import transform

    source, known_hash, max_bytes, stamp = task
    digest = None
    try:
        data = read_bytes(source.path, max_bytes)
        digest = content_hash(data)
        if digest == known_hash:
            return Unchanged(source.key)
        doc = transform(extract_document(source, max_bytes, data=data, digest=digest))
        return doc if stamp is None else replace(doc, stamp=stamp)
    except DocumentError as exc:
        return Rejection(source.key, exc.reason, exc.line, exc.column, digest)
    except Exception as exc:  # a bug must not stop the run; the file is reported
        log.exception("unexpected error in %s", source.path)
        return Rejection(
            source.key, f"unexpected error: {type(exc).__name__}: {exc}", None, None, digest
        )
