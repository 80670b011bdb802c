"""Jekyll parity of a site root's data: data files read as Jekyll reads them (the first
YAML document of a ``.yml``, ``.yaml`` or ``.json`` file), and site-relative URLs made
absolute with ``_config.yml``'s ``url`` and ``baseurl`` as Jekyll's ``absolute_url``.

The rules are pure functions tested with tables of cases; the loads run on every
backend and end equal to a fresh load of the final tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import etl
from etl import run
from etl.db.schema import images, providers, source_topics
from etl.extract.site_data import SiteUrls, absolute_url, data_value, site_urls
from etl.records import DocumentError
from etl.transform.taxonomy import read_taxonomy
from tests.helpers import dump_yaml, fetch, make_doc, render, run_etl, write_tree
from tests.sites import fresh, hierarchy, logos, organization_file, provider, topic_file
from tests.snapshots import live_snapshot

SITE_URL = "https://everyday-cc.github.io"
LOGO = "/assets/images/organizations/pcworld.com-50x50.jpg"
ABSOLUTE_LOGO = f"{SITE_URL}/powerapps{LOGO}"

# --- rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "url", "baseurl", "expected"),
    [
        (LOGO, SITE_URL, "/powerapps", ABSOLUTE_LOGO),
        (LOGO, SITE_URL, "powerapps", ABSOLUTE_LOGO),  # a leading slash is added
        (LOGO, SITE_URL, "/powerapps/", ABSOLUTE_LOGO),  # a trailing one dropped
        (LOGO, SITE_URL + "/", "/powerapps", ABSOLUTE_LOGO),  # README: Jekyll writes "//"
        (LOGO, "HTTPS://Everyday-CC.github.io", "/powerapps", ABSOLUTE_LOGO),
        ("/a.png", "https://x.io", "", "https://x.io/a.png"),
        ("/a.png", "https://x.io", "/", "https://x.io/a.png"),
        ("/a.png", "https://x.io/sub", "/p", "https://x.io/sub/p/a.png"),
        ("/a.png", "", "/p", "/p/a.png"),  # no url: Jekyll's relative_url
        ("/a.png", "", "", "/a.png"),
        ("/a.png", "https://x.io", "/p", "https://x.io/p/a.png"),
        ("//cdn.example/a.png", "https://x.io", "/p", "https://cdn.example/a.png"),
        ("//cdn.example/a.png", "", "/p", "//cdn.example/a.png"),
        ("https://cdn.example/a.png", "https://x.io", "/p", "https://cdn.example/a.png"),
        ("mailto:a@x.io", "https://x.io", "/p", "mailto:a@x.io"),
        ("a.png", "https://x.io", "/p", "a.png"),  # relative to a page: as written
        ("", "https://x.io", "/p", ""),
    ],
)
def test_absolute_url(value: str, url: str, baseurl: str, expected: str) -> None:
    assert absolute_url(value, SiteUrls(url, baseurl)) == expected


@pytest.mark.parametrize(
    ("text", "value", "warned"),
    [
        ("name: A\n", {"name": "A"}, False),
        ("---\nname: A\n", {"name": "A"}, False),
        ("name: A\n...\n", {"name": "A"}, False),  # an explicit document end is no more
        ("name: A\n---\n", {"name": "A"}, True),
        ("name: A\n---\n\n", {"name": "A"}, True),
        ("---\nname: A\n---\n", {"name": "A"}, True),
        ("name: A\n---\nname: B\n", {"name": "A"}, True),
        ("name: A\n---\nname: [\n", {"name": "A"}, True),  # what follows is never parsed
        ('{"name": "A", "keywords": ["x"]}\n', {"name": "A", "keywords": ["x"]}, False),
        ('{"name": "A"}\n---\n', {"name": "A"}, True),
        ("- a\n- b\n", ["a", "b"], False),
        ("", None, False),
    ],
)
def test_a_data_file_is_its_first_yaml_document(text: str, value: Any, warned: bool) -> None:
    got, warnings = data_value(text, "_data/topics/x.yaml")
    assert (got, bool(warnings)) == (value, warned)
    assert all(warning.startswith("_data/topics/x.yaml: ") for warning in warnings)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name: [\n", "YAML error"),
        ("name: A\nname: B\n---\n", "duplicate key"),
        ('name: "a\\0b"\n', "NUL"),
        ("[" * 70 + "]" * 70, "nested deeper"),
    ],
)
def test_a_broken_first_document_says_why(text: str, error: str) -> None:
    with pytest.raises(DocumentError, match=error):
        data_value(text, "_data/topics/x.yaml")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("url: https://a.io\nurl: https://b.io\n", {"url": "https://b.io"}),  # the last wins
        ("base: &u /p\nbaseurl: *u\n", {"base": "/p", "baseurl": "/p"}),
    ],
)
def test_a_configuration_is_read_as_psych_reads_it(text: str, value: Any) -> None:
    """Only url and baseurl are used: what Jekyll builds with must not cost the taxonomy;
    a data file keeps the documents' strict rules."""
    assert data_value(text, "_config.yml", strict=False) == (value, ())
    with pytest.raises(DocumentError):
        data_value(text, "_data/topics/x.yaml")


