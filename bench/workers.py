"""The comparison tools' side, run as ``run.py worker ...`` under ``--dlt-python`` (an
interpreter without news-etl): dlt's and sqlite-utils' loads of the documents' front
matter, and the probe of what that interpreter has installed.

Only the standard library is imported at module level; dlt, sqlite-utils and PyYAML
inside the functions that use them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

PROBE = """
import importlib, json
found = {}
for name in ("dlt", "yaml", "sqlite_utils", "sqlalchemy", "psycopg2", "pymysql"):
    try:
        module = importlib.import_module(name)
    except Exception as error:
        found[name] = None
    else:
        found[name] = getattr(module, "__version__", "installed")
try:
    import yaml
    found["yaml_libyaml"] = bool(yaml.__with_libyaml__)
except Exception:
    found["yaml_libyaml"] = False
print(json.dumps(found))
"""


def probe_python(python: str | None) -> dict[str, Any]:
    if not python:
        return {}
    try:
        completed = subprocess.run(
            [python, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        print(f"--dlt-python {python} is unusable: {error}", file=sys.stderr)
        return {}
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def front_matter(path: Path, loader: Any) -> dict[str, Any] | None:
    """The YAML front matter of a Jekyll document as a dict, or None."""
    import yaml

    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        data = yaml.load(text[3:end], Loader=loader)  # CSafeLoader (or SafeLoader)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def documents(directory: Path, counts: dict[str, float]) -> Iterator[dict[str, Any]]:
    """Each document's front matter; ``counts`` gets the files, documents, skipped
    files and the seconds spent reading and parsing them."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(directory.rglob("*.md")):
        counts["files"] += 1
        started = time.perf_counter()
        data = front_matter(path, loader)
        counts["read_parse_seconds"] += time.perf_counter() - started
        if data is None or not data.get("webUrl"):
            counts["skipped"] += 1
            continue
        counts["documents"] += 1
        yield data


# dlt's dataset. On MariaDB its `sqlalchemy` destination makes it, and its staging
# dataset, databases of their own beside the one in the URL (see DLT_MARIADB_DATABASES).
DLT_DATASET = "news"
DLT_MARIADB_DATABASES = (DLT_DATASET, f"{DLT_DATASET}_staging")


def worker_dlt(directory: Path, url: str, pipelines_dir: Path, name: str) -> dict[str, Any]:
    import dlt

    counts: dict[str, float] = {"files": 0, "documents": 0, "skipped": 0, "read_parse_seconds": 0.0}

    @dlt.resource(name="news", write_disposition="merge", primary_key="webUrl")
    def news() -> Iterator[dict[str, Any]]:
        yield from documents(directory, counts)

    if url.startswith("postgresql"):
        # dlt insists on a password even where the server trusts the client: give it
        # a dummy one, which a trust-auth server ignores.
        if "@" in url and ":" not in url.split("://", 1)[1].split("@", 1)[0]:
            url = url.replace("@", ":unused@", 1)
        destination = dlt.destinations.postgres(url)
    else:
        destination = dlt.destinations.sqlalchemy(url)
    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=destination,
        dataset_name=DLT_DATASET,
        pipelines_dir=str(pipelines_dir),
    )
    phases: dict[str, float] = {}
    started = time.perf_counter()
    pipeline.extract(news())
    phases["extract"] = time.perf_counter() - started
    started = time.perf_counter()
    normalize_info = pipeline.normalize()
    phases["normalize"] = time.perf_counter() - started
    started = time.perf_counter()
    # SQLite takes one writer at a time: dlt's default 20 parallel load jobs end in
    # "database is locked" once a job outlasts the 5 s busy timeout (as at 10x).
    load_info = pipeline.load(workers=1 if url.startswith("sqlite") else 20)
    phases["load"] = time.perf_counter() - started
    load_info.raise_on_failed_jobs()
    return {
        "dlt_version": dlt.__version__,
        **{key: round(value, 3) for key, value in counts.items()},
        "phases": {key: round(value, 3) for key, value in phases.items()},
        "row_counts": dict(normalize_info.row_counts),
    }


def worker_sqlite_utils(directory: Path, url: str) -> dict[str, Any]:
    import sqlite_utils

    counts: dict[str, float] = {"files": 0, "documents": 0, "skipped": 0, "read_parse_seconds": 0.0}
    database = sqlite_utils.Database(url.removeprefix("sqlite:///"))

    def rows() -> Iterator[dict[str, Any]]:
        for data in documents(directory, counts):
            provider = data.pop("provider", None) or {}
            if isinstance(provider, dict):
                data["provider_name"] = provider.get("name")
                data["provider_domain"] = provider.get("domain")
            yield data

    started = time.perf_counter()
    articles = database.table("articles")  # a Table, never a View
    articles.upsert_all(rows(), pk="webUrl", alter=True)
    upserted = time.perf_counter() - started
    started = time.perf_counter()
    # Each run upserts provider_name/provider_domain columns; extract them into the
    # providers lookup table (reusing the rows already there on a re-run).
    columns = articles.columns_dict
    if "provider_name" in columns:
        if "provider_id" in columns:
            providers = database.table("providers")
            for name, domain in database.execute(
                "SELECT DISTINCT provider_name, provider_domain FROM articles"
                " WHERE provider_name IS NOT NULL OR provider_domain IS NOT NULL"
            ).fetchall():
                providers.lookup({"provider_name": name, "provider_domain": domain})
            database.execute(
                "UPDATE articles SET provider_id = (SELECT id FROM providers p"
                " WHERE p.provider_name IS articles.provider_name"
                " AND p.provider_domain IS articles.provider_domain)"
                " WHERE provider_name IS NOT NULL OR provider_domain IS NOT NULL"
            )
            articles.transform(drop={"provider_name", "provider_domain"})
        else:
            articles.extract(
                ["provider_name", "provider_domain"], table="providers", fk_column="provider_id"
            )
    extracted = time.perf_counter() - started
    return {
        **{key: round(value, 3) for key, value in counts.items()},
        "phases": {"upsert_all": round(upserted, 3), "extract": round(extracted, 3)},
        "row_counts": {table: database[table].count for table in database.table_names()},
    }


def worker_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="run.py worker")
    parser.add_argument("tool", choices=("dlt", "sqlite-utils"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pipelines-dir", type=Path)
    parser.add_argument("--pipeline-name", default="bench_news")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.tool == "dlt":
        summary = worker_dlt(
            args.directory, args.database_url, args.pipelines_dir, args.pipeline_name
        )
    else:
        summary = worker_sqlite_utils(args.directory, args.database_url)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(summary, default=str))
    return 0
