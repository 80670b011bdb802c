"""Parse ahead: processes that get the parse stage ready while the run starts.

A scheduled run that finds a few changed files spends most of its time starting:
importing SQLAlchemy and the driver, connecting, planning, then importing the parse
stage (pydantic and the models, about 0.1 s) and parsing. ``etl run`` forks a helper
first thing (:func:`start`, from ``etl.__main__``, before the database layer is
imported). On the other core, it imports the parse stage, then forks one more helper per
further core (at most ``MAX_HELPERS`` in all), ready too. A run that parses without its
worker pool (fewer files than the pool is worth, ``etl.runner.pipeline.INLINE_BELOW``)
sends them the files' tasks, a share each, and gets the outcomes back (:func:`parse`),
then writes them as it would have; any other run stops them (:func:`stop`). Before
that, while the main process imports SQLAlchemy, connects, checks the schema and reads
the ledger, the first helper finds the run's files on disk and stamps them
(:func:`survey`, asked by ``etl run`` as soon as its command line is parsed and again
by the run, answered by :func:`surveyed`): what an unchanged re-run would otherwise
do on its critical path.

They are only ever a shortcut. They never touch the database; if they are not there
(not started: the Python API, a platform without ``fork``), died or failed,
:func:`parse` and :func:`surveyed` return None and the main process parses the files
(walks the tree) itself. They end when
the main process closes their pipes, ends or dies (``PR_SET_PDEATHSIG``), and ignore
Ctrl-C, which is the main process's to handle. What they log (a file that broke the
parser) is sent back with the outcomes and logged by the main process, through its
handlers.

Imports nothing at the top but the standard library: it is imported before anything
else. May import: ``etl.runner.parsing``, ``etl.transform``, ``etl.extract`` (in the
helpers), ``etl.records`` (types).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from etl.extract.sources import Surveyed
    from etl.records import Outcome
    from etl.runner.parsing import Task


class _Pipes(NamedTuple):
    """One helper's two pipes: the main process's ends, then the helper's."""

    tasks_write: int
    outcomes_read: int
    tasks_read: int
    outcomes_write: int


class Parsed(NamedTuple):
    """What the helpers made of a run's tasks."""

    outcomes: list[Outcome]  # in the tasks' order
    seconds: float  # CPU seconds, summed over the helpers
    processes: int  # how many helpers had a share


class _Helper(NamedTuple):
    to_helper: IO[bytes]
    from_helper: IO[bytes]


class _Survey(NamedTuple):
    """A request for ``etl.extract.sources.survey`` of a run's PATHs."""

    paths: list[str]
    source: str | None
    shard: tuple[int, int] | None


_helpers: list[_Helper] = []
_pid: int | None = None  # the first helper's; the others are its children
_asked: _Survey | None = None  # the survey the first helper owes an answer to

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


# A run parses ahead fewer than 64 files (etl.runner.pipeline.INLINE_BELOW): more
# helpers than this would each get a file or two, for a fork each.
MAX_HELPERS = 8


def start(processes: int | None = None) -> None:
    """Fork the helpers (``processes``, default one per core this process may use, at
    most ``MAX_HELPERS``), unless they run already, the platform cannot fork, one core
    is all there is, or the system refuses the pipes or the fork."""
    global _pid
    count = min(processes or _usable_cores(), MAX_HELPERS)
    if _pid is not None or not hasattr(os, "fork") or count < 2:
        return
    made: list[int] = []
    try:
        for _ in range(count):
            made.extend(_pipe_pair())
        pipes = [_Pipes(*made[index : index + 4]) for index in range(0, len(made), 4)]
        main_pid = os.getpid()
        pid = os.fork()
    except OSError:  # out of file descriptors or processes: no shortcut, that is all
        for fd in made:
            os.close(fd)
        return
    if pid == 0:
        _first_helper(pipes, main_pid)  # never returns
    for pipe in pipes:
        os.close(pipe.tasks_read)
        os.close(pipe.outcomes_write)
        helper = _Helper(os.fdopen(pipe.tasks_write, "wb"), os.fdopen(pipe.outcomes_read, "rb"))
        _helpers.append(helper)
    _pid = pid


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may run on (Linux)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def survey(
    paths: Sequence[str | os.PathLike[str]], source: str | None, shard: tuple[int, int] | None
) -> None:
    """Have the first helper find the files of a run over ``paths`` on disk and stamp
    them (``etl.extract.sources.survey``) while this process goes on; :func:`surveyed`
    gets the answer. Asked again for the same, it does nothing; for another survey, that
    one replaces the survey asked before (whose answer is dropped)."""
    global _asked
    request = _Survey([str(Path(path)) for path in paths], source, shard)
    if not _helpers or request == _asked:
        return
    if _asked is not None:
        surveyed()
        if not _helpers:
            return
    try:
        pickle.dump(request, _helpers[0].to_helper, pickle.HIGHEST_PROTOCOL)
        _helpers[0].to_helper.flush()
    except OSError:  # it is gone: the run walks the tree itself
        stop()
        return
    _asked = request


