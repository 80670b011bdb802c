"""Jekyll site roots for the tests of site taxonomies and site data (helpers shared by
the test modules, like ``tests.helpers``): the files of `_data/topics` and
`_data/organizations`, a small site that uses them, a fresh load to compare a history
with, and the taxonomy tables as a test reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from etl import run
from etl.db.schema import (
    images,
    provider_images,
    providers,
    source_topics,
    sources,
    topics,
)
from tests.helpers import dump_yaml, fetch, make_doc, render, write_tree
from tests.snapshots import live_snapshot


def topic_file(name: str, parent: str | None = None, **extra: Any) -> bytes:
    data: dict[str, Any] = {"taxonomy": "topic", "_id": name.lower(), "name": name}
    if parent:
        data["parent"] = parent
    data.update(extra)
    return dump_yaml(data).encode()


def organization_file(domain: str, name: str, *logos: str) -> bytes:
    data: dict[str, Any] = {
        "taxonomy": "organization",
        "_id": domain,
        "name": name,
        "domain": domain,
    }
    if logos:
        data["images"] = [{"url": logo, "width": 50, "height": 50} for logo in logos]
    return render(data, "")


def news(tag: str, provider: str | None = None, provider_name: str | None = None) -> bytes:
    doc = make_doc(tag)
    if provider:
        doc["provider"]["domain"] = provider
        doc["provider"]["name"] = provider_name or f"Doc name of {provider}"
    doc["topics"] = ["AI", f"Topic {tag}"]
    return render(doc)


def make_site(root: Path, *, ai_parent: str | None = "Azure", declare: bool = True) -> Path:
    files: dict[str, bytes | None] = {
        "_news/a.md": news("a", "pcworld.com", "PC World"),
        "_news/b.md": news("b", "wsj.com", "Wall Street Journal"),
        "_data/topics/00-azure.yaml": topic_file("Azure", keywords=["azure"]),
        "_data/topics/02-ai.yaml": topic_file("AI", ai_parent, hashtags=["#ai"]),
    }
    if declare:
        files["_data/organizations/pcworld.com.md"] = organization_file(
            "pcworld.com", "PCWorld", "/assets/pcworld-50.jpg"
        )
        files["_data/organizations/quiet.com.md"] = organization_file("quiet.com", "Quiet")
    write_tree(root, files)
    return root


def fresh(tmp_path: Path, loads: list[tuple[Path, str]]) -> dict[str, Any]:
    reference = f"sqlite:///{tmp_path / f'fresh-{len(list(tmp_path.iterdir()))}.sqlite3'}"
    for path, name in loads:
        run([path], reference, workers=1, source=name)
    return live_snapshot(reference)


def hierarchy(url: str, source: str) -> dict[str, str | None]:
    parent = topics.alias("parent")
    rows = fetch(
        url,
        select(topics.c.name, parent.c.name.label("parent"))
        .select_from(source_topics)
        .join(sources, sources.c.id == source_topics.c.source_id)
        .join(topics, topics.c.id == source_topics.c.topic_id)
        .outerjoin(parent, parent.c.id == source_topics.c.parent_topic_id)
        .where(sources.c.name == source),
    )
    return {row.name: row.parent for row in rows}


def provider(url: str, domain: str) -> tuple[Any, ...] | None:
    rows = fetch(
        url,
        select(providers.c.name, providers.c.document_name, providers.c.named_by_source).where(
            providers.c.domain == domain
        ),
    )
    return (rows[0].name, rows[0].document_name, bool(rows[0].named_by_source)) if rows else None


def logos(url: str, domain: str) -> list[str]:
    rows = fetch(
        url,
        select(images.c.url)
        .select_from(provider_images)
        .join(providers, providers.c.id == provider_images.c.provider_id)
        .join(images, images.c.id == provider_images.c.image_id)
        .where(providers.c.domain == domain)
        .order_by(provider_images.c.position, images.c.url),
    )
    return [row[0] for row in rows]
