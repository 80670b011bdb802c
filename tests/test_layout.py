"""The tree is the architecture: imports go down the stages, never back, and never in a circle.

Each stage package of ``etl`` says in its docstring which stages it may import (a line
``May import: ``etl.x``, ...``); this test reads those lines and every ``import`` of
every module (at the top or inside a function) with ``ast``, so the docstrings and the
imports cannot drift apart. And no module of the package, the tests or the bench is
over 500 lines, no function over 80.
"""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "etl"
# The package itself (the public API, ``python -m etl``) sits above every stage;
# ``records`` (the contract) below them all.
ROOT_MODULES = {"etl", "etl.__main__"}
CONTRACT = "etl.records"
MAY_IMPORT = re.compile(r"^May import:(.*?)(?:\n\s*\n|\Z)", re.MULTILINE | re.DOTALL)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.relative_to(PACKAGE).parts
    }


def imported(path: Path, known: set[str]) -> set[str]:
    """The modules of ``etl`` that ``path`` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from etl.db import schema` imports the module etl.db.schema.
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def stage(module: str) -> str:
    """``etl.load.tally`` -> ``etl.load``; a top-level module is its own stage."""
    return ".".join(module.split(".")[:2])


def allowed(packages: dict[str, Path]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {CONTRACT: set()}
    for name, path in packages.items():
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        match = MAY_IMPORT.search(docstring)
        assert match, f"{path}: the docstring has no 'May import:' line"
        result[name] = set(re.findall(r"``(etl(?:\.\w+)?)``", match.group(1)))
    return result


def stage_packages() -> dict[str, Path]:
    return {
        name: path
        for name, path in modules().items()
        if path.name == "__init__.py" and name.count(".") == 1
    }


def test_the_top_of_the_package_holds_few_modules() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top


@pytest.mark.parametrize("package", sorted(stage_packages()))
def test_a_stage_may_import_only_stages_below_it(package: str) -> None:
    everything = modules()
    rules = allowed(stage_packages())
    assert rules[package] <= set(rules), f"{package} names an unknown stage"
    offending = {
        f"{module} imports {target}"
        for module, path in everything.items()
        if stage(module) == package
        for target in imported(path, set(everything))
        if stage(target) not in {package, *rules[package]}
        # A stage package's __init__ takes etl.import_submodule from the root package.
        and not (target == "etl" and path.name == "__init__.py")
    }
    assert not offending, sorted(offending)


def test_the_contract_imports_no_stage() -> None:
    everything = modules()
    assert not imported(everything[CONTRACT], set(everything))


def test_every_module_belongs_to_a_stage() -> None:
    stages = {*stage_packages(), *ROOT_MODULES, CONTRACT}
    assert {stage(module) for module in modules()} <= stages


def test_the_stages_form_no_cycle() -> None:
    rules = allowed(stage_packages())
    graphlib.TopologicalSorter(rules).prepare()  # raises CycleError


def test_no_module_imports_itself_back() -> None:
    everything = modules()
    known = set(everything)
    graph = {
        module: imported(path, known) - {module} - _parents(module)
        for module, path in everything.items()
    }
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the circle


def _parents(module: str) -> set[str]:
    # Importing etl.db.schema imports the package etl.db first; that is not a cycle.
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


REPO = PACKAGE.parent
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _project_modules() -> list[Path]:
    """Every module of the package, the tests and the bench (the migrations' generated
    revisions too: they are code someone reads)."""
    return sorted(
        path for folder in ("etl", "tests", "bench") for path in (REPO / folder).rglob("*.py")
    )


@pytest.mark.parametrize("path", _project_modules(), ids=lambda path: str(path.relative_to(REPO)))
def test_no_module_is_over_500_lines_and_no_function_over_80(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long
