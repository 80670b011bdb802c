"""Query: the read side for consumers of the news: the change feed and full-text search.

Owns ``etl changes`` and its API (``feed``) and ``etl search`` and its API
(``fulltext``). Reads only what the load wrote; writes only the feed's own state.

May import: ``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
