"""Extract: files on disk -> raw front-matter mappings.

Owns file discovery, the size limit, decoding, the Jekyll front-matter split and
safe YAML parsing. Nothing here knows what a news document means; every failure
is a :class:`DocumentError` naming the file and, for YAML, the line and column.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
from collections.abc import Iterable
from functools import cache
from types import ModuleType
from typing import Any, NamedTuple

from etl.extract.shared_items import parse_by_items
from etl.records import DocumentError, FileStamp, RawDocument, SourceFile

DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024
SUFFIXES = (".md", ".markdown")

# Tags (!foo), anchors (&a) and aliases (*a) at the start of a YAML token. News
# front-matter never needs them; documents that use them take the strict PyYAML
# path, which refuses unknown tags and any alias (no "billion laughs").
_TOKEN_START = frozenset(" \t\n[{,:")


def may_use_tags_or_aliases(text: str) -> bool:
    """True if ``!``, ``&`` or ``*`` starts a token somewhere (a cheap over-approximation).

    ``str.find`` per character is several times faster than a regex over the text.
    """
    last = len(text) - 1
    for indicator in "!&*":
        i = text.find(indicator)
        while i != -1:
            if (i == 0 or text[i - 1] in _TOKEN_START) and i < last and not text[i + 1].isspace():
                return True
            i = text.find(indicator, i + 1)
    return False


# A file modified this recently may change again within the same mtime tick (some
# filesystems count in seconds), so its stamp is not trusted: it is hashed next run.
RACY_NS = 2_000_000_000


def file_stamp(path: str | os.PathLike[str]) -> FileStamp | None:
    """The file's stamp, or None if it is missing or too freshly modified to trust."""
    return _stamp(path, time.time_ns() - RACY_NS)


def file_stamps(root: str, keys: list[str]) -> list[FileStamp | None]:
    """The stamps of the files ``keys`` under ``root`` (:func:`file_stamp` each)."""
    # One clock reading for all: taken before the first stat, it trusts no file that a
    # later reading would not trust either.
    trusted_until = time.time_ns() - RACY_NS
    base = os.path.join(root, "")  # + key: os.path.join's result for a relative key
    return [_stamp(base + key, trusted_until) for key in keys]


def _stamp(path: str | os.PathLike[str], trusted_until: int) -> FileStamp | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    if info.st_mtime_ns > trusted_until:
        return None
    return FileStamp(info.st_size, info.st_mtime_ns)


def is_document_name(name: str) -> bool:
    """Whether a file of this name is a document: its suffix (``os.path.splitext``'s:
    a dot file has none) is one of ``SUFFIXES``, in any case."""
    # endswith first: it turns down most other names without splitext's work.
    return name.lower().endswith(SUFFIXES) and os.path.splitext(name)[1].lower() in SUFFIXES


def scan(directory: str, prefix: str, found: set[str]) -> None:
    """Add to ``found`` the keys of the documents under ``directory``: ``prefix`` +
    their path in it."""
    # Plain strings, not Path objects, and no list of DirEntry objects: a
    # 50,000-file tree would cost tens of MB more (and leave the heap fragmented).
    subdirectories = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                if is_document_name(name):
                    found.add(prefix + name)
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append((entry.path, prefix + name + "/"))
    except PermissionError:  # an unreadable directory holds nothing we can load
        return
    for path, deeper in subdirectories:  # after closing this one: few open descriptors
        scan(path, deeper, found)


