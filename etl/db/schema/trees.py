"""The ``sources`` table: the named trees of documents every loaded file belongs to.

Defined before the news tables, so that the data dictionary lists it first.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from etl.db.schema.base import metadata, timestamps

# A named tree of documents: a Jekyll site checkout (``_news/`` and ``_data/``) or any
# directory of Markdown files. Files are keyed by their path relative to ``root``.
sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True, comment="Surrogate key."),
    Column(
        "name",
        String(255),
        nullable=False,
        unique=True,
        comment="The source's name: `etl run --source NAME`, else its root's resolved path.",
    ),
    Column(
        "root",
        Text,
        nullable=False,
        comment="The directory the source's files are keyed relative to (a Jekyll site "
        "root has `_news/`); '' for the `legacy` source of state loaded before sources.",
    ),
    # size and mtime of _config.yml and every taxonomy file (_data/topics,
    # _data/organizations), hashed: equal on the next run means the taxonomy is
    # unchanged, and it is not read.
    Column(
        "taxonomy_stamp",
        String(64),
        comment="Internal: hash of the taxonomy files' sizes and mtimes when last loaded.",
    ),
    *timestamps("source"),
    comment="Named trees of documents (Jekyll sites or directories), several per database. "
    "Which sites carry an article: join source_files.",
)
