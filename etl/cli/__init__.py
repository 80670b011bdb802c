"""The ``etl`` command: a thin click layer over the API (``etl.runner.pipeline``,
``etl.ledger.rejections``, ``etl.ledger.run_history``, ``etl.query``, ``etl.db.database``):
options, environment variables, output and exit codes.

Modules: ``options`` (the options every command shares, defined once), ``common``
(exit codes, errors, engines for commands that only read), ``group`` (``etl``, and
which module defines each command: imported when the command is asked for),
``run_command``, ``read_commands`` (runs, rejects, search, schema),
``changes_command``, ``db_commands``. Importing this package imports click and the
options, not SQLAlchemy: ``etl run`` parses its command line first (``etl.__main__``).

May import: ``etl.runner``, ``etl.query``, ``etl.load``, ``etl.ledger``, ``etl.transform``,
``etl.extract``, ``etl.db``, ``etl.records``.

Exit codes (documented in the README):
0 success; 1 finished, but some documents were rejected; 2 usage or
configuration error (retrying does not help); 3 what may heal by itself (database
unreachable, connection lost, a worker killed); 4 ``etl changes``: the cursor is older
than the change log kept (resynchronise); 130 / 143 stopped by SIGINT / SIGTERM
(128 + the signal number).
"""

from __future__ import annotations

from etl.cli.common import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_RESYNC,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
)
from etl.cli.group import load_commands, main

__all__ = [
    "EXIT_FATAL",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_RESYNC",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "load_commands",
    "main",
]