def surveyed() -> list[Surveyed] | None:
    """The first helper's answer to :func:`survey`; None if it was not asked, found no
    sources, or failed (the helpers are then stopped)."""
    global _asked
    if _asked is None:
        return None
    _asked = None
    try:
        found, _, records = pickle.load(_helpers[0].from_helper)
    except Exception:  # it died or broke, its answer cut short
        stop()
        return None
    _log(records)
    return found  # type: ignore[no-any-return]


def parse(tasks: list[Task], processes: int) -> Parsed | None:
    """``tasks`` parsed by at most ``processes`` helpers, a share each; None if there
    are none or one failed (all are then stopped). What the helpers logged is logged
    here, once all have answered: a run that parses the files itself after all logs
    it again."""
    surveyed()  # an answer not collected (the run failed to plan) would come first
    if not _helpers or not tasks:
        return None
    helpers = _helpers[: max(1, processes)]
    size = -(-len(tasks) // len(helpers))
    shares = [tasks[start : start + size] for start in range(0, len(tasks), size)]
    answers: list[tuple[list[Outcome], float, list[logging.LogRecord]]] = []
    try:
        for helper, share in zip(helpers, shares, strict=False):
            pickle.dump(share, helper.to_helper, pickle.HIGHEST_PROTOCOL)
            helper.to_helper.flush()
        for helper, _ in zip(helpers, shares, strict=False):
            answers.append(pickle.load(helper.from_helper))
    except Exception:  # a helper died or broke, its answer cut short: parse here
        stop()
        return None
    for _, _, records in answers:
        _log(records)
    outcomes = [outcome for done, _, _ in answers for outcome in done]
    return Parsed(outcomes, sum(took for _, took, _ in answers), len(shares))


def _log(records: list[logging.LogRecord]) -> None:
    for record in records:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def stop() -> None:
    """End the helpers (they hold nothing worth waiting for) and reap the first; the
    others end with it (``PR_SET_PDEATHSIG``)."""
    global _pid, _asked
    pid, _pid = _pid, None
    _asked = None
    helpers = list(_helpers)
    _helpers.clear()
    for helper in helpers:
        for pipe in helper:
            with contextlib.suppress(OSError):
                pipe.close()
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _pipe_pair() -> tuple[int, int, int, int]:
    tasks_read, tasks_write = os.pipe()
    outcomes_read, outcomes_write = os.pipe()
    return tasks_write, outcomes_read, tasks_read, outcomes_write


def _first_helper(pipes: list[_Pipes], main_pid: int) -> None:
    """In the first helper: get ready, fork the others (ready too), serve the first share."""
    try:
        for pipe in pipes:
            os.close(pipe.tasks_write)
            os.close(pipe.outcomes_read)
        records = _get_ready(main_pid)
        first_pid = os.getpid()
        for index, pipe in enumerate(pipes[1:], start=1):
            if os.fork() == 0:
                for other in pipes[:index] + pipes[index + 1 :]:
                    os.close(other.tasks_read)
                    os.close(other.outcomes_write)
                _die_with(first_pid)
                _serve(pipe, records)
        for pipe in pipes[1:]:
            os.close(pipe.tasks_read)
            os.close(pipe.outcomes_write)
        _serve(pipes[0], records)
    finally:
        os._exit(1)  # only when _serve did not exit (it raised)


def _die_with(parent: int) -> None:
    """Be killed when ``parent`` dies (Linux); leave now if it died already."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl: nobody to work for
        os._exit(0)


def _get_ready(main_pid: int) -> list[logging.LogRecord]:
    """Signals as a helper's, the parse stage imported; returns where what it logs is
    kept."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(main_pid)
    from etl.runner import parsing
    from etl.transform import transform  # noqa: F401  (what process_file imports late)

    # What process_file logs goes back to the main process, which has the handlers.
    handler = _Records()
    parsing.log.addHandler(handler)
    parsing.log.propagate = False
    parsing.log.setLevel(logging.DEBUG)
    return handler.kept


class _Records(logging.Handler):
    """Keeps records for the main process, formatted as far as they need the helper."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.kept.append(record)


def _serve(pipe: _Pipes, records: list[logging.LogRecord]) -> None:
    """Answer each list of tasks with its outcomes (a survey with what it found), CPU
    seconds and the log ``records`` they made, until the pipe closes. Leaves through
    ``os._exit``: the main process's exit hooks are not a helper's."""
    from etl.extract.sources import survey as survey_paths
    from etl.runner.parsing import prefetch_files, process_file

    tasks_in = os.fdopen(pipe.tasks_read, "rb")
    outcomes_out = os.fdopen(pipe.outcomes_write, "wb")
    while True:
        try:
            request = pickle.load(tasks_in)
        except EOFError:
            os._exit(0)
        started = time.process_time()
        if isinstance(request, _Survey):
            done: Any = survey_paths(request.paths, request.source, request.shard)
        else:
            prefetch_files(request)
            done = [process_file(task) for task in request]
        answer: tuple[Any, ...] = (done, time.process_time() - started, list(records))
        records.clear()
        # Pickled whole, then written: pickle.dump would write a frame at a time, and
        # pickle the rest only as the main process empties the pipe (64 KiB).
        outcomes_out.write(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
        outcomes_out.flush()
