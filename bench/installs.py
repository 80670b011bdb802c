"""The news-etl installs that are measured: an install's bytecode compiled as a regular
install would, and a base commit's git worktree with a venv of its own (``--base``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

COMPILE = """
import compileall, os, sys, etl
sys.exit(0 if compileall.compile_dir(os.path.dirname(etl.__file__), quiet=1) else 1)
"""


def compile_etl(etl: Path) -> str:
    """Byte-compile the ``etl`` package that ``etl`` runs, as a regular install would.

    pip writes the bytecode of what it installs (dlt, sqlite-utils and all of
    news-etl's dependencies), but an editable install leaves the project's own
    modules to be compiled on first import. Where PYTHONDONTWRITEBYTECODE is set
    (this workplace's shells, many container images), that is every start: ~50 ms
    of compiling on a re-run of ~0.6 s, which no installed tool pays. Returns a note.
    """
    try:
        with etl.open("rb") as handle:
            shebang = handle.readline()
    except OSError as error:
        return f"news-etl's bytecode not compiled: {error}"
    if not shebang.startswith(b"#!"):
        return f"news-etl's bytecode not compiled: {etl} has no #! line"
    python = shebang[2:].decode().strip()
    started = time.perf_counter()
    try:
        # -I: no current directory on sys.path, whose etl/ (the working tree's, when a
        # base commit's install is compiled from the checkout) would be compiled instead.
        subprocess.run([python, "-I", "-c", COMPILE], capture_output=True, timeout=300, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        return f"news-etl's bytecode not compiled: {error}"
    return f"compiled news-etl's bytecode with {python} ({time.perf_counter() - started:.1f} s)"


# --- a base commit to compare with (--base) -----------------------------------------


def prepare_base(commit: str, target: Path) -> tuple[Path, str, float]:
    """A git worktree of ``commit`` at ``target`` with a venv of its own (``pip install
    -e``, so its dependencies are the ones it declares): its ``etl``, the commit's short
    hash, the seconds it took."""
    started = time.perf_counter()

    def call(*command: str) -> str:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"--base {commit}: {' '.join(command)} failed:\n{done.stderr}")
        return done.stdout.strip()

    short = call("git", "-C", str(REPO), "rev-parse", "--short", f"{commit}^{{commit}}")
    call("git", "-C", str(REPO), "worktree", "add", "--detach", str(target), short)
    call(sys.executable, "-m", "venv", str(target / ".venv"))
    call(str(target / ".venv" / "bin" / "pip"), "install", "-q", "-e", str(target))
    return target / ".venv" / "bin" / "etl", short, time.perf_counter() - started


def remove_base(target: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(target)],
        capture_output=True,
        check=False,
    )
