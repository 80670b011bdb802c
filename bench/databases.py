"""The databases the tools load into: fresh ``bench_*`` PostgreSQL and MariaDB databases
and SQLite files, dropped at the end, and whether each server answers."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
DB_PREFIX = "bench_"
BACKENDS = ("postgresql", "sqlite", "mariadb")
DEFAULT_MARIADB = "mysql+pymysql://root@127.0.0.1:3306"


class Databases:
    """Creates fresh ``bench_*`` PostgreSQL and MariaDB databases and SQLite files."""

    def __init__(self, pg_base: str, sqlite_dir: Path, mariadb_base: str = DEFAULT_MARIADB):
        self.pg_base = pg_base.rstrip("/")
        self.mariadb_base = mariadb_base.rstrip("/")
        self.sqlite_dir = sqlite_dir
        self.created: list[str] = []
        self.created_mariadb: list[str] = []

    def mariadb_admin(self, statement: str) -> None:
        # news-etl's MariaDB driver, so in the venv that runs the bench.
        import pymysql  # type: ignore[import-untyped]

        rest = self.mariadb_base.split("://", 1)[1]
        credentials, _, host = rest.rpartition("@")
        user, _, password = credentials.partition(":")
        hostname, _, port = host.partition(":")
        with (
            pymysql.connect(
                host=hostname, port=int(port or 3306), user=user or "root", password=password
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)

    def admin(self, statement: str) -> None:
        try:
            import psycopg
        except ImportError:
            subprocess.run(
                ["psql", f"{self.pg_base}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", statement],
                check=True,
                capture_output=True,
            )
            return
        with psycopg.connect(f"{self.pg_base}/postgres", autocommit=True) as connection:
            connection.execute(statement)

    def fresh(self, backend: str, name: str) -> str:
        """A URL to an empty database called ``bench_<name>`` (dropped first if present)."""
        name = DB_PREFIX + re.sub(r"\W", "_", name)
        if backend == "postgresql":
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.admin(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            return f"{self.pg_base}/{name}"
        if backend == "mariadb":
            self.mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")
            self.mariadb_admin(f"CREATE DATABASE `{name}`")
            self.created_mariadb.append(name)
            return f"{self.mariadb_base}/{name}"
        path = self.sqlite_dir / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"

    def fresh_beside(self, names: Sequence[str]) -> None:
        """Drop the MariaDB databases ``names`` now and at the end: those a tool makes
        beside the one it is given (dlt's datasets), so that each full load is one."""
        for name in names:
            self.mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")
            if name not in self.created_mariadb:
                self.created_mariadb.append(name)

    def drop_all(self) -> None:
        for name in self.created:
            try:
                self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as error:  # a benchmark's clean-up must not hide its results
                print(f"could not drop {name}: {error}", file=sys.stderr)
        for name in self.created_mariadb:
            try:
                self.mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")
            except Exception as error:
                print(f"could not drop {name}: {error}", file=sys.stderr)


def mariadb_available(base: str) -> str | None:
    """None when MariaDB answers, else why not."""
    try:
        Databases(DEFAULT_PG, Path("."), base).mariadb_admin("SELECT 1")
    except Exception as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None


def pg_available(pg_base: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        Databases(pg_base, Path(".")).admin("SELECT 1")
    except Exception as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None
