"""Stopping a run on SIGTERM or SIGINT, as schedulers and shells expect.

Owns the signal handlers a run installs for its duration (:func:`stop_on_signals`):
the first SIGTERM or SIGINT ends the worker processes (``etl.runner.workers.stop_workers``)
and raises :class:`~etl.records.RunInterrupted` in the main thread, so the open batch
rolls back and the run records itself as ``interrupted``; a second signal ends the
process at once, exit code 128 + the signal. The previous handlers come back when
the run ends.

Python drops an exception raised where it cannot propagate (a ``__del__`` method, a
weakref callback), and a signal's handler may run there: the workers are stopped, and
the run goes on without knowing why. :func:`stopped_by` tells the run which signal
stopped it, so that what fails next is recorded as that interruption, and
:func:`raise_if_stopped` is where a run that has no workers to fail stops instead.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from etl.records import RunInterrupted
from etl.runner.workers import stop_workers

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_received: list[int] = []  # the first signal of the run in progress, once it came


def stopped_by() -> int | None:
    """The signal that stopped the run in progress, if one did (see the module's doc)."""
    return _received[0] if _received else None


def raise_if_stopped() -> None:
    """Raise :class:`RunInterrupted` if a signal stopped the run in progress."""
    if _received:
        raise RunInterrupted(_received[0])


@contextmanager
def stop_on_signals(enabled: bool = True) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into ``RunInterrupted`` while the block runs.

    A no-op outside the main thread (Python delivers signals there only) or when
    not ``enabled`` (a caller that handles signals itself).
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()
    outer = list(_received)  # a block inside another's (not the pipeline's own use)
    _received.clear()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != owner:
            # A worker forked before its initializer reset the handlers: SIGINT is the
            # main process's to handle; SIGTERM ends the worker, as by default.
            if signum == signal.SIGTERM:
                os._exit(128 + signum)
            return
        if _received:
            # Second signal: no clean-up, now. The run row stays `running`; the next
            # run sees its process is gone and records it as interrupted.
            stop_workers(signal.SIGKILL)
            name = signal.Signals(signum).name
            os.write(2, f"etl: second signal ({name}): exiting at once\n".encode())
            os._exit(128 + signum)
        _received.append(signum)
        stop_workers(signal.SIGTERM)
        raise RunInterrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
        _received[:] = outer
