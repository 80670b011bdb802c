"""The data dictionary: every table, column and view described; `etl schema`; docs/schema.md."""

from __future__ import annotations

import json
import re
import subprocess

from etl.db import dictionary
from etl.db.schema import metadata
from etl.db.views import VIEWS
from tests.helpers import ROOT, run_etl

DOC = ROOT / "docs" / "schema.md"

# MariaDB's limits (a longer comment is an error in strict mode).
MAX_COLUMN_COMMENT, MAX_TABLE_COMMENT = 1024, 2048


def test_every_table_and_column_has_a_description() -> None:
    missing = [table.name for table in metadata.tables.values() if not table.comment]
    missing += [
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
        if not (column.comment or "").strip()
    ]
    assert missing == [], f"add comment=... in etl/db/schema/ for: {', '.join(missing)}"


def test_every_view_and_view_column_has_a_description() -> None:
    missing = [view.name for view in VIEWS if not view.description.strip()]
    missing += [
        f"{view.name}.{column.name}"
        for view in VIEWS
        for column in view.columns
        if not column.description.strip()
    ]
    assert missing == [], f"describe in etl/db/views.py: {', '.join(missing)}"
    names = [view.name for view in VIEWS]
    assert len(set(names)) == len(names) and not set(names) & set(metadata.tables)
    for view in VIEWS:
        columns = [column.name for column in view.columns]
        assert len(set(columns)) == len(columns), view.name


def test_descriptions_fit_mariadb_comments() -> None:
    too_long = [
        t.name for t in metadata.tables.values() if len(t.comment or "") > MAX_TABLE_COMMENT
    ]
    too_long += [
        f"{t.name}.{c.name}"
        for t in metadata.tables.values()
        for c in t.columns
        if len(c.comment or "") > MAX_COLUMN_COMMENT
    ]
    assert too_long == []


def test_docs_schema_md_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == dictionary.markdown(), (
        f"docs/schema.md is out of date: run `{dictionary.REGENERATE}`"
    )


def test_etl_schema_prints_the_dictionary_without_a_database() -> None:
    """An unreachable database URL in the environment does not matter: nothing connects."""
    env = {"ETL_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nowhere"}

    def etl(*args: str) -> subprocess.CompletedProcess[str]:
        return run_etl("schema", *args, env=env, timeout=60)

    markdown = etl()
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout == DOC.read_text(encoding="utf-8")
    result = etl("--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {t["name"]: [c["name"] for c in t["columns"]] for t in data["tables"]} == {
        table.name: [c.name for c in table.columns] for table in metadata.tables.values()
    }
    assert [v["name"] for v in data["views"]] == [view.name for view in VIEWS]
    articles = next(t for t in data["tables"] if t["name"] == "articles")
    assert articles["primary_key"] == ["id"]
    assert {"columns": ["provider_id"], "references": "providers"}.items() <= next(
        iter(articles["foreign_keys"])
    ).items()
    is_removed = next(c for c in articles["columns"] if c["name"] == "is_removed")
    assert "removed: true" in is_removed["description"] and "prune" in is_removed["description"]
    overview = next(v for v in data["views"] if v["name"] == "article_overview")
    assert {"article_id", "url", "title", "topics"} <= {c["name"] for c in overview["columns"]}


def test_the_diagram_has_every_table_column_and_foreign_key() -> None:
    """Checked against Mermaid's erDiagram grammar: quoted entity names, attribute words
    (letters, digits, ``_()-,.``), keys PK/FK/UK."""
    lines = dictionary.mermaid().splitlines()
    assert lines[0] == "erDiagram"
    relation = re.compile(r'^    "(\w+)" (\|\||\|o)--o\{ "(\w+)" : "(\w+)"$')
    entity = re.compile(r'^    "(\w+)" \{$')
    attribute = re.compile(
        r"^        ([A-Za-z_][\w()\-,.]*) ([A-Za-z_]\w*)( (?:PK|FK|UK)(?:, (?:PK|FK|UK))*)?$"
    )
    relations: set[tuple[str, str, str]] = set()
    attributes: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines[1:]:
        if match := relation.match(line):
            relations.add((match[1], match[3], match[4]))
        elif match := entity.match(line):
            current = match[1]
            attributes[current] = []
        elif line == "    }":
            current = None
        else:
            match = attribute.match(line)
            assert match and current, f"not valid erDiagram syntax: {line!r}"
            attributes[current].append(match[2])
    assert attributes == {t.name: [c.name for c in t.columns] for t in metadata.tables.values()}
    assert relations == {
        (fk.referred_table.name, table.name, fk.columns[0].name)
        for table in metadata.tables.values()
        for fk in table.foreign_key_constraints
    }
    assert "```mermaid\n" + dictionary.mermaid() + "```" in DOC.read_text(encoding="utf-8")


def test_readme_links_the_data_dictionary() -> None:
    assert "(docs/schema.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
