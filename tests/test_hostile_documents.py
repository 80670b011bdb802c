"""Hostile documents: code-execution tags and other tags, NUL bytes, expansion bombs,
deep nesting, huge files, and special files named like documents.

Database cases run on every backend against one database per backend and module (as in
``tests/test_bad_input.py``); each case uses its own random token in URLs and names, and
the tag and NUL cases share one run per backend (``catalogue``).
Cases that can crash or hang the process run the CLI in a subprocess with a timeout.
Hostile strings, and passwords in error output, are in ``tests/test_hostile_strings.py``.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl.records import RunSummary
from tests.helpers import (
    article_row,
    assert_loaded,
    assert_rejected,
    make_doc,
    render,
    run_etl,
    run_files,
    run_python,
    token,
    url_for,
)
from tests.snapshots import db_text

# --- tags that construct Python objects --------------------------------------------------


def _tag_documents(marker: Path) -> dict[str, str]:
    command = json.dumps([f"touch {marker}"])
    base = "webUrl: {url}\ntopics: [Topic {tag}]\n"
    return {
        "apply_os_system": f"title: !!python/object/apply:os.system {command}\n" + base,
        "new_os_system": f"title: !!python/object/new:os.system {command}\n" + base,
        "apply_subprocess": (
            "title: Title {tag}\n"
            + base
            + f"x: !!python/object/apply:subprocess.call [{command}]\n"
        ),
        "name_os_system": "title: Title {tag}\n" + base + "x: !!python/name:os.system ''\n",
        "module_os": "title: Title {tag}\n" + base + "x: !!python/module:os ''\n",
        "nested_in_provider": (
            "title: Title {tag}\n"
            + base
            + f"provider:\n  name: !!python/object/apply:os.system {command}\n"
        ),
        "in_related_entry": (
            "title: Title {tag}\n"
            + base
            + "related:\n  - webUrl: https://rel-{tag}.example.com/1\n"
            + f"    title: !!python/object/apply:os.system {command}\n"
        ),
        # JSON-style flow mapping: the tag follows ':' with no space.
        "flow_mapping_no_space": (
            '{{"title": "Title {tag}", "webUrl": "{url}", "topics": ["Topic {tag}"], '
            f'"x":!!python/object/apply:os.system {command}}}}}\n'
        ),
    }


# --- NUL: rejected on every backend -----------------------------------------------------------


def _nul_documents() -> dict[str, bytes]:
    head = "title: Title {tag}\nwebUrl: " + url_for("{tag}") + "\n"
    return {
        "raw_in_last_value": (head + "excerpt: Excerpt {tag} \x00 end\n").encode(),
        "raw_in_first_value": (
            "title: Title {tag} \x00 end\nwebUrl: " + url_for("{tag}") + "\n"
        ).encode(),
        "raw_in_comment": (head + "# note \x00\nexcerpt: Excerpt {tag}\n").encode(),
        "raw_in_body": (head + "---\nBody {tag} \x00 end\n").encode(),
        "escape_backslash_0": (head + 'excerpt: "Excerpt {tag} \\0 end"\n').encode(),
        "escape_x00": (head + 'excerpt: "Excerpt {tag} \\x00 end"\n').encode(),
        "escape_u0000": (head + 'excerpt: "Excerpt {tag} \\u0000 end"\n').encode(),
        "escape_U00000000": (head + 'excerpt: "Excerpt {tag} \\U00000000 end"\n').encode(),
        "escape_in_key": (head + '"key\\0{tag}": 1\n').encode(),
        "escape_in_topic": (head + 'topics: ["Topic {tag}", "a\\0b"]\n').encode(),
        "escape_in_related": (
            head + 'related:\n  - webUrl: https://rel-{tag}.example.com/\n    title: "R\\0"\n'
        ).encode(),
        "percent_encoded_provider_name": (
            head + "provider:\n  name: Provider%00{tag}\n  domain: {tag}.example.com\n"
        ).encode(),
    }


NUL_DOCUMENTS = _nul_documents()


# --- one run per backend of every tag and NUL case -------------------------------------------

TAG_CASES = sorted(_tag_documents(Path("/m")))


@dataclass(frozen=True)
class Catalogue:
    """One run per backend of every tag and NUL case next to one good document."""

    url: str
    root: Path
    summary: RunSummary
    tags: dict[str, str]  # case -> the token in its document
    good: str
    stored: str  # db_text right after the run


@pytest.fixture(scope="module")
def catalogue(shared_db: str, tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    """A run per case would cost ~1 s each on the server backends; each case still has
    its own document, token, marker file and assertions."""
    root = tmp_path_factory.mktemp("catalogue")
    tags: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for case in TAG_CASES:
        tags[case] = tag = token()
        front = _tag_documents(root / f"MARKER-{case}")[case].format(tag=tag, url=url_for(tag))
        files[f"bad-{case}-{tag}.md"] = f"---\n{front}---\nBody {tag}\n".encode()
    for case, nul_front in NUL_DOCUMENTS.items():
        tags[case] = tag = token()
        data = b"---\n" + nul_front.replace(b"{tag}", tag.encode())
        files[f"bad-{case}-{tag}.md"] = data + (b"" if case == "raw_in_body" else b"---\nBody.\n")
    good = token()
    files[f"good-{good}.md"] = render(make_doc(good))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # a relative path in a payload would land here
        summary = run_files(shared_db, root / "in", files)
    return Catalogue(shared_db, root, summary, tags, good, db_text(shared_db))


@pytest.mark.parametrize("case", TAG_CASES)
def test_python_object_tags_rejected_and_never_executed(catalogue: Catalogue, case: str) -> None:
    tag = catalogue.tags[case]
    assert not (catalogue.root / f"MARKER-{case}").exists(), "a YAML tag executed a command"
    assert_rejected(
        catalogue.url, catalogue.summary, f"bad-{case}-{tag}.md", r"tag|constructor", position=True
    )
    assert tag not in catalogue.stored, f"{case}: something of the rejected document was stored"


def test_good_document_loads_next_to_hostile_ones(catalogue: Catalogue) -> None:
    assert_loaded(catalogue.url, catalogue.summary, f"good-{catalogue.good}.md", catalogue.good)
    assert not list(catalogue.root.glob("**/MARKER*"))


@pytest.mark.parametrize("case", sorted(NUL_DOCUMENTS))
def test_nul_rejected_on_every_backend(catalogue: Catalogue, case: str) -> None:
    tag = catalogue.tags[case]
    assert_rejected(catalogue.url, catalogue.summary, f"bad-{case}-{tag}.md", r"\bNUL\b|x0000|\\0")
    assert tag not in catalogue.stored, f"{case}: something of the rejected document was stored"


# --- other tags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "!!set {a, b}",
        "!!binary aGVsbG8=",
        "!!omap [{a: 1}, {b: 2}]",
        "!custom x",
    ],
)
def test_other_tags_rejected_and_never_abort_the_run(
    shared_db: str, tmp_path: Path, value: str
) -> None:
    """The README: documents that use tags ("!!python/object/... and others") are rejected.

    Some are safe tags whose values JSON has no type for (a set): whatever happens to
    them, the run must go on and load the good document."""
    bad, good = token(), token()
    front = (
        f"title: Title {bad}\nwebUrl: {url_for(bad)}\n"
        f"featuredContent: {value}\ncustomField: {value}\n"
    )
    summary = run_files(
        shared_db,
        tmp_path / "in",
        {f"bad-{bad}.md": f"---\n{front}---\n".encode(), f"good-{good}.md": render(make_doc(good))},
    )
    assert_loaded(shared_db, summary, f"good-{good}.md", good)
    assert_rejected(shared_db, summary, f"bad-{bad}.md", r"tag", position=True)
    assert bad not in db_text(shared_db)


@pytest.mark.parametrize(
    "value", ["!!timestamp 2020-01-01", "!!timestamp 'not a date'", "!!str 12"]
)
def test_standard_scalar_tags_load(shared_db: str, tmp_path: Path, value: str) -> None:
    """YAML's own scalar tags build plain JSON values: the document loads."""
    good = token()
    front = (
        f"title: Title {good}\nwebUrl: {url_for(good)}\n"
        f"featuredContent: {value}\ncustomField: {value}\n"
    )
    summary = run_files(
        shared_db, tmp_path / "in", {f"good-{good}.md": f"---\n{front}---\n".encode()}
    )
    assert summary.documents_rejected == 0, summary.rejected
    assert article_row(shared_db, url_for(good)) is not None


