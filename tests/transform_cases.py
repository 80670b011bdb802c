"""Helpers shared by the tests of etl.transform.transform (tests/test_transform_*.py).

A minimal valid document (``URL``, ``raw``, ``doc``) and a related entry (``entry``).
"""

from __future__ import annotations

from typing import Any

from etl.records import RawDocument, SourceFile, TransformedDocument
from etl.transform.transform import transform

URL = "https://example.com/news/a"


def raw(front_matter: dict[str, Any], key: str = "doc.md", body: str = "body\n") -> RawDocument:
    return RawDocument(SourceFile(".", key), "0" * 64, front_matter, body)


def doc(key: str = "doc.md", **fields: Any) -> TransformedDocument:
    """Transform a minimal valid document with ``fields`` added or replaced."""
    front_matter: dict[str, Any] = {"title": "A title", "webUrl": URL}
    front_matter.update(fields)
    return transform(raw(front_matter, key))


def entry(url: str | None = None, **fields: Any) -> dict[str, Any]:
    result = dict(fields)
    if url is not None:
        result["webUrl"] = url
    return result
