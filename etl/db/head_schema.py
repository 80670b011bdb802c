"""A fresh database's schema made in one pass: the migration chain's statements, as
Alembic renders them for the dialect, recorded in the package and run as they are.

Upgrading an empty database through Alembic took 0.15-0.6 s, up to a tenth of a full
load of the corpus: importing the migrations, building and compiling each operation,
and a round trip per statement (334 on PostgreSQL), most of it the client's work. The
statements do not depend on what the database holds (the chain starts from nothing),
so they are rendered once, by Alembic's offline mode (what ``etl db upgrade --sql``
prints), and kept in ``etl/migrations/head/<dialect>.json`` with the revision they
reach. :func:`create` runs them where ``etl run`` would run the whole chain: on a
database at no revision, when the recording reaches the code's revision (PostgreSQL
in one round trip). Anything else (a database part-way up the chain, a recording of
another revision, MySQL rather than MariaDB, ``etl db upgrade``) goes through
Alembic.

``python -m etl.db.migrating`` records them again (``record_head_schema`` there);
``tests/test_head_schema.py`` fails when a recording differs from what the chain
renders now, and compares a database made from one with a database Alembic upgraded,
catalog to catalog.

May import: ``etl.db.schema``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect

from etl.db.schema import SCHEMA_REVISION

HEAD_DIR = Path(__file__).resolve().parents[1] / "migrations" / "head"
DIALECTS = ("postgresql", "mariadb", "sqlite")  # those recorded


def dialect_of(conn: Connection) -> str:
    """The recording ``conn`` would run: MariaDB's, not MySQL's, for a MySQL dialect."""
    name = conn.dialect.name
    if name == "mysql":
        return "mariadb" if getattr(conn.dialect, "is_mariadb", False) else "mysql"
    return name


def path_of(dialect: str) -> Path:
    return HEAD_DIR / f"{dialect}.json"


def recorded(dialect: str) -> list[str] | None:
    """The recorded statements for ``dialect``, if they reach the code's revision."""
    try:
        data: dict[str, Any] = json.loads(path_of(dialect).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if data.get("revision") != SCHEMA_REVISION:
        return None
    return list(data["statements"])


def create(conn: Connection) -> bool:
    """Make the head schema in ``conn``'s database, which is at no revision, from the
    recording for its dialect, in a transaction of its own (committed); False (nothing
    done) when there is no recording for it at the code's revision, or when the
    database has an ``alembic_version`` table by the time the transaction starts."""
    statements = recorded(dialect_of(conn))
    if statements is None:
        return False
    options = {"no_parameters": True}  # the text holds no parameters: % is a %
    with conn.begin() as transaction:
        # SQLite has no migration lock: a run that read "no revision" before another
        # run's creation committed finds the table here, inside its BEGIN IMMEDIATE
        # transaction (which excludes other writers), and leaves it to Alembic.
        if inspect(conn).has_table("alembic_version"):
            transaction.rollback()
            return False
        if conn.dialect.name == "sqlite":
            # As etl/migrations/env.py does for Alembic: the chain's table rebuilds
            # rename tables that views read.
            conn.exec_driver_sql("PRAGMA legacy_alter_table = ON")
        if conn.dialect.name == "postgresql":
            # One round trip: the simple query protocol takes many statements at once.
            statements = [";\n".join(statements)]
        for statement in statements:
            conn.exec_driver_sql(statement, execution_options=options)
    return True
