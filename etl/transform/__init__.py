"""Transform: raw front-matter -> the normalized records the load writes.

Owns the pydantic models of the input (``documents``), the normalization rules
(``transform``), and a site's taxonomy read and normalized from its ``_data`` files
(``taxonomy``). Pure functions but for reading the taxonomy's files; the schema is
imported only for the lengths of its columns.

May import: ``etl.extract``, ``etl.db``, ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
