"""The options every command shares, defined once: ``-v``/``-q``, ``--log-format``,
``--database-url``, ``--connect-timeout`` and ``--json``.

Each is accepted on the group (``etl --database-url URL runs``) and on every command it
makes sense for (``etl runs --database-url URL``), in any position; the values land in
one :class:`Settings` on the root context, which commands read with :func:`settings`.
A value on the command line wins over the environment, which wins over the default;
of two on the command line, the later one. An option given on the group that the
command does not take is refused (exit code 2) instead of being ignored.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from etl.db import defaults
from etl.runner import logs

F = TypeVar("F", bound=Callable[..., Any])

# How much a value's origin counts: a later value of the same rank replaces an earlier one.
_RANK = {
    ParameterSource.COMMANDLINE: 3,
    ParameterSource.ENVIRONMENT: 2,
    ParameterSource.DEFAULT_MAP: 1,
    ParameterSource.DEFAULT: 0,
}


@dataclass
class Settings:
    database_url: str | None = None
    connect_timeout: float = defaults.DEFAULT_CONNECT_TIMEOUT
    as_json: bool = False
    log_format: str = "text"
    verbosity: int = 0
    rank: dict[str, int] = field(default_factory=dict)  # option name -> rank of its value
    given: set[str] = field(default_factory=set)  # options given on the command line

    def apply_logging(self) -> None:
        logs.configure(self.verbosity, self.log_format)


def settings(ctx: click.Context | None = None) -> Settings:
    """The shared settings of this invocation."""
    root = (ctx or click.get_current_context()).find_root()
    found = root.meta.get("etl.settings")
    if found is None:
        found = root.meta["etl.settings"] = Settings()
    assert isinstance(found, Settings)
    return found


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    name = param.name
    assert name is not None
    source = ctx.get_parameter_source(name)
    rank = _RANK.get(source, 0) if source is not None else 0
    current = settings(ctx)
    if rank >= current.rank.get(name, -1):
        setattr(current, name, value)
        current.rank[name] = rank
    if source is ParameterSource.COMMANDLINE:
        current.given.add(name)
    if name == "log_format":
        current.apply_logging()


def _count(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """-v/-q count wherever they are given (before or after the subcommand)."""
    current = settings(ctx)
    if value:
        current.verbosity += value if param.name == "verbose" else -value
    current.apply_logging()


# The shared options other than -v/-q: name -> click.option's declarations and settings.
_SPECS: dict[str, dict[str, Any]] = {
    "log_format": {
        "decls": ("--log-format",),
        "type": click.Choice(logs.LOG_FORMATS),
        "default": "text",
        "show_default": True,
        "is_eager": True,
        "envvar": "ETL_LOG_FORMAT",
        "help": "How to write logs on stderr: text lines, or one JSON object per line.",
    },
    "database_url": {
        "decls": ("--database-url",),
        "envvar": defaults.ENV_VAR,
        "help": f"SQLAlchemy URL [default: {defaults.DEFAULT_DATABASE_URL}]",
    },
    "connect_timeout": {
        "decls": ("--connect-timeout",),
        "envvar": "ETL_CONNECT_TIMEOUT",
        "type": click.FloatRange(min=0, min_open=True),
        "default": defaults.DEFAULT_CONNECT_TIMEOUT,
        "show_default": True,
        "help": "Seconds to wait for a PostgreSQL or MariaDB server to accept a connection.",
    },
    "as_json": {
        "decls": ("--json", "as_json"),
        "is_flag": True,
        "envvar": "ETL_JSON",
        "help": "Print the output as JSON.",
    },
}
_COUNTS = {
    "quiet": ("-q", "Less logging (repeatable)."),
    "verbose": ("-v", "More logging (repeatable): -v what a run does, -vv each file."),
}
ALL = ("quiet", "verbose", *_SPECS)
LOGGING = ("quiet", "verbose", "log_format")
DATABASE = ("database_url", "connect_timeout")
OPTION_NAMES = {name: spec["decls"][0] for name, spec in _SPECS.items()}


def _option(name: str, envvar: bool) -> Callable[[F], F]:
    """Shared option ``name``; ``envvar``: read from its ETL_* variable too (the group
    reads -v/-q's once; commands read the others' as well, with the same result)."""
    if name in _COUNTS:
        short, text = _COUNTS[name]
        return click.option(
            short,
            f"--{name}",
            name,
            count=True,
            is_eager=True,
            expose_value=False,
            callback=_count,
            envvar=f"ETL_{name.upper()}" if envvar else None,
            show_envvar=envvar,
            help=text,
        )
    spec = dict(_SPECS[name])
    decls = spec.pop("decls")
    if not envvar:
        spec.pop("envvar")
    return click.option(*decls, callback=_remember, expose_value=False, show_envvar=envvar, **spec)


def group_options(function: F) -> F:
    """Every shared option, with its environment variable, on the ``etl`` group."""
    for name in reversed(ALL):
        function = _option(name, envvar=True)(function)
    return function


def shared(*names: str) -> Callable[[F], F]:
    """The logging options and ``names`` (of ``DATABASE``, ``as_json``) on a command.

    The command refuses a shared option given on the group that it does not take.
    """
    taken = set(LOGGING) | set(names)

    def decorate(function: F) -> F:
        @functools.wraps(function)  # keeps the options declared below (__click_params__)
        def checked(*args: Any, **kwargs: Any) -> Any:
            current = settings()
            extra = sorted(current.given - taken)
            if extra:
                command = click.get_current_context().command_path
                raise click.UsageError(
                    f"{command} does not take {', '.join(OPTION_NAMES[n] for n in extra)}"
                )
            return function(*args, **kwargs)

        wrapped: Any = checked
        for name in reversed(tuple(LOGGING) + names):
            wrapped = _option(name, envvar=name in ("log_format", *DATABASE, "as_json"))(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorate


def database_url_in(argv: Sequence[str]) -> str | None:
    """The last ``--database-url`` value of ``argv`` (``--database-url URL`` or
    ``--database-url=URL``, before a ``--``); None if it names none."""
    (decl,) = _SPECS["database_url"]["decls"]
    found = None
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == decl and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith(decl + "="):
            found = arg[len(decl) + 1 :]
    return found


def warm_driver(argv: Sequence[str]) -> None:
    """Import the driver of the database ``argv`` names (else ``$ETL_DATABASE_URL``,
    else the default), as making the engine will.

    ``etl.__main__`` calls it while the cyclic collector is paused for the CLI's imports:
    the driver's (psycopg's ~25,000 objects) then join what is frozen, ~15 ms less per
    run. Any failure is left for the command to report.
    """
    with contextlib.suppress(Exception):
        from etl.db import database

        database.resolve_url(database_url_in(argv)).get_dialect().import_dbapi()
