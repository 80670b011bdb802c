"""The fast YAML path (yaml_rs, via etl.extract.extract.parse_yaml) against PyYAML's CSafeLoader.

The corpus test is the proof the faster parser is safe for the project's data: every
corpus document parses to identical values of identical types. The small tables show
the same on hand-written front-matter, and (as strict xfails) where the two parsers are
known to differ outside the corpus, so a change on either side is noticed.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
import yaml_rs

import etl.extract.extract
from etl.extract.extract import (
    decode,
    may_use_tags_or_aliases,
    parse_yaml,
    split_front_matter,
)
from etl.records import DocumentError

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_af0cddeac82c129c.md"


def reference(text: str) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader)


def difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where ``a`` and ``b`` differ in value or type (``==`` alone lets 1 == 1.0 == True pass)."""
    if type(a) is not type(b):
        return f"{where or '.'}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{where or '.'}: keys {list(a)!r} != {list(b)!r}"
        for key in a:
            found = difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where or '.'}: {len(a)} items != {len(b)} items"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{where}[{index}]")
            if found:
                return found
        return None
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return None
    if isinstance(a, datetime) and a.utcoffset() != b.utcoffset():
        return f"{where or '.'}: offset {a.utcoffset()} != {b.utcoffset()}"
    if a != b:
        return f"{where or '.'}: {a!r} != {b!r}"
    return None


def outcome(parse: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", parse(text)
    except (DocumentError, yaml.YAMLError, ValueError) as exc:
        return "rejected", type(exc).__name__


def test_fast_parser_is_installed() -> None:
    assert etl.extract.extract.fast_parser() is not None


AGREE = [
    pytest.param(
        "a: plain text\nb: \"double \\\" quoted\"\nc: 'single '' quoted'\n"
        'd: "unicode \\u00e9 \\U0001F600"\ne: "tab\\tnew\\nline"\n',
        id="strings",
    ),
    pytest.param(
        "a: 1\nb: -1\nc: 1.5\ne: 0\nf: -0.0\ng: 12345678901234567890\nh: .5\n", id="numbers"
    ),
    pytest.param("a: ~\nb: null\nc:\nd: Null\n", id="nulls"),
    pytest.param("a: true\nb: false\nc: True\nd: FALSE\n", id="booleans"),
    pytest.param(
        "a: 2021-08-29\nb: 2021-08-29T10:00:00Z\nc: 2021-08-29 10:00:00\n"
        "d: 2021-08-29T10:00:00.123456+02:00\ne: 2001-12-14 21:59:43.10 -5\n",
        id="timestamps",
    ),
    pytest.param(
        "a: |\n  line1\n  line2\nb: >\n  folded\n  text\nc: |-\n  strip\nd: >+\n  keep\n\n",
        id="block-scalars",
    ),
    pytest.param('a: this is\n  a folded plain\n  scalar\nb: "dq\n  folded"\n', id="multiline"),
    pytest.param(
        "a:\n  - x: 1\n    y: [1, 2, {z: 3}]\n  - []\n  - {}\nb: {c: d, e: [f]}\n", id="nested"
    ),
    pytest.param(
        "a: https://example.com/a?b=1&c=2#d\nb: http://x.y/%2C\nc: Morningstar%2c Inc.\n", id="urls"
    ),
    pytest.param("# c\na: 1 # trailing\nb: 'x # not a comment'\n", id="comments"),
    pytest.param("a: '@handle'\nb: 'colon: inside'\nc: 50%\nd: -dash\ne: '#hash'\n", id="special"),
    pytest.param("a: ''\nb: \"\"\nc: ' '\n", id="empty-strings"),
    pytest.param("a: .inf\nb: -.Inf\nc: .nan\nd: 1.0e+3\n", id="floats"),
    pytest.param("title: Tom &Jerry\nexcerpt: 5 * 3 and *bold*\n", id="indicator-text"),
]


@pytest.mark.parametrize("text", AGREE)
def test_parity_on_front_matter_constructs(text: str) -> None:
    assert difference(parse_yaml(text), reference(text)) is None
    assert difference(yaml_rs.loads(text), reference(text)) is None


def test_parity_on_seed() -> None:
    front_matter = split_front_matter(decode(SEED.read_bytes()))[0]
    assert not may_use_tags_or_aliases(front_matter)
    assert difference(parse_yaml(front_matter), reference(front_matter)) is None


YAML_1_1 = pytest.mark.xfail(strict=True, reason="PyYAML is YAML 1.1, yaml_rs is YAML 1.2")
DIFFERENT = pytest.mark.xfail(strict=True, reason="known difference outside the corpus")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: yes\nb: no\nc: on\nd: off\n", id="yes-no-on-off", marks=YAML_1_1),
        pytest.param("a: 017\n", id="leading-zero-octal", marks=YAML_1_1),
        pytest.param("a: 0o17\n", id="0o-octal", marks=YAML_1_1),
        pytest.param("a: 1e3\nb: 1E3\n", id="exponent-without-dot", marks=YAML_1_1),
        pytest.param("a: 1:30\n", id="sexagesimal", marks=YAML_1_1),
        pytest.param("a: {<<: {b: 1}}\n", id="merge-key", marks=YAML_1_1),
        pytest.param("a: 2020-13-45\n", id="impossible-date", marks=DIFFERENT),
        pytest.param("\ta: 1\n", id="tab-before-top-level-key"),
        pytest.param("a: b\x00c\n", id="raw-nul", marks=DIFFERENT),
        pytest.param('{"a":!!python/object/apply:len [[1]]}\n', id="tag-after-json-key"),
    ],
)
def test_known_differences_outside_the_corpus(text: str) -> None:
    fast, slow = outcome(parse_yaml, text), outcome(reference, text)
    assert fast[0] == slow[0]
    if fast[0] == "ok":
        assert difference(fast[1], slow[1]) is None


