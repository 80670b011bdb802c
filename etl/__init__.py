"""news-etl: Jekyll news front-matter into a normalized SQL schema.

    from etl import run
    summary = run(["seeds"], "sqlite:///etl.sqlite3")
    print(summary.line())

Modules, in the order data flows: ``extract`` (files -> raw front-matter),
``documents`` (pydantic models of the input), ``transform`` (normalization
rules), ``records`` (what transform hands to load), ``load`` (SQL upserts),
``schema`` (the tables), ``database`` (engines, migrations), ``pipeline``
(orchestration, the API), ``cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etl.pipeline import Rejection, RunAborted, RunSummary, run

__all__ = ["Rejection", "RunAborted", "RunSummary", "run"]


_MODULES = frozenset(
    (
        "cli",
        "database",
        "documents",
        "extract",
        "load",
        "pipeline",
        "records",
        "schema",
        "strict_yaml",
        "transform",
    )
)


def __getattr__(name: str) -> Any:
    # The API is imported on first use, so that the `etl` command (etl.__main__)
    # controls how its imports happen. `import etl; etl.pipeline...` works as when
    # importing etl loaded the pipeline.
    if name in __all__:
        from etl import pipeline

        return getattr(pipeline, name)
    if name in _MODULES:
        return importlib.import_module(f"etl.{name}")
    raise AttributeError(f"module 'etl' has no attribute {name!r}")
