"""news-etl: Jekyll news front-matter into a normalized SQL schema.

    from etl import run
    summary = run(["seeds"], "sqlite:///etl.sqlite3")
    print(summary.line())

``runs()`` and ``rejections()`` read what runs recorded (``etl runs``, ``etl rejects``);
``search()`` finds live full articles by words of their title and excerpt (``etl search``).

Modules, in the order data flows: ``extract`` (files -> raw front-matter),
``documents`` (pydantic models of the input), ``transform`` (normalization
rules), ``records`` (the contract: every type crossing a stage boundary),
``load`` (the news entities), ``sql`` (the per-dialect toolkit), ``ledger``
(runs, rejects, source files), ``workers`` (the process pool), ``interrupts``
(signals during a run), ``schema`` (the tables), ``database`` (engines,
migrations), ``pipeline`` (the API), ``feed`` (the change feed), ``fulltext`` (search),
``cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etl.feed import Change, CursorTooOld, changes
    from etl.fulltext import SearchResult, search
    from etl.ledger import rejections, runs
    from etl.pipeline import run
    from etl.records import Rejection, RunAborted, RunInterrupted, RunSummary

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
# Where each name of the API lives; the rest are in etl.pipeline.
_MODULE_OF = {
    "rejections": "ledger",
    "runs": "ledger",
    "Change": "feed",
    "CursorTooOld": "feed",
    "changes": "feed",
    "SearchResult": "fulltext",
    "search": "fulltext",
}


def __getattr__(name: str) -> Any:
    # The API is imported on first use, so that the `etl` command (etl.__main__)
    # controls how its imports happen. `import etl; etl.pipeline...` still works:
    # a submodule is imported when first asked for.
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{_MODULE_OF.get(name, 'pipeline')}")
        return getattr(module, name)
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the submodule exists but one of its own imports is missing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
