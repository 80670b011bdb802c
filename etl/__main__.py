"""``python -m etl`` and the ``etl`` command."""

import gc
import sys


def main() -> None:
    argv = sys.argv[1:]
    running = "run" in argv
    if running:
        # First, before the database layer is imported (etl.runner.parse_ahead); the
        # group stops them if the command is not `etl run` after all.
        from etl.runner import parse_ahead

        parse_ahead.start()
    # The CLI's imports (SQLAlchemy, the pipeline) create ~77k objects that live as
    # long as the process. The cyclic collector is paused while they load, then told
    # to leave them alone (frozen): ~90 ms less per start, a fifth of an unchanged
    # re-run.
    gc.disable()
    try:
        from etl import cli
        from etl.cli.options import warm_driver

        if running:
            # Click and the options only so far: the helper finds and stamps the run's
            # files while SQLAlchemy and the pipeline are imported (~0.3 s), instead
            # of after (an unchanged re-run waited ~40 ms for it on SQLite).
            from etl.cli.run_command import survey_ahead

            survey_ahead(argv)
            # Only what `etl run` runs: the other commands' modules (the read side, the
            # change feed) are ~4 ms it never uses. The group imports a command's
            # module when asked for it, should `run` in argv be something else.
            from etl.runner import pipeline  # noqa: F401
        else:
            cli.load_commands()
        warm_driver(argv)  # the driver's objects are frozen with the rest
    except KeyboardInterrupt:  # Ctrl-C while starting: no traceback
        raise SystemExit(130) from None
    finally:
        gc.freeze()
        gc.enable()
    try:
        cli.main()
    finally:
        # After atexit (logging flushes there), the interpreter's final collections
        # walk every object that is not frozen: psycopg and the dialect, imported
        # during the run, and what the run left; ~80 ms of an unchanged re-run on
        # PostgreSQL. The process is ending: the OS takes its memory back anyway.
        gc.freeze()


if __name__ == "__main__":
    main()
