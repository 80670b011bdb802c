"""The README's analyst recipes and the views, on the whole shared corpus, on every backend.

The corpus is loaded once per backend for the session (conftest's corpus_loads). Every
answer is derived here from the corpus files themselves (their YAML, with the documented
rules: canonical URLs, the later publishedDateTime wins a URL, topic slugs and the
smallest display name), never from what a query returns.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml_rs
from sqlalchemy import Engine, text

import etl
from etl.db import database, datasette_metadata
from etl.extract.extract import split_front_matter
from etl.records import winner_key
from etl.transform.transform import (
    canonical_url,
    normalize_domain,
    normalize_provider_name,
    topic_slug,
)
from tests.analyst_clients import datasette_name, datasette_search, sqlite_path, sqlite_utils_search
from tests.helpers import ROOT, run_etl
from tests.snapshots import LoadedCorpus

pytestmark = pytest.mark.corpus

README = ROOT / "README.md"
RECIPES = {
    "top-providers",
    "topic-by-month",
    "articles-by-month",
    "most-linked",
    "article",
    "article-links",
    "removed",
    "site-top-topics",
    "topic-tree",
    "search",
    "search-count",
}
# Words whose live full articles every backend's search finds exactly (no stemming
# variants in the corpus, no host names or compounds that a tokenizer keeps whole).
SEARCH_WORDS = ("kubernetes", "hololens", "blockchain", "quantum", "sentinel", "cosmos")
ARTICLE = (
    "https://azure.microsoft.com/blog/"
    "azure-defender-for-storage-powered-by-microsoft-threat-intelligence"
)


def readme_recipes() -> dict[str, dict[str, str]]:
    """name -> {dialect or "all": SQL}, from the README's ``<!-- recipe: NAME DIALECT -->``."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    pattern = r"<!-- recipe: ([\w-]+) (all|sqlite|postgresql|mariadb) -->\n```sql\n(.*?)```"
    for name, dialect, sql in re.findall(pattern, README.read_text(encoding="utf-8"), re.S):
        assert dialect not in found[name], f"recipe {name} {dialect} twice"
        found[name][dialect] = sql.strip().rstrip(";")
    return dict(found)


# --- what the corpus files say ------------------------------------------------------


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):  # a plain date: midnight UTC
        value = datetime(value.year, value.month, value.day)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _target(entry: dict[str, Any]) -> str | None:
    raw = str(entry.get("webUrl") or "").strip() or str(entry.get("originalUrl") or "").strip()
    try:
        return canonical_url(raw) if raw else None
    except ValueError:
        return None


@dataclass
class Article:
    url: str
    title: str
    published_at: datetime | None
    domain: str
    removed: bool
    slugs: list[str]
    links: list[tuple[int, str]]  # (position, target URL), first occurrence, no self-link
    images: int
    excerpt: str | None = None

    def mentions(self, word: str) -> bool:
        """``word`` is a word (case-insensitively) of the title or the excerpt."""
        words = re.findall(r"\w+", f"{self.title or ''} {self.excerpt or ''}")
        return word.casefold() in {w.casefold() for w in words}


@dataclass
class Corpus:
    articles: dict[str, Article] = field(default_factory=dict)  # the winners, by URL
    topic_names: dict[str, str] = field(default_factory=dict)  # slug -> display name
    provider_names: dict[str, str] = field(default_factory=dict)  # domain -> name
    declared: dict[str, str] = field(default_factory=dict)  # organization files: domain -> name

    @property
    def live(self) -> list[Article]:
        return [a for a in self.articles.values() if not a.removed]

    def topics(self, article: Article) -> str | None:
        return ", ".join(self.topic_names[slug] for slug in article.slugs) or None

    def linked_from(self) -> Counter[str]:
        """Links from live full articles, per target (removed targets included)."""
        return Counter(url for a in self.live for _, url in a.links)