@pytest.mark.parametrize(
    ("config", "urls", "warned"),
    [
        ({"url": SITE_URL, "baseurl": "/ai", "title": "AI"}, SiteUrls(SITE_URL, "/ai"), False),
        ({"title": "AI"}, SiteUrls(), False),
        ({"url": None, "baseurl": 2021}, SiteUrls("", "2021"), False),  # Ruby's to_s
        (None, SiteUrls(), False),  # an empty file: no settings
        (["url"], SiteUrls(), True),  # not a mapping: Jekyll warns and uses its defaults
    ],
)
def test_site_urls(config: Any, urls: SiteUrls, warned: bool) -> None:
    got, warnings = site_urls(config, "_config.yml")
    assert (got, bool(warnings)) == (urls, warned)


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"url": ["a"]}, "url: must be text"),
        ({"baseurl": {"a": 1}}, "baseurl: must be text"),
        ({"url": True}, "url: must be text"),
        ({"url": "https://a.io\x00"}, "url: contains a NUL"),
    ],
)
def test_site_urls_that_are_not_text_say_why(config: dict[str, Any], error: str) -> None:
    with pytest.raises(DocumentError, match=error):
        site_urls(config, "_config.yml")


# --- sites -------------------------------------------------------------------------------


def config_file(url: str = SITE_URL, baseurl: str = "/powerapps", **extra: Any) -> bytes:
    return dump_yaml({"title": "Power Apps", "url": url, "baseurl": baseurl, **extra}).encode()


def document(tag: str, logo: str) -> bytes:
    doc = make_doc(tag)
    doc["provider"].update({"domain": "pcworld.com", "name": "PC World"})
    doc["provider"]["images"][0]["url"] = logo
    return render(doc)


def make_site(root: Path, *, config: bytes | None) -> Path:
    """Data files as the family writes them: topics ending with '---' or holding two
    documents, in each data format, and an organization whose logo is site-relative."""
    files: dict[str, bytes | None] = {
        "_news/a.md": document("a", ABSOLUTE_LOGO),
        "_data/topics/00-apps.yaml": topic_file("Apps") + b"---\n",
        "_data/topics/01-ai.yml": topic_file("AI", "Apps") + b"---\nname: Ignored\n",
        "_data/topics/02-bots.json": b'{"name": "Bots", "parent": "AI", "images": ["/b.png"]}\n'
        b"---\n",
        "_data/topics/03-flows.yaml": topic_file("Flows", "Apps"),
        "_data/topics/notes.csv": b"name\nNot a topic\n",  # README: tables are not read
        "_data/organizations/pcworld.com.md": organization_file("pcworld.com", "PCWorld", LOGO),
        "_data/organizations/wsj.com.json": b'{"name": "WSJ", "images": ["/wsj.png"]}\n---\n',
    }
    if config is not None:
        files["_config.yml"] = config
    write_tree(root, files)
    return root


def image_urls(url: str) -> list[str]:
    return sorted(row[0] for row in fetch(url, select(images.c.url)))


def topic_images(url: str) -> list[Any]:
    rows = fetch(url, select(source_topics.c.images).order_by(source_topics.c.position))
    return [row[0] for row in rows]


def test_data_files_read_as_jekyll_reads_them(db_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "powerapps", config=config_file())
    summary = run([site], db_url, workers=1, source="powerapps")
    # Four files hold more than their first document: warned about, not rejected.
    assert (summary.status, summary.documents_rejected, summary.warnings) == ("succeeded", 0, 4)
    assert hierarchy(db_url, "powerapps") == {
        "Apps": None,
        "AI": "Apps",
        "Bots": "AI",
        "Flows": "Apps",
    }
    # The organization's logo and the documents' are one image row.
    assert logos(db_url, "pcworld.com") == [ABSOLUTE_LOGO]
    assert [url for url in image_urls(db_url) if "pcworld" in url] == [ABSOLUTE_LOGO]
    assert provider(db_url, "wsj.com") == ("WSJ", None, True)  # domain from the file name
    assert logos(db_url, "wsj.com") == [f"{SITE_URL}/powerapps/wsj.png"]
    assert topic_images(db_url)[2] == [f"{SITE_URL}/powerapps/b.png"]
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "powerapps")])


