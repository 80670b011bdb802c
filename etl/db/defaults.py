"""The database layer's defaults, in a module that imports nothing: the ``etl`` command
declares its options with them before it imports SQLAlchemy (``etl.cli.options``)."""

DEFAULT_DATABASE_URL = "sqlite:///etl.sqlite3"
ENV_VAR = "ETL_DATABASE_URL"
# Seconds to wait for a PostgreSQL or MariaDB server to accept a connection (and finish
# its handshake): a host that drops packets fails the job instead of hanging it.
DEFAULT_CONNECT_TIMEOUT = 10.0
