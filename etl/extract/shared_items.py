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
from itertools import pairwise
from typing import Any

MIN_BLOCK = 2048  # characters: a shorter sequence costs more to cut than to parse
CACHE_ITEMS = 4096  # the corpus's related lists hold ~3,500 distinct items

# A top-level key alone on its line (no value, no comment), then a sequence item; the
# newline before it (the text's start is tried with _FIRST_KEY): with a literal to look
# for first, the regex engine skips to each newline instead of trying every character.
_FIRST_KEY = re.compile(r"([A-Za-z_][\w-]*):[ ]*\n( *)-(?=[ \n]|\Z)")
_SEQUENCE_KEY = re.compile(r"\n([A-Za-z_][\w-]*):[ ]*\n( *)-(?=[ \n]|\Z)")
# The newline before a line that starts at the first column (a sequence at indentation
# 0: and is not one of its items).
_COLUMN_0 = re.compile(r"\n(?=[^ \n])")
_COLUMN_0_NOT_ITEM = re.compile(r"\n(?=[^ \n])(?!-(?:[ \n]|\Z))")

_parsed: dict[str, Any] = {}  # an item's text (as in the document) -> its value


@cache
def _lines(indent: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(the newline before a line that is not blank and indented 1 to ``indent`` spaces,
    the newline before a line that starts an item of a sequence indented ``indent``)."""
    shallower = re.compile(rf"\n {{1,{indent}}}(?=[^ \n])") if indent else re.compile(r"(?!)")
    items = re.compile(rf"\n {{{indent}}}-(?=[ \n]|\Z)")
    return shallower, items


def _block(text: str, start: int, indent: int) -> list[int]:
    """Where the items of the sequence whose first item starts at ``start`` start, then
    where it ends: at the first line that is not blank, not indented deeper than
    ``indent`` and not an item. A line of 1 to ``indent`` spaces that is not an item
    ends it too, but this module does not cut around such a line: NotCut."""
    column_0 = (_COLUMN_0 if indent else _COLUMN_0_NOT_ITEM).search(text, start)
    end = len(text) if column_0 is None else column_0.start() + 1
    shallower, items = _lines(indent)
    cuts = [start, *(item.start() + 1 for item in items.finditer(text, start, end))]
    # Every item line is also a shallower line: any other shallower line is one too many.
    if indent and sum(1 for _ in shallower.finditer(text, start, end)) != len(cuts) - 1:
        raise NotCut
    cuts.append(end)
    return cuts


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
    error's position (a piece's line numbers are not the document's).
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
        cuts = _block(text, start, indent)
        end = cuts[-1]
        if end - start >= MIN_BLOCK:
            if end < len(text) and text[end] == "#":
                raise NotCut  # a comment at the first column: is the sequence over?
            sequences[match.group(1)] = [_item(text[a:b], indent, parse) for a, b in pairwise(cuts)]
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


def _item(text: str, indent: int, parse: Callable[[str], Any]) -> Any:
    try:
        return _parsed[text]
    except KeyError:
        pass
    value = parse(_dedent(text, indent))
    if not isinstance(value, list) or len(value) != 1:
        raise NotCut
    if len(_parsed) >= CACHE_ITEMS:
        _parsed.clear()
    _parsed[text] = value[0]
    return value[0]
