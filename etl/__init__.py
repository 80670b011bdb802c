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

from etl.pipeline import Rejection, RunAborted, RunSummary, run

__all__ = ["Rejection", "RunAborted", "RunSummary", "run"]
