"""Extract: the files of a site, read the way Jekyll reads them, into raw records.

Owns the bytes and stamps of a file, front-matter and its YAML (``extract``), long
sequences parsed an item at a time, each distinct item once (``shared_items``), the
strict YAML check (``strict_yaml``), the sources, their scope and shards
(``sources``), and the site's ``_data`` files and ``_config.yml`` (``site_data``).
It knows nothing of the database or of the rules that normalize a document.

May import: ``etl.records``.
"""

from __future__ import annotations

from types import ModuleType

from etl import import_submodule


def __getattr__(name: str) -> ModuleType:
    return import_submodule(__name__, name)
