"""Bad input: documents the pipeline must reject (with a clear reason) or leniently coerce.

Every case writes real files, runs ``etl.run`` on every backend and checks that the bad
document is reported in ``summary.rejected`` and ``rejected_documents`` with a reason
(and, for YAML errors, a line and column), that a good document in the same run still
loads, and that nothing of the bad document reaches the data tables.

Migrating a fresh database for each of the ~40 cases would take minutes on the server
backends, so each backend gets one database per module (``shared_db``); every test uses
its own unique URLs, titles and file names (a random token) and only looks at those.
"""

from __future__ import annotations

import builtins
import errno
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from etl.db.schema import article_topics, articles, images, providers, related_articles, topics
from etl.records import RunSummary
from tests.helpers import (
    article_row,
    assert_loaded,
    assert_rejected,
    fetch,
    make_doc,
    render,
    run_files,
    token,
    url_for,
)
from tests.snapshots import db_text, snapshot

# --- one bad document next to a good one --------------------------------------------


_DELETE = object()
_BODY = "Body TAG.\n"
_VALID = f"title: Title TAG\nwebUrl: {url_for('TAG')}\ntopics: [Topic TAG]\n"


def _doc(**changes: Any) -> dict[str, Any]:
    """The seed document made with the token placeholder ``TAG``, with ``changes``
    (``_DELETE`` removes a key)."""
    data = make_doc("TAG")
    for key, value in changes.items():
        if value is _DELETE:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _image_width(width: Any) -> dict[str, Any]:
    """The seed document made with ``TAG``, its first image ``width`` wide."""
    data = _doc()
    data["images"][0]["width"] = width
    return data


# name -> (file content, reason pattern, reason must give line/column).
# Every content mentions the token placeholder ``TAG`` (replaced per test) so a leak of
# the bad document into the database is detectable.
BAD_CASES: dict[str, tuple[bytes, str, bool]] = {
    "no_front_matter": (f"# Title TAG\n\n{_VALID}".encode(), r"no front-matter", False),
    "front_matter_never_closed": (
        f"---\n{_VALID}\n{_BODY}".encode(),
        r"never closed",
        False,
    ),
    "empty_file": (b"", r"empty", False),
    "whitespace_only_file": (b" \n\n\t\n", r"empty", False),
    "empty_front_matter": (b"---\n---\nBody TAG.\n", r"mapping|empty", False),
    "tab_in_indentation": (
        f"---\n{_VALID}provider:\n\tname: Provider TAG\n---\n{_BODY}".encode(),
        r"YAML",
        True,
    ),
    "unclosed_double_quote": (
        f'---\ntitle: "Title TAG\nwebUrl: {url_for("TAG")}\n---\n{_BODY}'.encode(),
        r"YAML",
        True,
    ),
    "unclosed_single_quote": (
        f"---\nwebUrl: {url_for('TAG')}\ntitle: 'Title TAG\n---\n{_BODY}".encode(),
        r"YAML",
        True,
    ),
    "top_level_list": (
        f"---\n- title: Title TAG\n- webUrl: {url_for('TAG')}\n---\n{_BODY}".encode(),
        r"mapping.*list",
        False,
    ),
    "top_level_scalar": (b"---\nTitle TAG\n---\nBody TAG.\n", r"mapping.*str", False),
    "duplicate_keys": (
        f"---\n{_VALID}title: Other TAG\n---\n{_BODY}".encode(),
        r"duplicate.*title",
        True,
    ),
    "missing_title": (render(_doc(title=_DELETE), _BODY), r"title", False),
    "blank_title": (render(_doc(title="   "), _BODY), r"title", False),
    "no_url_at_all": (
        render(_doc(webUrl=_DELETE, originalUrl=_DELETE), _BODY),
        r"neither webUrl nor originalUrl",
        False,
    ),
    "blank_urls": (
        render(_doc(webUrl="  ", originalUrl=""), _BODY),
        r"neither webUrl nor originalUrl",
        False,
    ),
    "javascript_url": (
        render(_doc(webUrl="javascript:alert('TAG')"), _BODY),
        r"webUrl.*http\(s\)",
        False,
    ),
    "file_url": (
        render(_doc(webUrl="file:///etc/TAG/passwd"), _BODY),
        r"webUrl.*http\(s\)",
        False,
    ),
    "plain_text_url": (
        render(_doc(webUrl="see the TAG website"), _BODY),
        r"webUrl.*http\(s\)",
        False,
    ),
    "ftp_original_url_only": (
        render(_doc(webUrl=_DELETE, originalUrl="ftp://TAG.example.com/x"), _BODY),
        r"originalUrl.*http\(s\)",
        False,
    ),
    "date_is_a_weekday": (
        render(_doc(publishedDateTime="tuesday"), _BODY),
        r"publishedDateTime",
        False,
    ),
    "date_out_of_range": (
        render(_doc(publishedDateTime="2020-13-45"), _BODY),
        r"publishedDateTime",
        False,
    ),
    "quality_not_a_number": (render(_doc(quality="high"), _BODY), r"quality", False),
    "image_width_not_a_number": (render(_image_width("wide"), _BODY), r"width", False),
    "latin1_bytes": (render(_doc()).replace(b"Title TAG", b"Titl\xe9 TAG"), r"UTF-8", False),
    "utf16": (
        "\ufeff".encode("utf-16-le") + render(_doc()).decode().encode("utf-16-le"),
        r"UTF-8",
        False,
    ),
    "truncated_utf8_sequence": (
        render(_doc()).replace(b"Title TAG", b"Title \xf0\x9f TAG"),
        r"UTF-8",
        False,
    ),
}