def read_corpus(news: Path) -> Corpus:
    winners: dict[str, tuple[tuple[datetime, str], dict[str, Any]]] = {}
    for path in sorted(news.glob("*.md")):
        front_matter, _, _ = split_front_matter(path.read_text(encoding="utf-8"))
        doc: dict[str, Any] = yaml_rs.loads(front_matter)  # type: ignore[assignment]
        url = canonical_url(doc.get("webUrl") or doc["originalUrl"])
        key = winner_key(doc.get("publishedDateTime"), path.name)
        if url not in winners or key > winners[url][0]:
            winners[url] = (key, doc)
    corpus = Corpus()
    topic_names: dict[str, set[str]] = defaultdict(set)
    provider_names: dict[str, set[str]] = defaultdict(set)
    for url, (_, doc) in winners.items():
        slugs: list[str] = []
        for name in doc.get("topics") or []:
            slug = topic_slug(name)
            if slug and slug not in slugs:
                slugs.append(slug)
                topic_names[slug].add(" ".join(name.split()))
        domain = normalize_domain(doc["provider"]["domain"])
        provider_names[domain].add(normalize_provider_name(doc["provider"].get("name") or ""))
        links: list[tuple[int, str]] = []
        for position, entry in enumerate(doc.get("related") or []):
            target = _target(entry)
            if target and target != url and target not in {t for _, t in links}:
                links.append((position, target))
        images = {str(i.get("url") or "").strip() for i in doc.get("images") or []} - {""}
        corpus.articles[url] = Article(
            url,
            doc["title"],
            _utc(doc.get("publishedDateTime")),
            domain,
            bool(doc.get("removed")),
            slugs,
            links,
            len(images),
            None if doc.get("excerpt") is None else str(doc["excerpt"]),
        )
    # The site's taxonomy (beside _news/): its topic names count like documents' ones;
    # an organization file's name beats the documents'.
    data = news.parent / "_data"
    for path in sorted((data / "topics").glob("*.yaml")):
        topic: dict[str, Any] = yaml_rs.loads(path.read_text(encoding="utf-8"))  # type: ignore[assignment]
        for name in (topic["name"], topic.get("parent")):
            if name:
                topic_names[topic_slug(name)].add(" ".join(name.split()))
    declared: dict[str, str] = {}
    for path in sorted((data / "organizations").glob("*.md")):
        front_matter, _, _ = split_front_matter(path.read_text(encoding="utf-8"))
        organization: dict[str, Any] = yaml_rs.loads(front_matter)  # type: ignore[assignment]
        declared[normalize_domain(organization["domain"])] = organization["name"]
    corpus.topic_names = {slug: min(names) for slug, names in topic_names.items()}
    corpus.provider_names = {
        domain: min(names - {""} or {domain}) for domain, names in provider_names.items()
    } | declared
    corpus.declared = declared
    return corpus


@pytest.fixture(scope="module")
def corpus(corpus_news: Path) -> Corpus:
    return read_corpus(corpus_news)


@pytest.fixture(scope="module")
def loaded_url(loaded_corpus: LoadedCorpus) -> str:
    """The corpus loaded on each backend, once per session (conftest's corpus_loads)."""
    assert loaded_corpus.summary.documents_rejected == 0
    return loaded_corpus.url


