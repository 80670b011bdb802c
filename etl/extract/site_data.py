"""What Jekyll reads from a site root besides its documents: data files and ``_config.yml``.

- A data file (``.yml``, ``.yaml`` or ``.json`` under ``_data/``) is read as Jekyll's
  ``DataReader`` reads it, with ``SafeYAML.load_file``: Psych's first YAML document
  (a JSON file is read as YAML too). What follows the first document (a trailing
  ``---``, more documents) is ignored, with a warning naming the file.
- The site's configuration is ``_config.yml``, else ``_config.yaml`` (the files Jekyll
  looks for, in its order); it is read the same way. Its ``url`` and ``baseurl`` make a
  site-relative URL of a data file absolute, as Jekyll's ``absolute_url`` filter does
  (:func:`absolute_url`, pure). A site root without one keeps such URLs as written.

``etl.transform.taxonomy`` reads the taxonomy files through these functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from etl.extract.extract import (
    DEFAULT_MAX_FILE_BYTES,
    decode,
    read_bytes,
    refuse_deep_nesting,
    refuse_nul,
)
from etl.records import DocumentError

# Jekyll also reads .csv and .tsv data files: tables of rows, never one entry (README).
DATA_SUFFIXES = (".yml", ".yaml", ".json")
CONFIG_FILES = ("_config.yml", "_config.yaml")  # Jekyll's _config.toml needs a plugin: unread


@dataclass(frozen=True, slots=True)
class SiteUrls:
    """``url`` and ``baseurl`` of a site's configuration ("" where it gives none)."""

    url: str = ""
    baseurl: str = ""


AS_WRITTEN = SiteUrls()  # no configuration: site-relative URLs stay as written


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """What the pipeline takes from a site's configuration file."""

    file: str | None  # relative to the root; None: the site has none
    urls: SiteUrls
    warnings: tuple[str, ...] = ()


# --- rules (pure) -----------------------------------------------------------------------


def _leading_slash(text: str) -> str:
    return text if not text or text.startswith("/") else "/" + text


def _site_root(url: str) -> str:
    """The site's ``url`` with its scheme and host in lower case (Addressable's
    normalization) and no trailing ``/`` (Jekyll would write ``//``: see the README)."""
    url = url.removesuffix("/")
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    return urlunsplit(
        (
            parts.scheme.lower(),
            userinfo + at + host.lower(),
            parts.path,
            parts.query,
            parts.fragment,
        )
    )


def absolute_url(value: str, urls: SiteUrls) -> str:
    """A site-relative URL (``/assets/x.png``) made absolute with the site's ``url`` and
    ``baseurl``, as Jekyll's ``absolute_url`` filter does: ``url`` + ``baseurl`` (one
    trailing ``/`` dropped, a leading one added) + the path. Without ``url`` it is
    ``baseurl`` + the path (Jekyll's ``relative_url``). A protocol-relative URL
    (``//cdn.example/x.png``) takes the scheme of ``url``; anything else (an absolute URL,
    a path relative to a page) is kept as written."""
    if not value.startswith("/"):
        return value
    if value.startswith("//"):
        scheme = urlsplit(urls.url).scheme
        return f"{scheme.lower()}:{value}" if scheme else value
    relative = _leading_slash(urls.baseurl.removesuffix("/")) + value
    return _site_root(urls.url) + relative if urls.url else relative


def _text_setting(config: dict[Any, Any], key: str) -> str:
    value = config.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        if "\x00" in value:
            raise DocumentError(f"{key}: contains a NUL character")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # `baseurl: 2021` is "/2021" to Jekyll (Ruby's to_s)
    raise DocumentError(f"{key}: must be text, not {type(value).__name__}")


def site_urls(config: Any, file: str) -> tuple[SiteUrls, tuple[str, ...]]:
    """The parsed configuration -> its URLs. An empty file is an empty mapping; one that
    is not a mapping is ignored with a warning, as Jekyll ignores it ("Using defaults")."""
    if config is None:
        return SiteUrls(), ()
    if not isinstance(config, dict):
        kind = type(config).__name__
        return SiteUrls(), (
            f"{file}: a {kind}, not a mapping of settings: ignored, as Jekyll does",
        )
    return SiteUrls(_text_setting(config, "url"), _text_setting(config, "baseurl")), ()


# --- files ------------------------------------------------------------------------------


def read_text(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> str:
    """A data file's text: within the size limit, UTF-8, without a NUL character."""
    text = decode(read_bytes(path, max_bytes))
    if "\x00" in text:
        raise DocumentError("contains a NUL character")
    return text


def data_value(text: str, file: str, *, strict: bool = True) -> tuple[Any, tuple[str, ...]]:
    """A data file's value (its first YAML document) and the warning that more followed.

    Strict, as documents are read (duplicate keys, aliases and unusual tags refused),
    unless ``strict`` is false: then as Psych reads it (see ``parse_first``)."""
    from etl.extract.strict_yaml import parse_first

    refuse_deep_nesting(text, "the data")
    value, follows = parse_first(text, strict=strict)
    if strict:
        refuse_nul(value)
    if follows:
        warning = f"{file}: only its first YAML document is read, as Jekyll reads it"
        return value, (warning + "; what follows it (a '---' line and after) is ignored",)
    return value, ()


def config_file(root: str | os.PathLike[str]) -> Path | None:
    """The configuration file Jekyll reads at ``root``, if there is one."""
    for name in CONFIG_FILES:
        path = Path(root, name)
        if path.exists():
            return path
    return None


def read_site_config(
    root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> SiteConfig:
    """The site's URLs from its configuration file; ``DocumentError`` if it cannot be read
    or parsed (Jekyll cannot build the site then).

    Read as Jekyll reads it (duplicate keys and aliases are fine): only ``url`` and
    ``baseurl`` are used, and a configuration Jekyll builds with must not cost the
    site its taxonomy."""
    path = config_file(root)
    if path is None:
        return SiteConfig(None, SiteUrls())
    file = path.relative_to(root).as_posix()
    value, followed = data_value(read_text(path, max_bytes), file, strict=False)
    urls, ignored = site_urls(value, file)
    return SiteConfig(file, urls, followed + ignored)