PLAIN = (str, int, float, bool, type(None), date, datetime, list, dict)


def not_plain(value: Any) -> type | None:
    """The first type in ``value`` that is not plain YAML (``PLAIN``), if any."""
    if not isinstance(value, PLAIN):
        return type(value)
    items: list[Any] = []
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    for item in items:
        found = not_plain(item)
        if found is not None:
            return found
    return None


class Parity(NamedTuple):
    """What disagrees in (a share of) the corpus: file names, or name: what."""

    strict_path: list[str]  # documents parse_yaml would not give to yaml_rs
    unequal: list[str]  # parse_yaml's or yaml_rs's value != the reference's
    mismatches: list[str]  # a difference in value or type, == notwithstanding
    not_plain: list[str]  # yaml_rs's value holds a type beyond PLAIN


def parity(paths: list[Path]) -> Parity:
    found = Parity([], [], [], [])
    for path in paths:
        front_matter = split_front_matter(decode(path.read_bytes()))[0]
        if may_use_tags_or_aliases(front_matter):
            found.strict_path.append(path.name)
        expected = reference(front_matter)
        fast = parse_yaml(front_matter)
        direct = yaml_rs.loads(front_matter)
        if fast != expected or direct != expected:
            found.unequal.append(path.name)
        for difference_found in (difference(fast, expected), difference(direct, expected)):
            if difference_found:
                found.mismatches.append(f"{path.name}: {difference_found}")
        odd = not_plain(direct)
        if odd is not None:
            found.not_plain.append(f"{path.name}: {odd.__name__}")
    return found


@pytest.fixture(scope="module")
def corpus_parity(corpus_news: Path) -> Parity:
    """Every corpus document parsed three ways, once for the module's corpus tests.

    PyYAML's parse of every document is most of the time: the files are split over one
    process per core.
    """
    paths = sorted(corpus_news.glob("*.md"))
    shares = os.cpu_count() or 1
    with ProcessPoolExecutor(shares) as pool:
        found = list(pool.map(parity, [paths[k::shares] for k in range(shares)]))
    return Parity(*([item for share in found for item in share[i]] for i in range(4)))


@pytest.mark.corpus
def test_parity_on_corpus(corpus_news: Path, corpus_parity: Parity) -> None:
    assert len(list(corpus_news.glob("*.md"))) == 4958
    # so every document went through yaml_rs
    assert not corpus_parity.strict_path, corpus_parity.strict_path[:10]
    assert not corpus_parity.unequal, corpus_parity.unequal[:10]
    assert not corpus_parity.mismatches, corpus_parity.mismatches[:10]


@pytest.mark.corpus
def test_corpus_values_are_plain_yaml_types(corpus_parity: Parity) -> None:
    """The corpus needs nothing beyond str/int/float/bool/None/date(time)/list/dict."""
    assert not corpus_parity.not_plain, corpus_parity.not_plain[:10]
