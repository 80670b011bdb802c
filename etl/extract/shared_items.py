"""Parsing a front-matter's long top-level sequences an item at a time, each distinct
item once per process.

News documents list their related articles with the snippet each shows: 96% of the
corpus's front-matter text, and the same few thousand items over and over (each
article is listed by about 30 others, with the same text). :func:`parse_by_items`
cuts every top-level block sequence of at least ``MIN_BLOCK`` characters into its
items by their lines (an item starts with a line of exactly the sequence's
indentation and ``-``; every other line of it is blank or indented deeper), parses
each item's text on its own (dedented: YAML indentation is relative), with the
results of texts seen before taken from a cache, and parses the rest of the
front-matter with ``[]`` in place of each sequence.

The result is the whole text's parse: every piece is parsed by the same parser, and
where the cutting could be wrong the pieces do not parse as a sequence item and a
mapping holding ``key: []``, and the caller parses the whole text instead (a quote
or bracket still open where a piece ends is an error; a line that ends a sequence
must start a top-level key). tests/test_shared_items.py compares both on the corpus
and on generated sequences. The cache is cleared past ``CACHE_ITEMS`` entries, so a
worker's memory does not grow with the corpus.

It must never be given a text with anchors, aliases or tags (an alias may name an
anchor in another item): the caller's fast path already refuses them.

May import: nothing of etl.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

MIN_BLOCK = 2048  # characters: a shorter sequence costs more to cut than to parse
CACHE_ITEMS = 4096  # the corpus's related lists hold ~3,500 distinct items

# A top-level key alone on its line (no value, no comment), then a sequence item; the
# newline before it (the text's start is tried with _FIRST_KEY): with a literal to look
# for first, the regex engine skips to each newline instead of trying every character.
_FIRST_KEY = re.compile(r"([A-Za-z_][\w-]*):[ ]*\n( *)-(?=[ \n]|\Z)")
_SEQUENCE_KEY = re.compile(r"\n([A-Za-z_][\w-]*):[ ]*\n( *)-(?=[ \n]|\Z)")

# (the sequence's indentation, the item is its last) -> the text of an item after its
# dash (without the newline that ends it, but for the last) -> the item's value. The
# last item's text is read without a newline after it, the others' with one: apart.
_parsed: dict[tuple[int, bool], dict[str, Any]] = {}
_MISSING = object()


@cache
def _stop(indent: int) -> re.Pattern[str]:
    """The newline before the first line, after a sequence indented ``indent`` starts,
    that is not blank, not indented deeper and not an item: at the first column (the
    sequence is over), or indented 1 to ``indent`` spaces without starting an item."""
    if not indent:
        return re.compile(r"\n[^ \n](?<!\n-)|\n-[^ \n]")
    odd = [rf" {{1,{indent}}}[^ \n-]", rf" {{{indent}}}-[^ \n]"]
    if indent > 1:
        odd.append(rf" {{1,{indent - 1}}}-")
    return re.compile(r"\n(?:[^ \n]|" + "|".join(odd) + ")")


def _items(text: str, start: int, indent: int) -> tuple[list[str], int]:
    """The items of the sequence whose first item starts at ``start`` (their text after
    the dash), and where it ends: at the first line that is not blank, not indented
    deeper than ``indent`` and not an item. A line of 1 to ``indent`` spaces that does
    not start an item ends it too, but this module does not cut around one: NotCut.

    The items seen before are taken as they come (:func:`_known_items`); the search
    for the end starts after them.
    """
    separator = "\n" + " " * indent + "-"
    known, after = _known_items(text, start - 1, separator, _parsed.get((indent, False)))
    stop = _stop(indent).search(text, after + 1)
    if stop is None:
        end = len(text)
    elif text[stop.start() + 1] == " ":
        raise NotCut
    else:
        end = stop.start() + 1
    # Every line of exactly `indent` spaces and a dash now starts an item (a space, a
    # newline or the end follows its dash); text[after] ends the line before one.
    return known + text[after:end].split(separator)[1:], end


def _known_items(
    text: str, at: int, separator: str, cached: dict[str, Any] | None
) -> tuple[list[str], int]:
    """The items from the separator at ``at`` on whose text is a cached item's and that
    another item follows, and the separator after the last of them.

    A cached text was cut from a sequence before, so no line in it ends a sequence or
    is one this module refuses to cut around: whether a line does depends on that line
    alone. Nor does the separator after it when a space or a newline follows its dash.
    So the end of the sequence is not before that separator, and the items up to it
    are exactly those that splitting the whole sequence would give. Most of a news
    document's text is items seen before: the line-by-line search is left the rest.
    """
    known: list[str] = []
    if not cached:
        return known, at
    size, length = len(separator), len(text)
    while True:
        following = text.find(separator, at + size)
        if following == -1:
            return known, at
        piece = text[at + size : following]
        after = following + size
        if piece not in cached or (after < length and text[after] not in " \n"):
            return known, at
        known.append(piece)
        at = following


def _values(pieces: list[str], indent: int, parse: Callable[[str], Any]) -> list[Any]:
    """The items' values: from the cache, or parsed (and cached)."""
    cached = _parsed.setdefault((indent, False), {})
    values = []
    for piece in pieces[:-1]:
        value = cached.get(piece, _MISSING)
        if value is _MISSING:
            value = _parse_item(piece, indent, False, parse)
        values.append(value)
    value = _parsed.setdefault((indent, True), {}).get(pieces[-1], _MISSING)
    if value is _MISSING:
        value = _parse_item(pieces[-1], indent, True, parse)
    values.append(value)
    return values