def read_bytes(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refusing directories and files over ``max_bytes`` before reading."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise DocumentError("is a directory, not a document")
        if not stat.S_ISREG(mode):  # a FIFO or device would block or never end
            raise DocumentError("is not a regular file")
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise DocumentError(f"file is {size} bytes, over the limit of {max_bytes}")
            # Asking for the limit up front made every read allocate (and give back) a
            # 5 MiB buffer: ~20 us per file. One byte past the size tells if it grew.
            data = handle.read(size + 1)
            if len(data) > size:
                data += handle.read(max_bytes + 1 - len(data))
    except IsADirectoryError:
        raise DocumentError("is a directory, not a document") from None
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # grew while we were reading it
        raise DocumentError(f"file is over the limit of {max_bytes} bytes")
    return data


def prefetch(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Have the kernel start reading the regular files among ``paths`` now
    (``POSIX_FADV_WILLNEED``), so that :func:`read_bytes` finds them in memory instead of
    waiting for the disk a file at a time. A full load reads files that are seldom all
    in memory (the page cache of a checkout read an hour ago, or a machine that
    reclaims it): read one by one, 4,958 files not in memory took ~120 us each, against
    ~17 us in memory, and the corpus's full load on PostgreSQL 4.3 s against 3.6 s.

    Only regular files are opened, without waiting (``O_NONBLOCK``: a file replaced by a
    FIFO meanwhile does not block); nothing where the platform has no ``posix_fadvise``.
    A file that cannot be opened is left for :func:`read_bytes` to report.
    """
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(os.stat(path).st_mode):
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode(data: bytes) -> str:
    """UTF-8 text with a BOM removed and CRLF/CR line endings turned into LF."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not valid UTF-8 (byte {exc.start}: {exc.reason})") from None
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def split_front_matter(text: str) -> tuple[str, str, int]:
    """(front-matter, body, line number of the first front-matter line).

    Jekyll's rule: the first line is ``---``; the block closes at the next line
    that is ``---`` or ``...``.
    """
    if not text or text.isspace():
        raise DocumentError("empty file")
    newline = text.find("\n")
    first = text if newline == -1 else text[:newline]
    if first.rstrip() != "---":
        raise DocumentError("no front-matter: the first line is not '---'")
    end = None if newline == -1 else _closing_line(text, newline)
    if end is None:
        raise DocumentError("front-matter is never closed: no line '---' or '...' after it")
    start, stop = end
    return text[newline + 1 : start], text[stop:].removeprefix("\n"), 2


MAX_NESTING = 64  # news front-matter nests 4 deep; parsers recurse (yaml-rs overflows its stack)


# Two sequence dashes on one line ("- - x", "-  - x", "-\t- x"): a compact nested sequence.
_NESTED_DASHES = re.compile(r"-[ \t]+-")


def _nesting_hint(text: str) -> int:
    """An upper bound on how deep the YAML nests, cheap enough for every document.

    Counts flow brackets (even inside quotes, so it may over-count) and, per line,
    the ``- `` items that open on it; block indentation is bounded by the recursion
    guard in transform. One-character ``in`` tests come first: on the (mostly
    non-ASCII) front-matter they are several times faster than ``count``.
    """
    depth = 0
    # Only with more brackets than the limit can brackets nest that deep.
    if ("[" in text or "{" in text) and text.count("[") + text.count("{") > MAX_NESTING:
        level = 0
        for char in text:
            if char in "[{":
                level += 1
                depth = max(depth, level)
            elif char in "]}":
                level = max(0, level - 1)
    if _NESTED_DASHES.search(text):
        for line in text.split("\n"):
            stripped = line.lstrip(" \t")
            dashes = 0
            while stripped.startswith(("- ", "-\t")) or stripped == "-":
                dashes += 1
                stripped = stripped[2:].lstrip(" \t")
            depth = max(depth, dashes)
    return depth


# Where a closing line may start: one regex pass finds both markers, half the cost
# of a str.find pass for each on the (mostly non-ASCII) front-matter.
_MARKER_LINE = re.compile(r"\n(?:---|\.\.\.)")


def _closing_line(text: str, after: int) -> tuple[int, int] | None:
    """(start, end) of the first line after the newline at ``after`` that is ``---`` or
    ``...`` (trailing blanks allowed); ``end`` is where its newline is, or the text's end.
    The text is never copied."""
    match = _MARKER_LINE.search(text, after)
    while match:
        i = match.start()
        stop = text.find("\n", i + 4)
        stop = len(text) if stop == -1 else stop
        if not text[i + 4 : stop].strip(" \t"):
            return i + 1, stop
        match = _MARKER_LINE.search(text, i + 1)
    return None


def refuse_deep_nesting(text: str, what: str = "front-matter") -> None:
    """Refuse YAML that may nest deeper than ``MAX_NESTING`` before a parser recurses into it."""
    if _nesting_hint(text) > MAX_NESTING:
        raise DocumentError(f"{what} is nested deeper than {MAX_NESTING} levels")


def parse_yaml(text: str, first_line: int = 1) -> dict[str, Any]:
    """Parse front-matter YAML safely into a mapping (never constructs Python objects)."""
    refuse_deep_nesting(text)
    # yaml-rs accepts a tab before a top-level key; PyYAML rightly refuses it.
    tab_indent = "\t" in text and (text.startswith("\t") or "\n\t" in text)
    fast = fast_parser()
    if fast is not None and not tab_indent and not may_use_tags_or_aliases(text):
        data = _parse_fast(fast, text, first_line)
    else:
        data = _parse_strict(text, first_line)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise DocumentError(f"front-matter must be a mapping of keys to values, not {kind}")
    return data


class FastParser(NamedTuple):
    yaml_rs: ModuleType
    alias_limits: Any


@cache
def fast_parser() -> FastParser | None:
    """yaml-rs, a Rust parser ~10x faster than libyaml whose output is proven identical
    on the corpus; None where its wheel is missing (PyYAML parses everything then).

    Imported on the first parse: a run that finds nothing to parse never needs it.
    """
    try:
        import yaml_rs
    except ImportError:  # pragma: no cover - exercised only where the wheel is missing
        return None
    limits = yaml_rs.AliasLimits(
        max_total_replayed_events=10_000,
        max_replay_stack_depth=16,
        max_alias_expansions_per_anchor=100,
    )
    return FastParser(yaml_rs, limits)


_YAML_RS_POSITION = re.compile(r"line (\d+), column (\d+)")


def _parse_fast(fast: FastParser, text: str, first_line: int) -> Any:
    def parse(piece: str) -> Any:
        return fast.yaml_rs.loads(piece, alias_limits=fast.alias_limits)

    # The related list (nearly all of the text, the same items in many documents) an
    # item at a time, each distinct item parsed once; on an error, the whole text again
    # for the error's position.
    with contextlib.suppress(fast.yaml_rs.YAMLDecodeError):
        by_items = parse_by_items(text, parse)
        if by_items is not None:
            return by_items
    try:
        return parse(text)
    except fast.yaml_rs.YAMLDecodeError as exc:
        message = str(exc)
        position = _YAML_RS_POSITION.search(message)
        reason = "YAML error: " + message.strip().splitlines()[-1].strip()
        if position:
            line, column = int(position[1]), int(position[2])
            raise DocumentError(reason, line + first_line - 1, column) from None
    # No position (a duplicate key, say): the strict parser finds and places the problem.
    _parse_strict(text, first_line)
    raise DocumentError(reason)


def _parse_strict(text: str, first_line: int) -> Any:
    # Imported on first use: most runs never take the strict path, and PyYAML
    # costs ~10 ms of an unchanged re-run's start-up.
    from etl.extract.strict_yaml import parse_strict

    return parse_strict(text, first_line)


def extract(
    source: SourceFile,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    data: bytes | None = None,
    digest: str | None = None,
) -> RawDocument:
    """Read (unless ``data`` is given), decode, split and parse one file.

    ``digest`` is ``content_hash(data)`` when the caller has it already.
    """
    if data is None:
        data = read_bytes(source.path, max_bytes)
    digest = digest or content_hash(data)
    text = decode(data)
    if b"\x00" in data:  # memchr on the bytes; the text (often not ASCII) is slower to scan
        _refuse_raw_nul(text)
    front_matter, body, first_line = split_front_matter(text)
    parsed = parse_yaml(front_matter, first_line)
    if "\\" in front_matter and _NUL_MARKERS.search(front_matter):
        refuse_nul(parsed)
    return RawDocument(source, digest, parsed, body)


# A NUL through a YAML escape: only then is the parsed tree walked.
_NUL_MARKERS = re.compile(r"\\(?:0|x00|u0000|U00000000)")


def _refuse_raw_nul(text: str) -> None:
    """A raw NUL anywhere (front-matter or body): yaml-rs would silently stop at it."""
    position = text.find("\x00")
    if position != -1:
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        raise DocumentError("contains a NUL character", line, column)


def refuse_nul(value: Any, where: str = "") -> None:
    """PostgreSQL text cannot hold NUL, so no backend gets one: reject the document."""
    if isinstance(value, str):
        if "\x00" in value:
            raise DocumentError(f"{where or 'front-matter'}: contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, where)
            refuse_nul(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_nul(item, f"{where}[{index}]")