@pytest.fixture(scope="module")
def loaded(loaded_url: str) -> Iterator[Engine]:
    engine = database.make_engine(loaded_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _backend(engine: Engine) -> str:
    return "mariadb" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name


def query(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def recipe(engine: Engine, name: str) -> list[tuple[Any, ...]]:
    versions = readme_recipes()[name]
    return query(engine, versions.get("all") or versions[_backend(engine)])


def assert_top(rows: list[tuple[Any, Any]], expected: dict[Any, Any], limit: int) -> None:
    """``rows`` (key, score) are the ``limit`` best of ``expected`` by score, descending.

    Ties are broken by a column whose collation differs between backends, so within
    the tie at the cut any of the tied keys may appear.
    """
    ranked = sorted(expected.items(), key=lambda item: item[1], reverse=True)
    assert len(rows) == min(limit, len(ranked))
    assert [score for _, score in rows] == [score for _, score in ranked[: len(rows)]]
    assert all(expected.get(key) == score for key, score in rows), rows
    cut = rows[-1][1]
    assert {key for key, score in ranked if score > cut} <= {key for key, _ in rows}


# --- the recipes --------------------------------------------------------------------


def test_the_readme_has_every_recipe_for_every_backend() -> None:
    recipes = readme_recipes()
    assert set(recipes) == RECIPES, "a recipe without a test here (or the reverse)"
    for name, versions in recipes.items():
        assert "all" in versions or set(versions) == {"sqlite", "postgresql", "mariadb"}, name


def test_recipe_top_providers(loaded: Engine, corpus: Corpus) -> None:
    counts = Counter(a.domain for a in corpus.live)
    rows = recipe(loaded, "top-providers")
    assert_top([(domain, count) for domain, _, count, *_ in rows], dict(counts), 10)
    assert all(name == corpus.provider_names[domain] for domain, name, *_ in rows)
    assert rows[0][:3] == ("microsoft.com", "Microsoft", 2135)  # the largest
    first, last = rows[0][3:]
    microsoft = [
        a.published_at for a in corpus.live if a.domain == "microsoft.com" and a.published_at
    ]
    assert (_utc(first), _utc(last)) == (min(microsoft), max(microsoft))


def test_recipe_topic_by_month(loaded: Engine, corpus: Corpus) -> None:
    months = Counter(
        a.published_at.strftime("%Y-%m") for a in corpus.live if "ai" in a.slugs and a.published_at
    )
    assert recipe(loaded, "topic-by-month") == sorted(months.items())


def test_recipe_articles_by_month(loaded: Engine, corpus: Corpus) -> None:
    months = Counter(a.published_at.strftime("%Y-%m") for a in corpus.live if a.published_at)
    assert recipe(loaded, "articles-by-month") == sorted(months.items())


def test_recipe_most_linked(loaded: Engine, corpus: Corpus) -> None:
    linked = {
        url: n
        for url, n in corpus.linked_from().items()
        if url not in corpus.articles or not corpus.articles[url].removed
    }
    rows = recipe(loaded, "most-linked")
    titles = {url: corpus.articles[url].title for url in linked}
    found = [(title, n) for title, _, _, n in rows]
    assert_top(found, {titles[url]: n for url, n in linked.items()}, 10)
    assert {bool(is_stub) for _, _, is_stub, _ in rows} == {False}  # the corpus has no stubs


def test_recipe_article(loaded: Engine, corpus: Corpus, corpus_root: Path) -> None:
    article = corpus.articles[ARTICLE]
    (row,) = recipe(loaded, "article")
    assert row[1:4] == (ARTICLE, article.title, row[3])
    assert row[5:] == (
        article.domain,
        corpus.provider_names[article.domain],
        "Azure, Storage, Management tools, Security",
        len(article.links),
        corpus.linked_from()[ARTICLE],
        article.images,
        str(corpus_root.resolve()),  # the one site that carries it
    )
    assert corpus.topics(article) == "Azure, Storage, Management tools, Security"
    links = recipe(loaded, "article-links")
    assert [(position, url) for position, url, *_ in links] == article.links
    assert [title for _, _, title, _, _ in links] == [
        corpus.articles[url].title for _, url in article.links
    ]


def test_recipe_removed(loaded: Engine, corpus: Corpus) -> None:
    removed = [a for a in corpus.articles.values() if a.removed]
    assert len(removed) == 1
    assert recipe(loaded, "removed") == [("document", len(removed))]


def test_recipe_search_count(loaded: Engine, corpus: Corpus) -> None:
    expected = [a for a in corpus.live if a.mentions("kubernetes")]
    assert len(expected) == 135
    assert recipe(loaded, "search-count") == [(len(expected),)]


def test_recipe_search_ranks_as_etl_search(loaded: Engine, corpus: Corpus) -> None:
    rows = recipe(loaded, "search")
    live = {a.url: a for a in corpus.live}
    assert len(rows) == 10
    assert all(live[url].mentions("kubernetes") for _, _, url, _ in rows)
    scores = [score for *_, score in rows]
    assert scores == sorted(scores, reverse=True)
    found = etl.search("kubernetes", engine=loaded, limit=10)
    assert [url for _, _, url, _ in rows] == [hit.url for hit in found]


def test_search_finds_exactly_the_live_articles_that_mention_a_word(
    loaded: Engine, corpus: Corpus
) -> None:
    for word in SEARCH_WORDS:
        expected = {a.url for a in corpus.live if a.mentions(word)}
        assert expected, word
        for query in (word, word.upper()):
            found = etl.search(query, engine=loaded, limit=10_000)
            assert {hit.url for hit in found} == expected, query
            assert len(found) == len(expected)
    removed = next(a for a in corpus.articles.values() if a.removed)
    title_words = [w for w in re.findall(r"[^\W\d_]{4,}", removed.title)]
    hits = etl.search(" ".join(title_words), engine=loaded, limit=10_000)
    assert removed.url not in {hit.url for hit in hits}


def test_etl_search_on_the_corpus(loaded_url: str, loaded: Engine, corpus: Corpus) -> None:
    result = run_etl(
        "search", "Kubernetes", "--json", "--limit", "500", "--database-url", loaded_url
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["url"] for row in rows} == {a.url for a in corpus.live if a.mentions("kubernetes")}
    assert all(row["title"] for row in rows)


def test_datasette_and_sqlite_utils_search_the_corpus_as_etl_search(
    loaded_url: str, loaded: Engine, corpus: Corpus
) -> None:
    if loaded.dialect.name != "sqlite":
        pytest.skip("Datasette and sqlite-utils read SQLite only")
    path = sqlite_path(loaded_url)
    metadata = datasette_metadata.metadata(datasette_name(path))
    removed = next(a for a in corpus.articles.values() if a.removed)
    title_word = max(re.findall(r"[^\W\d_]{4,}", removed.title), key=len)
    for word in (*SEARCH_WORDS, title_word):
        expected = {a.url for a in corpus.live if a.mentions(word)}
        found = {hit.url for hit in etl.search(word, engine=loaded, limit=10_000)}
        assert found == expected and removed.url not in found, word
        assert set(datasette_search(path, word, metadata)) == expected, word
        assert set(sqlite_utils_search(path, word)) == expected, word


# --- the views on the whole corpus --------------------------------------------------


def test_overview_has_one_row_per_live_full_article_with_its_topics_in_order(
    loaded: Engine, corpus: Corpus
) -> None:
    rows = query(loaded, "SELECT url, topics, related_count, image_count FROM article_overview")
    assert len(rows) == len(corpus.live) == 4942  # 4,943 URLs, one says removed: true
    assert {url: (topics, links, images) for url, topics, links, images in rows} == {
        a.url: (corpus.topics(a), len(a.links), a.images) for a in corpus.live
    }
    # Documents whose topics are not in alphabetical order keep theirs.
    unordered = [a for a in corpus.live if a.slugs != sorted(a.slugs)]
    assert len(unordered) > 100


def test_provider_counts_and_topic_months_on_the_corpus(loaded: Engine, corpus: Corpus) -> None:
    counts = Counter(a.domain for a in corpus.live)
    rows = query(loaded, "SELECT provider_domain, article_count FROM provider_article_counts")
    assert dict(rows) == dict(counts) and len(rows) == len(counts)
    months = Counter(
        (slug, a.published_at.strftime("%Y-%m"))
        for a in corpus.live
        if a.published_at
        for slug in a.slugs
    )
    rows = query(loaded, "SELECT topic_slug, month, article_count FROM topic_monthly_counts")
    assert {(slug, month): n for slug, month, n in rows} == dict(months)
    assert len(rows) == len(months)


def test_most_linked_and_removed_views_on_the_corpus(loaded: Engine, corpus: Corpus) -> None:
    linked_from = corpus.linked_from()
    linked = {
        url: n
        for url, n in linked_from.items()
        if url not in corpus.articles or not corpus.articles[url].removed
    }
    rows = query(loaded, "SELECT url, linked_from_count FROM most_linked_articles")
    assert dict(rows) == linked and len(rows) == len(linked)
    overview = dict(query(loaded, "SELECT url, linked_from_count FROM article_overview"))
    assert overview == {a.url: linked_from[a.url] for a in corpus.live}
    removed = [a.url for a in corpus.articles.values() if a.removed]
    assert query(loaded, "SELECT url, removal FROM removed_articles") == [
        (url, "document") for url in removed
    ]


def _taxonomy(corpus_root: Path) -> list[tuple[int, str, str | None]]:
    """(position, name, parent name) of every topic file, read without the code under test."""
    found = []
    for path in sorted((corpus_root / "_data" / "topics").glob("*.yaml")):
        topic: dict[str, Any] = yaml_rs.loads(path.read_text(encoding="utf-8"))  # type: ignore[assignment]
        found.append((int(path.name.split("-")[0]), topic["name"], topic.get("parent")))
    return found


def test_recipe_topic_tree(loaded: Engine, corpus: Corpus, corpus_root: Path) -> None:
    site = str(corpus_root.resolve())
    entries = _taxonomy(corpus_root)
    expected = sorted(
        entries, key=lambda e: (e[2] is not None, e[0], corpus.topic_names[topic_slug(e[1])])
    )
    rows = recipe(loaded, "topic-tree")
    assert [(row[0], row[1], row[3]) for row in rows] == [
        (site, p, parent) for p, _, parent in expected
    ]
    assert [row[2] for row in rows] == [
        corpus.topic_names[topic_slug(name)] for _, name, _ in expected
    ]


def test_recipe_site_top_topics(loaded: Engine, corpus: Corpus, corpus_root: Path) -> None:
    parent = {
        topic_slug(name): topic_slug(up) if up else None for _, name, up in _taxonomy(corpus_root)
    }

    def top(slug: str) -> str:
        while parent[slug] is not None:
            slug = parent[slug]  # type: ignore[assignment]
        return slug

    counts = Counter(
        top_slug
        for article in corpus.live
        for top_slug in {top(slug) for slug in article.slugs if slug in parent}
    )
    site = str(corpus_root.resolve())
    expected = sorted(
        ((site, corpus.topic_names[slug], n) for slug, n in counts.items()),
        key=lambda row: (-row[2], row[1]),
    )
    assert recipe(loaded, "site-top-topics") == expected
    assert expected[0][1:] == ("Azure", expected[0][2]) and expected[0][2] > 4000


def test_the_corpus_organizations_name_their_providers(loaded: Engine, corpus: Corpus) -> None:
    """Every organization file of the site declares its provider, by its own name."""
    declared = corpus.declared
    rows = query(
        loaded,
        "SELECT p.domain, p.name, p.named_by_source FROM providers p "
        "JOIN source_providers sp ON sp.provider_id = p.id",
    )
    assert {domain: name for domain, name, _ in rows} == declared
    assert all(flag for *_, flag in rows)
    assert len(declared) == 70
    assert (declared["pcworld.com"], declared["wsj.com"]) == ("PCWorld", "WSJ")