def _parse_item(piece: str, indent: int, last: bool, parse: Callable[[str], Any]) -> Any:
    first, newline, rest = piece.partition("\n")
    # YAML indentation is relative: the item alone, its lines less indented by `indent`.
    value = parse("-" + first + newline + _dedent(rest, indent) + ("" if last else "\n"))
    if not isinstance(value, list) or len(value) != 1:
        raise NotCut
    if sum(len(cached) for cached in _parsed.values()) >= CACHE_ITEMS:
        for cached in _parsed.values():
            cached.clear()
    _parsed[(indent, last)][piece] = value[0]
    return value[0]


def _dedent(text: str, indent: int) -> str:
    if not indent:
        return text
    pad = " " * indent
    # A blank line may be shorter than the indentation: it stays blank.
    return "\n".join(
        line[indent:] if line.startswith(pad) else line.lstrip(" ") for line in text.split("\n")
    )


class NotCut(Exception):
    """The text cannot be cut safely: parse it whole."""


def parse_by_items(text: str, parse: Callable[[str], Any]) -> dict[str, Any] | None:
    """``parse(text)`` for a front-matter with a long top-level block sequence, built
    from its pieces; None when it has none (or cannot be cut: parse it whole).

    ``parse``'s errors propagate: the caller parses the whole text again for the
    error's position (a piece's line numbers are not the document's). The items'
    values are shared by every text that holds them: read them, never change them.
    """
    try:
        return _parse_by_items(text, parse)
    except NotCut:
        return None


def _parse_by_items(text: str, parse: Callable[[str], Any]) -> dict[str, Any] | None:
    rest: list[str] = []
    sequences: dict[str, list[Any]] = {}
    done = 0  # text[:done] is in `rest` or cut into items
    match = _FIRST_KEY.match(text)
    while match is not None or (match := _SEQUENCE_KEY.search(text, max(done - 1, 0))):
        start, indent = match.start(2), len(match.group(2))
        pieces, end = _items(text, start, indent)
        if end - start >= MIN_BLOCK:
            if end < len(text) and text[end] == "#":
                raise NotCut  # a comment at the first column: is the sequence over?
            sequences[match.group(1)] = _values(pieces, indent, parse)
            rest.append(text[done:start].rstrip(" \n") + " []\n")
        else:
            rest.append(text[done:end])
        done, match = end, None
    if not sequences:
        return None
    rest.append(text[done:])
    mapping = parse("".join(rest))
    if not isinstance(mapping, dict):
        raise NotCut
    for key, values in sequences.items():
        if mapping.get(key) != []:  # the key line was not what it seemed (inside a scalar)
            raise NotCut
        mapping[key] = values
    return mapping
