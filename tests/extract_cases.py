"""Helpers shared by the tests of etl.extract.extract (tests/test_extract_*.py)."""

from __future__ import annotations

from pathlib import Path

from etl.extract.extract import extract
from etl.records import RawDocument, SourceFile


def run(data: bytes, tmp_path: Path, max_bytes: int | None = None) -> RawDocument:
    """Extract ``data`` written to a file, as the pipeline does."""
    path = tmp_path / "doc.md"
    path.write_bytes(data)
    source = SourceFile(str(tmp_path), "doc.md")
    return extract(source) if max_bytes is None else extract(source, max_bytes=max_bytes)