def test_without_a_config_site_relative_urls_stay_as_written(db_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "powerapps", config=None)
    summary = run([site], db_url, workers=1, source="powerapps")
    assert (summary.status, summary.documents_rejected, summary.warnings) == ("succeeded", 0, 4)
    assert logos(db_url, "pcworld.com") == [LOGO]
    assert [url for url in image_urls(db_url) if "pcworld" in url] == [LOGO, ABSOLUTE_LOGO]
    assert topic_images(db_url)[2] == ["/b.png"]


def test_a_changed_baseurl_is_applied_by_the_next_run(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path / "powerapps", config=config_file())
    run([site], db_url, workers=1, source="powerapps")
    updated = fetch(db_url, select(providers.c.updated_at))

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the taxonomy was read again")

    with monkeypatch.context() as patched:  # unchanged: no taxonomy file is read
        patched.setattr(etl.transform.taxonomy, "read_taxonomy", fail)
        assert run([site], db_url, workers=1, source="powerapps").files_skipped_unchanged == 1
    write_tree(site, {"_config.yml": config_file(title_suffix="another setting")})
    again = run([site], db_url, workers=1, source="powerapps")
    assert again.warnings == 4  # read again: the same URLs, nothing written
    assert fetch(db_url, select(providers.c.updated_at)) == updated
    write_tree(site, {"_config.yml": config_file(baseurl="apps2/")})
    run([site], db_url, workers=1, source="powerapps")
    assert logos(db_url, "pcworld.com") == [f"{SITE_URL}/apps2{LOGO}"]
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "powerapps")])
    write_tree(site, {"_config.yml": None})
    run([site], db_url, workers=1, source="powerapps")
    assert logos(db_url, "pcworld.com") == [LOGO]
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "powerapps")])


def test_a_broken_config_rejects_the_sites_taxonomy_until_fixed(
    db_url: str, tmp_path: Path
) -> None:
    site = make_site(tmp_path / "powerapps", config=config_file())
    run([site], db_url, workers=1, source="powerapps")
    write_tree(site, {"_config.yml": b"url: [https://x.io\n"})
    summary = run([site], db_url, workers=1, source="powerapps")
    assert summary.status == "partial"
    assert [(item.path, "YAML error" in item.error) for item in summary.rejected] == [
        ("_config.yml", True)
    ]
    assert hierarchy(db_url, "powerapps") == {}  # Jekyll cannot build the site
    assert provider(db_url, "pcworld.com") == ("PC World", "PC World", False)
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "powerapps")])
    # Rejected again until fixed; then the taxonomy is back.
    assert run([site], db_url, workers=1, source="powerapps").documents_rejected == 1
    write_tree(site, {"_config.yml": config_file()})
    summary = run([site], db_url, workers=1, source="powerapps")
    assert (summary.status, summary.documents_rejected) == ("succeeded", 0)
    assert logos(db_url, "pcworld.com") == [ABSOLUTE_LOGO]
    assert live_snapshot(db_url) == fresh(tmp_path, [(site, "powerapps")])


def test_read_taxonomy_names_each_file_it_warns_about(tmp_path: Path) -> None:
    site = make_site(tmp_path / "powerapps", config=config_file() + b"---\n")
    found = read_taxonomy(site)
    assert found.rejected == ()
    assert sorted(warning.split(":", 1)[0] for warning in found.warnings) == [
        "_config.yml",
        "_data/organizations/wsj.com.json",
        "_data/topics/00-apps.yaml",
        "_data/topics/01-ai.yml",
        "_data/topics/02-bots.json",
    ]
    # The organization's logo is resolved even though _config.yml ends with '---'.
    (declared,) = [item for item in found.providers if item.provider.domain == "pcworld.com"]
    assert [image.url for image in declared.provider.images] == [ABSOLUTE_LOGO]


def test_a_warning_does_not_change_the_exit_code(sqlite_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "powerapps", config=config_file())
    result = run_etl("run", str(site), "--database-url", sqlite_url)
    assert result.returncode == 0, result.stderr
    assert "_data/topics/00-apps.yaml: only its first YAML document is read" in result.stderr