@dataclass(frozen=True)
class Catalogue:
    """One run per backend of every bad case next to one good document."""

    url: str
    summary: RunSummary
    tags: dict[str, str]  # case -> the token in its document
    good: str
    stored: str  # db_text right after the run


@pytest.fixture(scope="module")
def catalogue(shared_db: str, tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    """Loading each case in a run of its own costs ~1 s per case on the server backends;
    each case still has its own document, token and assertions."""
    tags = {case: token() for case in BAD_CASES}
    good = token()
    files = {
        f"bad-{case}-{tags[case]}.md": BAD_CASES[case][0].replace(b"TAG", tags[case].encode())
        for case in BAD_CASES
    }
    files[f"good-{good}.md"] = render(make_doc(good))
    summary = run_files(shared_db, tmp_path_factory.mktemp("catalogue"), files)
    return Catalogue(shared_db, summary, tags, good, db_text(shared_db))


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_document_rejected(catalogue: Catalogue, case: str) -> None:
    _, pattern, position = BAD_CASES[case]
    tag = catalogue.tags[case]
    assert_rejected(
        catalogue.url, catalogue.summary, f"bad-{case}-{tag}.md", pattern, position=position
    )
    assert tag not in catalogue.stored, f"{case}: something of the rejected document was stored"


def test_good_document_loads_next_to_bad_ones(catalogue: Catalogue) -> None:
    assert_loaded(catalogue.url, catalogue.summary, f"good-{catalogue.good}.md", catalogue.good)
    assert catalogue.summary.documents_rejected == len(BAD_CASES)
    assert catalogue.summary.articles_inserted == 1
    assert catalogue.good in catalogue.stored


def test_yaml_error_positions_point_at_the_problem(shared_db: str, tmp_path: Path) -> None:
    """Line numbers count lines of the file (the opening ``---`` is line 1)."""
    tag = token()
    head = f"---\ntitle: Title {tag}\nwebUrl: {url_for(tag)}\n"
    files = {
        # line 5 holds the tab
        "tab.md": f"{head}provider:\n\tname: P\n---\n".encode(),
        # the second 'title' is on line 4
        "duplicate.md": f"{head}title: Again\n---\n".encode(),
        # the quote opens on line 4; the front-matter ends on line 5
        "quote.md": f'{head}excerpt: "never closed\n---\n'.encode(),
    }
    summary = run_files(shared_db, tmp_path / "in", files)
    found = {item.path: item for item in summary.rejected}
    assert set(found) == set(files), summary.rejected
    assert found["tab.md"].line == 5, found["tab.md"]
    assert found["duplicate.md"].line == 4, found["duplicate.md"]
    assert found["quote.md"].line in (4, 5, 6), found["quote.md"]


def test_directory_named_like_a_document(shared_db: str, tmp_path: Path) -> None:
    good = token()
    root = tmp_path / "in"
    (root / "x.md").mkdir(parents=True)
    (root / "x.md" / "notes.txt").write_text("not a document")
    summary = run_files(shared_db, root, {f"good-{good}.md": render(make_doc(good))})
    assert_rejected(shared_db, summary, "x.md", r"directory")
    assert_loaded(shared_db, summary, f"good-{good}.md", good)
    assert summary.files_seen == 2


def test_dangling_symlink(shared_db: str, tmp_path: Path) -> None:
    good = token()
    root = tmp_path / "in"
    root.mkdir()
    (root / "gone.md").symlink_to(tmp_path / "does-not-exist.md")
    summary = run_files(shared_db, root, {f"good-{good}.md": render(make_doc(good))})
    assert_rejected(shared_db, summary, "gone.md", r"cannot read|no such file")
    assert_loaded(shared_db, summary, f"good-{good}.md", good)


def test_unreadable_file(shared_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the run may not open is rejected with the reason, and the run goes on.

    The denial is made, not set up with ``chmod 000`` (root, as in CI, reads such a file
    anyway): opening that one path raises the PermissionError a non-root reader of a
    ``chmod 000`` file gets. Worker processes are forked, so they open through it too.
    """
    bad, good = token(), token()
    root = tmp_path / "in"
    root.mkdir()
    locked = root / f"bad-{bad}.md"
    locked.write_bytes(render(make_doc(bad)))
    real_open = builtins.open

    def open_denied(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike) and os.path.basename(file) == locked.name:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_denied)
    summary = run_files(shared_db, root, {f"good-{good}.md": render(make_doc(good))})
    monkeypatch.undo()
    assert_rejected(shared_db, summary, locked.name, r"cannot read.*permission denied")
    assert_loaded(shared_db, summary, f"good-{good}.md", good)
    assert bad not in db_text(shared_db)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quality", 2**63),  # one more than BIGINT holds
        ("heat", -(2**63) - 1),
        ("image_width", 2**31),  # one more than INTEGER holds
    ],
)
def test_numbers_out_of_column_range_rejected_on_every_backend(
    shared_db: str, tmp_path: Path, field: str, value: int
) -> None:
    """A number the column cannot hold is a bad document on every backend, never a crash.

    (SQLite would happily store an oversized INTEGER where PostgreSQL and MariaDB
    refuse it: the outcome must not depend on the backend.)
    """
    bad, good = token(), token()
    doc = make_doc(bad)
    if field == "image_width":
        doc["images"][0]["width"] = value
    else:
        doc[field] = value
    summary = run_files(
        shared_db,
        tmp_path / "in",
        {f"bad-{bad}.md": render(doc), f"good-{good}.md": render(make_doc(good))},
    )
    assert_rejected(shared_db, summary, f"bad-{bad}.md", field.split("_")[-1] + r"|range")
    assert_loaded(shared_db, summary, f"good-{good}.md", good)
    assert bad not in db_text(shared_db)


def test_value_too_long_for_its_column_never_ends_the_run(shared_db: str, tmp_path: Path) -> None:
    """A related snippet's provider domain longer than its VARCHAR(255) column.

    PostgreSQL refused it inside the COPY of related articles, through the driver's
    own cursor, and the error ended the whole run with a traceback. Now the servers
    reject the document with their reason, like any value they refuse; SQLite does
    not enforce VARCHAR lengths and stores it.
    """
    bad, good = token(), token()
    doc = make_doc(bad)
    long_domain = "d" * 300 + ".example.com"
    doc["related"][0]["provider"] = {"name": f"Long {bad}", "domain": long_domain}
    summary = run_files(
        shared_db,
        tmp_path / "in",
        {f"bad-{bad}.md": render(doc), f"good-{good}.md": render(make_doc(good))},
    )
    assert_loaded(shared_db, summary, f"good-{good}.md", good)
    if shared_db.startswith("sqlite"):
        assert summary.rejected == []
        assert long_domain in db_text(shared_db)
    else:
        # MariaDB's LOAD DATA (etl.db.load_data) says "Data truncated for column".
        assert_rejected(shared_db, summary, f"bad-{bad}.md", r"too long|truncated")
        assert bad not in db_text(shared_db)


# --- documented lenient coercions: these documents load -------------------------------


def _load_one(url: str, tmp_path: Path, doc: dict[str, Any]) -> tuple[RunSummary, str]:
    key = f"doc-{token()}.md"
    summary = run_files(url, tmp_path / "in", {key: render(doc)})
    assert summary.rejected == [], summary.rejected
    assert summary.articles_inserted == 1
    return summary, key


def test_topics_as_one_string(shared_db: str, tmp_path: Path) -> None:
    tag = token()
    doc = make_doc(tag)
    doc["topics"] = f"Machine  Learning {tag}"
    _load_one(shared_db, tmp_path, doc)
    rows = fetch(
        shared_db,
        select(topics.c.slug, topics.c.name, article_topics.c.position)
        .join(article_topics, article_topics.c.topic_id == topics.c.id)
        .join(articles, articles.c.id == article_topics.c.article_id)
        .where(articles.c.url == url_for(tag)),
    )
    assert [tuple(row) for row in rows] == [
        (f"machine-learning-{tag}", f"Machine Learning {tag}", 0)
    ]


def test_numbers_as_numeric_strings(shared_db: str, tmp_path: Path) -> None:
    tag = token()
    doc = make_doc(tag)
    doc["quality"] = "91"
    doc["heat"] = " -1 "
    doc["images"][0]["width"] = "1024"
    doc["images"][0]["height"] = "576"
    _load_one(shared_db, tmp_path, doc)
    row = article_row(shared_db, url_for(tag))
    assert row is not None
    assert (row["quality"], row["heat"]) == (91, -1)
    sizes = fetch(
        shared_db,
        select(images.c.width, images.c.height).where(images.c.url == url_for(tag, "image.jpg")),
    )
    assert [tuple(size) for size in sizes] == [(1024, 576)]


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("2023-12-20T05:29:00", datetime(2023, 12, 20, 5, 29, tzinfo=UTC)),
        ("2023-12-20 05:29:00", datetime(2023, 12, 20, 5, 29, tzinfo=UTC)),
        ("2023-12-20", datetime(2023, 12, 20, tzinfo=UTC)),
        ("2023-12-20T07:29:00+02:00", datetime(2023, 12, 20, 5, 29, tzinfo=UTC)),
    ],
    ids=["iso-no-zone", "space-no-zone", "date-only", "offset-converted"],
)
def test_zone_less_dates_are_utc(
    shared_db: str, tmp_path: Path, written: str, stored: datetime
) -> None:
    tag = token()
    key = f"doc-{tag}.md"
    text = render(make_doc(tag)).decode()
    text = re.sub(r"(?m)^publishedDateTime: .*$", f"publishedDateTime: {written}", text)
    summary = run_files(shared_db, tmp_path / "in", {key: text.encode()})
    assert summary.rejected == []
    row = article_row(shared_db, url_for(tag))
    assert row is not None
    assert row["published_at"] == stored
    assert row["published_at"].utcoffset() is not None
    assert row["published_at"].utcoffset().total_seconds() == 0


def test_related_entries_without_usable_url_dropped_with_warning(
    shared_db: str, tmp_path: Path
) -> None:
    tag = token()
    doc = make_doc(tag)
    kept = doc["related"][0]
    doc["related"] = [
        {"title": f"No URL {tag}"},
        {"title": f"Script {tag}", "webUrl": "javascript:void(0)"},
        kept,
        {"title": f"Blank {tag}", "webUrl": "   ", "originalUrl": ""},
        {"title": f"Broken date {tag}", "publishedDateTime": "tuesday", "webUrl": url_for("x")},
    ]
    summary, _ = _load_one(shared_db, tmp_path, doc)
    assert summary.warnings == 4, summary
    target = articles.alias("target")
    links = fetch(
        shared_db,
        select(target.c.url, related_articles.c.position)
        .join(articles, articles.c.id == related_articles.c.article_id)
        .join(target, target.c.id == related_articles.c.related_article_id)
        .where(articles.c.url == url_for(tag)),
    )
    assert [tuple(link) for link in links] == [(url_for(f"rel-{tag}"), 2)]
    assert f"No URL {tag}" not in db_text(shared_db)


def test_provider_without_domain_takes_article_host(shared_db: str, tmp_path: Path) -> None:
    tag = token()
    doc = make_doc(tag)
    doc["webUrl"] = doc["originalUrl"] = f"https://www.{tag}.example.com/story/1"
    doc["provider"] = {"name": f"Provider {tag}"}
    _load_one(shared_db, tmp_path, doc)
    rows = fetch(
        shared_db,
        select(providers.c.domain, providers.c.name)
        .join(articles, articles.c.provider_id == providers.c.id)
        .where(articles.c.url == url_for(tag)),
    )
    assert [tuple(row) for row in rows] == [(f"{tag}.example.com", f"Provider {tag}")]


def test_bom_and_crlf_line_endings_load(shared_db: str, tmp_path: Path) -> None:
    tag = token()
    data = b"\xef\xbb\xbf" + render(make_doc(tag), "Line one.\nLine two.\n").replace(b"\n", b"\r\n")
    summary = run_files(shared_db, tmp_path / "in", {f"doc-{tag}.md": data})
    assert summary.rejected == []
    row = article_row(shared_db, url_for(tag))
    assert row is not None
    assert row["title"] == f"Title {tag}"
    assert row["body"] == "Line one.\nLine two.\n"


def test_rejections_do_not_disturb_unrelated_tables(shared_db: str, tmp_path: Path) -> None:
    """A run of only bad documents writes no data at all, only its run and its rejections."""
    # The run registers its source (sources): the data tables are what it must leave alone.
    before = snapshot(shared_db, with_sources=False)
    contents = [content for content, _, _ in BAD_CASES.values()]
    tag = token()
    summary = run_files(
        shared_db,
        tmp_path / "in",
        {
            f"bad-{i}-{tag}.md": data.replace(b"TAG", tag.encode())
            for i, data in enumerate(contents)
        },
    )
    assert summary.documents_rejected == len(contents)
    assert summary.articles_inserted == summary.links_written == 0
    assert snapshot(shared_db, with_sources=False) == before
