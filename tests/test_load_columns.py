"""Each list of article columns in load agrees with the table (one definition: the schema)."""

from __future__ import annotations

from datetime import UTC, datetime

from etl.db.schema import articles
from etl.extract.extract import extract
from etl.load.prepared import ARTICLE_COLUMNS, ARTICLE_KEPT, ARTICLE_READY, ready_values
from etl.load.stubs import DOCUMENT_ONLY_COLUMNS, STUB_COLUMNS
from etl.load.writes import _article_row
from etl.records import SourceFile
from etl.transform.transform import transform
from tests.helpers import SEED_PATH


def test_a_documents_row_sets_every_column_but_the_kept_ones() -> None:
    doc = transform(extract(SourceFile(str(SEED_PATH.parent), SEED_PATH.name, "seeds")))
    row = _article_row(doc, provider_id=1, source_id=1, now=datetime.now(UTC))
    table = {c.name for c in articles.c}
    assert set(row) == table - {"id"}
    assert set(ARTICLE_COLUMNS) == table - set(ARTICLE_KEPT)
    # In this order: MariaDB's are converted to literals by position (etl.load.prepared.Prepared).
    assert tuple(ready_values(doc)) == ARTICLE_READY


def test_the_partial_lists_name_real_columns() -> None:
    table = {c.name for c in articles.c}
    assert set(DOCUMENT_ONLY_COLUMNS) <= table
    assert set(STUB_COLUMNS) <= table