# --- alias ("billion laughs") bombs -------------------------------------------------------


def _block_bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _flow_bomb(levels: int = 9) -> str:
    """Anchors and aliases right after ':' in a JSON-style mapping (no space before them)."""
    parts = ['"l0":&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels + 1):
        parts.append(f'"l{n}":&l{n} {{' + ", ".join(f'"k{i}":*l{n - 1}' for i in range(9)) + "}")
    return "bomb: {" + ", ".join(parts) + "}\n"


def _merge_key_bomb(levels: int = 9) -> str:
    lines = ["m0: &m0 {a: lol, b: lol, c: lol}"]
    for n in range(1, levels + 1):
        lines.append(f"m{n}: &m{n} {{" + ", ".join(f"k{i}: *m{n - 1}" for i in range(9)) + "}")
    return "\n".join(lines) + "\n"


BOMBS = {"block": _block_bomb(), "flow_no_space": _flow_bomb(), "mappings": _merge_key_bomb()}


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_billion_laughs_rejected_quickly(shared_db: str, tmp_path: Path, kind: str) -> None:
    bad, good = token(), token()
    front = f"title: Title {bad}\nwebUrl: {url_for(bad)}\n{BOMBS[kind]}"
    started = time.monotonic()
    summary = run_files(
        shared_db,
        tmp_path / "in",
        {f"bad-{bad}.md": f"---\n{front}---\n".encode(), f"good-{good}.md": render(make_doc(good))},
    )
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"alias bomb took {elapsed:.1f}s"
    assert_rejected(shared_db, summary, f"bad-{bad}.md", r"alias|YAML")
    assert_loaded(shared_db, summary, f"good-{good}.md", good)
    assert bad not in db_text(shared_db)


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    import etl
    etl.run([sys.argv[1]], sys.argv[3], workers=1)  # warm up: imports, schema, caches
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    summary = etl.run([sys.argv[2]], sys.argv[3], workers=1)
    print(json.dumps({
        "seconds": time.monotonic() - started,
        "grown_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before,
        "rejected": [r.path for r in summary.rejected],
    }))
    """
)


def test_alias_bombs_keep_memory_flat(tmp_path: Path) -> None:
    """In a fresh process (peak RSS is per process): parsing every bomb adds < 64 MiB."""
    warm, bombs = tmp_path / "warm", tmp_path / "bombs"
    warm.mkdir()
    bombs.mkdir()
    (warm / "good.md").write_bytes(render(make_doc(token())))
    for kind, text in BOMBS.items():
        (bombs / f"{kind}.md").write_text(f"---\ntitle: T\nwebUrl: {url_for(kind)}\n{text}---\n")
    result = run_python(
        _MEMORY_PROBE, str(warm), str(bombs), f"sqlite:///{tmp_path}/m.db", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(probe["rejected"]) == sorted(f"{kind}.md" for kind in BOMBS)
    assert probe["grown_kib"] < 64 * 1024, probe
    assert probe["seconds"] < 5, probe


# --- deep nesting --------------------------------------------------------------------------


def _nested_document(tag: str, depth: int, item: str = "- ") -> str:
    """``- - - ... 1`` nests one sequence per two bytes: 20,000 levels fit in 40 KB."""
    nested = item * depth + "1"
    return f"---\ntitle: Title {tag}\nwebUrl: {url_for(tag)}\nnested:\n{nested}\n---\n"


def test_deeply_nested_sequences_rejected(shared_db: str, tmp_path: Path) -> None:
    """600 levels: deeper than any news document, shallow enough to parse in-process."""
    bad, good = token(), token()
    summary = run_files(
        shared_db,
        tmp_path / "in",
        {
            f"bad-{bad}.md": _nested_document(bad, 600).encode(),
            f"good-{good}.md": render(make_doc(good)),
        },
    )
    assert_rejected(shared_db, summary, f"bad-{bad}.md", r"nest|depth|deep|recursion")
    assert_loaded(shared_db, summary, f"good-{good}.md", good)
    assert bad not in db_text(shared_db)


@pytest.mark.parametrize("item", ["- ", "-  "], ids=["one-space", "two-spaces"])
def test_very_deep_nesting_does_not_crash_the_run(tmp_path: Path, item: str) -> None:
    """20,000 levels, through the CLI in a subprocess: a parser stack overflow kills the
    whole process (and with it every other document of the run). Parsing does not depend
    on the backend, so SQLite suffices. Two spaces after each dash once slipped past
    the depth check and crashed yaml-rs (SIGSEGV)."""
    bad, good = token(), token()
    root = tmp_path / "in"
    root.mkdir()
    (root / f"bad-{bad}.md").write_text(_nested_document(bad, 20_000, item))
    (root / f"good-{good}.md").write_bytes(render(make_doc(good)))
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    result = run_etl("run", str(root), "--database-url", url, "--json", cwd=tmp_path)
    assert result.returncode == 1, (
        f"exit {result.returncode} (negative = killed by signal {-result.returncode}); "
        f"stderr: {result.stderr[-1500:]}"
    )
    summary = json.loads(result.stdout)
    rejected = {item["path"]: item["error"] for item in summary["rejected"]}
    assert set(rejected) == {f"bad-{bad}.md"}, rejected
    assert re.search(r"nest|depth|deep|recursion", rejected[f"bad-{bad}.md"], re.I), rejected
    assert article_row(url, url_for(good)) is not None


# --- size limit ----------------------------------------------------------------------------


def test_file_over_max_file_bytes_rejected(shared_db: str, tmp_path: Path) -> None:
    bad, good = token(), token()
    big = make_doc(bad)
    big["excerpt"] = "x" * 20_000
    data = render(big)
    small = render(make_doc(good))
    limit = len(small) + 100
    assert len(data) > limit
    summary = run_files(
        shared_db,
        tmp_path / "in",
        {f"bad-{bad}.md": data, f"good-{good}.md": small},
        max_file_bytes=limit,
    )
    rejection = assert_rejected(shared_db, summary, f"bad-{bad}.md", rf"limit.*{limit}")
    assert str(len(data)) in rejection.error
    assert_loaded(shared_db, summary, f"good-{good}.md", good)
    assert bad not in db_text(shared_db)


def test_file_over_max_file_size_option_rejected_by_cli(tmp_path: Path) -> None:
    """The CLI passes --max-file-size on (option plumbing: one backend is enough)."""
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    bad, good = token(), token()
    root = tmp_path / "in"
    root.mkdir()
    big = make_doc(bad)
    big["excerpt"] = "x" * 20_000
    (root / f"bad-{bad}.md").write_bytes(render(big))
    (root / f"good-{good}.md").write_bytes(render(make_doc(good)))
    result = run_etl(
        "run", str(root), "--database-url", url, "--max-file-size", "8000", cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert re.search(rf"rejected bad-{bad}\.md: .*limit of 8000", result.stderr), result.stderr
    assert article_row(url, url_for(good)) is not None
    assert bad not in db_text(url)


def test_file_over_default_limit_rejected(shared_db: str, tmp_path: Path) -> None:
    bad, good = token(), token()
    huge = render(make_doc(bad), "y" * (6 * 1024 * 1024))
    summary = run_files(
        shared_db,
        tmp_path / "in",
        {f"bad-{bad}.md": huge, f"good-{good}.md": render(make_doc(good))},
    )
    assert_rejected(shared_db, summary, f"bad-{bad}.md", r"over the limit")
    assert_loaded(shared_db, summary, f"good-{good}.md", good)


# --- special files -------------------------------------------------------------------------


def test_fifo_and_devices_named_like_documents(tmp_path: Path) -> None:
    """A named pipe must not block the run forever; a device is refused before it is read."""
    root = tmp_path / "in"
    root.mkdir()
    os.mkfifo(root / "pipe.md")
    (root / "zero.md").symlink_to("/dev/zero")
    good = token()
    (root / f"good-{good}.md").write_bytes(render(make_doc(good)))
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    result = run_etl("run", str(root), "--database-url", url, "--json", cwd=tmp_path, timeout=10)
    assert result.returncode == 1, result.stderr
    rejected = {item["path"]: item["error"] for item in json.loads(result.stdout)["rejected"]}
    assert set(rejected) == {"pipe.md", "zero.md"}, rejected
    assert re.search(r"not a regular file|pipe|fifo", rejected["pipe.md"], re.I), rejected
    assert re.search(r"not a regular file|limit", rejected["zero.md"]), rejected
    assert article_row(url, url_for(good)) is not None
