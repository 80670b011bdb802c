"""Hostile strings: values built to break SQL or encodings are stored exactly, and the
database password never appears in output, errors, summaries, logs or tables.

Database cases run on every backend against one database per backend and module (as in
``tests/test_bad_input.py``); each case uses its own random token in URLs and names.
Hostile documents (tags, NUL bytes, bombs, depth, size, special files) are in
``tests/test_hostile_documents.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import make_url

import etl
from etl.cli import main
from etl.db.schema import articles, etl_runs, rejected_documents
from tests.helpers import (
    article_row,
    connect,
    make_doc,
    render,
    run_etl,
    run_files,
    token,
    url_for,
)

# --- strings built to break SQL or encodings: stored exactly ---------------------------------


def yaml_quoted(value: str) -> str:
    """A YAML double-quoted scalar for ``value``; only characters YAML treats specially are
    escaped, so everything else (emoji, RTL marks, quotes...) is in the file literally."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif (
            ord(char) < 0x20 or char in "\x7f\x85\u2028\u2029\ufeff" or 0xD800 <= ord(char) < 0xE000
        ):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


LONG_TITLE = ("Long title é 😀 ' ; -- \u200f ") * 600
EXACT_STRINGS = {
    "sql_injection": "'); DROP TABLE articles; --",
    "sql_quoting": "Robert'); DROP TABLE articles;-- \" \\' \\\\ %s %(x)s ? :x $1 `id` /* */",
    "emoji_4_byte": "😀 👨\u200d👩\u200d👧 🏳\ufe0f\u200d🌈 \U0001d54f 𠜎 🀄",
    "right_to_left": "\u200f\u202eabc\u202c עברית العربية \u200e\u2067x\u2069 \u202b!\u202c",
    "no_normalization": "e\u0301 \u00e9 \ufb01 \u2126 zero\u200bwidth a\u200cb",
    "title_10000_chars": LONG_TITLE[:10_000],
}


@pytest.mark.parametrize("case", sorted(EXACT_STRINGS))
def test_hostile_strings_stored_exactly(shared_db: str, tmp_path: Path, case: str) -> None:
    value = EXACT_STRINGS[case]
    tag = token()
    key = f"doc-{tag}.md"
    front = (
        f"title: {yaml_quoted(value)}\n"
        f"excerpt: {yaml_quoted(value)}\n"
        f"webUrl: {url_for(tag)}\n"
        f"customField: {yaml_quoted(value)}\n"
        f"topics: [Topic {tag}]\n"
    )
    body = f"{value}\n\n{value}\n"
    summary = run_files(shared_db, tmp_path / "in", {key: f"---\n{front}---\n{body}".encode()})
    assert summary.rejected == [], summary.rejected
    row = article_row(shared_db, url_for(tag))
    assert row is not None
    assert len(row["title"]) == len(value)
    assert row["title"] == value
    assert row["excerpt"] == value
    assert row["body"] == body
    assert row["extra"] == {"customField": value}
    # the tables are all still there and answer
    assert article_row(shared_db, "https://no-such-article.example.com/") is None


def test_sql_looking_url_stored_exactly(shared_db: str, tmp_path: Path) -> None:
    tag = token()
    url = f"https://{tag}.example.com/a');DROP%20TABLE%20articles;--?q=1'--"
    doc = make_doc(tag)
    doc["webUrl"] = doc["originalUrl"] = url
    summary = run_files(shared_db, tmp_path / "in", {f"doc-{tag}.md": render(doc)})
    assert summary.rejected == []
    row = article_row(shared_db, url)
    assert row is not None
    assert row["web_url"] == url


# --- the database password never leaks ----------------------------------------------------

PASSWORD = "S3cretPass"


def _assert_no_password(result: subprocess.CompletedProcess[str]) -> None:
    assert PASSWORD not in result.stdout
    assert PASSWORD not in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/x",
        f"mysql://root:{PASSWORD}@127.0.0.1:1/x",
    ],
    ids=["postgresql", "mariadb"],
)
@pytest.mark.parametrize("flags", [(), ("-vv", "--json")], ids=["plain", "debug-json"])
def test_unreachable_database_error_hides_password(
    tmp_path: Path, url: str, flags: tuple[str, ...]
) -> None:
    (tmp_path / "a.md").write_bytes(render(make_doc(token())))
    verbose = [flag for flag in flags if flag == "-vv"]
    rest = [flag for flag in flags if flag != "-vv"]
    result = run_etl(
        *verbose, "run", str(tmp_path / "a.md"), "--database-url", url, *rest, cwd=tmp_path
    )
    assert result.returncode == 3, result
    _assert_no_password(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("etl: error:")]
    assert len(errors) == 1, result.stderr
    assert "***" in errors[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/x",
        f"nosuchdriver://u:{PASSWORD}@127.0.0.1/x",
        f"postgresql+nosuchdriver://u:{PASSWORD}@127.0.0.1/x",
    ],
    ids=["bad-port", "unknown-backend", "unknown-driver"],
)
def test_malformed_database_url_is_a_usage_error_without_password(tmp_path: Path, url: str) -> None:
    """In-process (click's runner): configuration errors never reach a database."""
    (tmp_path / "a.md").write_bytes(render(make_doc(token())))
    result = CliRunner().invoke(main, ["run", str(tmp_path / "a.md"), "--database-url", url])
    assert PASSWORD not in result.stdout + result.stderr
    assert isinstance(result.exception, SystemExit), (
        f"escaped as {result.exception!r} (a traceback for the user)"
    )
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("etl: error:"), result.stderr


def test_password_absent_from_summary_logs_and_tables(pg_url: str, tmp_path: Path) -> None:
    """A full run with a password in the URL (the test server trusts, so it is accepted)."""
    url = make_url(pg_url).set(password=PASSWORD).render_as_string(hide_password=False)
    good, bad = token(), token()
    root = tmp_path / "in"
    root.mkdir()
    (root / f"good-{good}.md").write_bytes(render(make_doc(good)))
    (root / f"bad-{bad}.md").write_bytes(b"---\ntitle: no url\n---\n")
    result = run_etl("-vv", "run", str(root), "--database-url", url, "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    _assert_no_password(result)
    summary = json.loads(result.stdout)
    assert PASSWORD not in json.dumps(summary)
    assert "***" in summary["database"]
    api_summary = etl.run([root], url, full_refresh=True)
    assert PASSWORD not in json.dumps(api_summary.to_dict(), default=str)
    assert PASSWORD not in str(api_summary.rejected) + api_summary.line()
    with connect(pg_url) as conn:
        stored = [
            [dict(row._mapping) for row in conn.execute(select(table))]
            for table in (etl_runs, rejected_documents, articles)
        ]
    assert PASSWORD not in json.dumps(stored, default=str)


def test_password_absent_when_run_aborts(tmp_path: Path) -> None:
    """The API's exception for an unreachable database carries no password either."""
    (tmp_path / "a.md").write_bytes(render(make_doc(token())))
    with pytest.raises(etl.db.database.DatabaseUnavailable) as caught:
        etl.run([tmp_path / "a.md"], f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/x")
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value.args)
