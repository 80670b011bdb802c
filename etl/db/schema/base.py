"""What every table shares: the metadata, its naming convention, UTC timestamps.

Owns ``SCHEMA_REVISION`` (the migration these tables correspond to), the
``metadata`` every table module adds its tables to, the constraint naming convention,
the MySQL table options and ``UTCDateTime``, the timestamp type of every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, MetaData, func
from sqlalchemy.types import TypeDecorator

# The Alembic revision these tables correspond to: bump it with every new migration
# (a test checks it equals the newest one). ``etl run`` compares it with the
# database's revision and only loads Alembic when they differ.
SCHEMA_REVISION = "0014"

# Deterministic constraint names so migrations can drop/alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# MariaDB/MySQL: 4-byte UTF-8 everywhere, and a binary collation so that URLs,
# slugs and domains compare byte-for-byte as they do on PostgreSQL and SQLite.
# Every table has these options, but they are not passed to Table(): SQLAlchemy
# imports a dialect to check the options named after it, ~20 ms of every start on
# every backend. The migrations spell them out (a MariaDB test checks the tables
# they make), and with_mysql_table_options() attaches them for Alembic's env.py.
MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


# How SQLite stores every timestamp: UTC, one fixed-width text form that sorts in
# time order (SQLAlchemy's own form for SQLite, with the space SQLite's date
# functions use). Migration 0006 rewrites any other form found in existing rows.
SQLITE_TIMESTAMP_FORM = "YYYY-MM-DD HH:MM:SS.ffffff"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite and MariaDB have no zone, so values
    are stored as naive UTC and come back with ``tzinfo=UTC`` attached. On SQLite
    the stored text is always ``SQLITE_TIMESTAMP_FORM`` (6 fractional digits), so
    text comparison is time comparison; MariaDB ``DATETIME`` keeps whole seconds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if getattr(dialect, "name", "") != "postgresql":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def timestamps(what: str) -> list[Column[datetime]]:
    """``created_at`` and ``updated_at`` for a table whose rows are called ``what``."""
    return [
        Column(
            "created_at",
            UTCDateTime(),
            nullable=False,
            server_default=func.now(),
            comment=f"When this {what} was first inserted (UTC).",
        ),
        Column(
            "updated_at",
            UTCDateTime(),
            nullable=False,
            server_default=func.now(),
            comment=f"When this {what} last changed (UTC).",
        ),
    ]


def with_mysql_table_options() -> MetaData:
    """``metadata``, every table carrying ``MYSQL_TABLE_OPTIONS`` (imports the MySQL dialect).

    For code that writes MySQL DDL from these tables: Alembic's autogenerate then
    renders the options into a new table's migration. Calling it again changes nothing.
    """
    for table in metadata.tables.values():
        table.dialect_kwargs.update(MYSQL_TABLE_OPTIONS)
    return metadata
