"""Benchmark news-etl against dlt (and sqlite-utils) on the shared news corpus.

This is a benchmark, not a test: it asserts nothing, it measures and prints.

What it does, in one run:

1. Builds the corpora in a temporary directory: ``1x`` is the shared corpus's site
   root (``_news/*.md`` and the taxonomy in ``_data/``); ``Nx`` is a site root with the
   same ``_data/`` and its documents replicated N times, replica ``r > 0``
   written as ``r<r>-<name>`` with every ``webUrl``, ``originalUrl``,
   ``ampWebUrl`` and ``cdnAmpWebUrl`` value (front matter and ``related``
   entries alike) rewritten by a plain text replacement on the raw file that
   inserts a path segment after the host (``https://host/path`` ->
   ``https://host/r3/path``), so that links stay consistent inside a replica.
2. Runs ``etl run ROOT --database-url URL --json`` as a subprocess, each time into
   a fresh database and on a fresh hard-link copy of the corpus, on PostgreSQL,
   SQLite and MariaDB, for every size; then an unchanged re-run over the same directory and,
   after the titles of 1% of the documents are edited, a third run (by default for
   1x only). With ``--base COMMIT``, the same runs of COMMIT's news-etl (a git
   worktree with its own venv) alternate with this tree's, round by round.
3. When a Python with dlt is given (``--dlt-python``), runs dlt the same way: a
   ``@dlt.resource(write_disposition="merge", primary_key="webUrl")`` yielding
   each document's front matter parsed with PyYAML's ``CSafeLoader``, into
   PostgreSQL (and into SQLite through dlt's ``sqlalchemy`` destination when
   SQLAlchemy is installed beside dlt), full load and unchanged re-run; and
   sqlite-utils (``upsert_all`` and ``extract`` of the providers) into SQLite.
   Tools that are not installed are skipped with a message.
4. Prints one row per run (wall seconds, documents/second, peak PSS and RSS),
   news-etl's own phase timings of each run (``timings`` in its ``--json``:
   start-up, load, finish, parsing CPU, the writer lock waited for and held and its
   statements by kind), the head / base medians with ``--base``, and the ratios:
   comparison tool / news-etl full load, re-run and 1% edit / full load, Nx / 1x
   time and peak RSS, head / base.

Wall time is measured around the whole subprocess (interpreter start-up and
imports included). Peak RSS is sampled every ``--poll-interval`` seconds from
``/proc/<pid>/status`` over the subprocess's whole process tree (news-etl parses
in forked worker processes): the table shows the peak of the tree's summed
VmRSS (which counts pages shared between processes once per process) and the
peak of the largest single process, and the peak of the summed PSS (shared pages
divided among their sharers, from ``smaps_rollup``, every ``--pss-interval``);
``--json`` adds the kernel's ``ru_maxrss`` from ``os.wait4``.
The database server's own memory (PostgreSQL backends) is not included.

Usage (from the repository root)::

    .venv/bin/python bench/run.py                                # etl only
    python3 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install 'dlt[postgres]' sqlalchemy sqlite-utils pyyaml
    .venv/bin/python bench/run.py --dlt-python /tmp/benchvenv/bin/python
    .venv/bin/python bench/run.py --only etl --sizes 1 --json
    .venv/bin/python bench/run.py --only etl --sizes 1 --base main   # this tree vs main

The same file is also the comparison tools' worker (``run.py worker ...``), run
by ``--dlt-python``; only the standard library is imported at module level, here and
in the modules beside it that the worker imports (all but ``search_index_cost.py``).

This file is the entry point; the rest is in the modules beside it, which it and they
import by plain name (``python bench/run.py`` puts ``bench/`` on ``sys.path``):

* ``corpus.py``: the corpora (extracted, replicated, hard-link copies, titles edited);
* ``process_tree.py``: a process tree's memory and CPU, sampled from ``/proc``;
* ``measuring.py``: one measured run (``measure``, ``Measurement``), ``settle``;
* ``databases.py``: the fresh ``bench_*`` databases and SQLite files;
* ``workers.py``: the comparison tools' workers (dlt, sqlite-utils) and the probe of
  ``--dlt-python``;
* ``installs.py``: news-etl's bytecode, the ``--base`` commit's worktree and venv;
* ``harness.py``: the benchmark's runs, in order (``Bench``);
* ``report.py``: the table, the ratios and the JSON report;
* ``options.py``: the command line's options.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import Bench, Plan
from options import parse_args
from workers import worker_main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    args = parse_args(argv)
    if not args.corpus.exists():
        raise SystemExit(f"corpus not found: {args.corpus}")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="news-etl-bench-", dir=args.workdir))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="news-etl-bench-"))
    plan = Plan(
        args.sizes,
        [s for s in args.rerun_sizes if s in args.sizes],
        args.only,
        args.backends,
        args.compare_sizes,
    )
    bench = Bench(args, workdir)
    print(f"# work directory {workdir}; load average {os.getloadavg()}", file=sys.stderr)
    try:
        bench.run(plan)
    finally:
        bench.close()
        if args.keep:
            print(f"# kept {workdir}", file=sys.stderr)
        elif any(result.error for result in bench.results):
            for child in workdir.iterdir():  # keep the logs of the failed runs
                if child.is_dir() and child.name != "logs":
                    shutil.rmtree(child, ignore_errors=True)
                elif child.is_file():
                    child.unlink()
            print(f"# a run failed: logs kept in {workdir / 'logs'}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report = json.dumps(bench.report(), indent=2, default=str)
    if args.json_out:
        args.json_out.write_text(report + "\n")
    if args.json:
        print(report)
    else:
        print(bench.table())
        for note in bench.notes:
            print(f"note: {note}")
        print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    failed = any(result.error for result in bench.results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
