"""news-etl: Jekyll news front-matter into a normalized SQL schema.

    from etl import run
    summary = run(["seeds"], "sqlite:///etl.sqlite3")
    print(summary.line())

``runs()`` and ``rejections()`` read what runs recorded (``etl runs``, ``etl rejects``);
``search()`` finds live full articles by words of their title and excerpt (``etl search``).

Stages, one package each, in the order data flows (each package's docstring says what
it owns and which stages it may import): ``extract`` (files -> raw front-matter),
``transform`` (pydantic models and normalization rules), ``load`` (the news entities),
``ledger`` (runs, rejects, source files), ``runner`` (the pipeline API, the process pool,
signals, logs), ``query`` (the change feed, search), ``db`` (the tables, views, engines,
the per-dialect SQL toolkit, migrations), ``cli``; ``records`` is the contract: every
type crossing a stage boundary.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etl.ledger.rejections import rejections
    from etl.ledger.run_history import runs
    from etl.query.feed import Change, CursorTooOld, changes
    from etl.query.fulltext import SearchResult, search
    from etl.records import Rejection, RunAborted, RunInterrupted, RunSummary
    from etl.runner.pipeline import run

__all__ = [
    "Change",
    "CursorTooOld",
    "Rejection",
    "RunAborted",
    "RunInterrupted",
    "RunSummary",
    "SearchResult",
    "changes",
    "rejections",
    "run",
    "runs",
    "search",
]
# Where each name of the API lives; the rest are in etl.runner.pipeline.
_MODULE_OF = {
    "rejections": "ledger.rejections",
    "runs": "ledger.run_history",
    "Change": "query.feed",
    "CursorTooOld": "query.feed",
    "changes": "query.feed",
    "SearchResult": "query.fulltext",
    "search": "query.fulltext",
}


def import_submodule(package: str, name: str) -> ModuleType:
    """``package.name`` imported on first use, so that ``import etl`` alone reaches
    ``etl.db.schema``; an AttributeError for a name that is no submodule."""
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.{name}":
                raise  # the submodule exists but one of its own imports is missing
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    # The API is imported on first use, so that the `etl` command (etl.__main__)
    # controls how its imports happen. `import etl; etl.db.schema...` still works:
    # a submodule is imported when first asked for (each stage package does the same).
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{_MODULE_OF.get(name, 'runner.pipeline')}")
        return getattr(module, name)
    return import_submodule(__name__, name)
