"""Alembic environment: migrations run against the tables in ``etl.db.schema``.

The engine comes from ``etl db``/``etl run`` (config.attributes["engine"]), else from
``-x url=...``, ``sqlalchemy.url``, ``$ETL_DATABASE_URL`` or the SQLite default.
SQLite uses batch mode so ALTERs become table copies.
"""

from __future__ import annotations

import logging.config
from typing import Any

from alembic import context
from sqlalchemy import Connection

from etl.db.database import engine_for, resolve_url
from etl.db.schema import include_name, with_mysql_table_options

config = context.config
if config.config_file_name is not None and config.attributes.get("engine") is None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    return resolve_url(url).render_as_string(hide_password=False)


def _sqlite_keeps_views(connection: Connection) -> None:
    """SQLite: batch mode may rebuild a table that a view reads (copy, drop, rename).

    Since SQLite 3.26 the rename checks every view and fails while the dropped table
    is missing ("error in view ...: no such table"); the legacy rename does not, and
    the view reads the rebuilt table under the same name (Alembic issue #1207).
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA legacy_alter_table = ON")


def _configure(**kwargs: Any) -> None:
    """``context.configure`` with this project's options; ``kwargs`` are passed on."""
    context.configure(
        target_metadata=with_mysql_table_options(),
        render_as_batch=True,
        compare_type=True,
        compare_server_default=False,
        include_name=include_name,  # the search index is not modelled in etl.db.schema
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # the caller holds a connection (and a lock) already
        _sqlite_keeps_views(connection)
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    given = config.attributes.get("engine")  # else one for the URL, disposed of at the end
    with (
        engine_for(None if given else _url(), given) as engine,
        engine.connect() as connection,
    ):
        _sqlite_keeps_views(connection)
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
