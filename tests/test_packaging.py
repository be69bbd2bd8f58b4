"""How Laurel is packaged and tested: `make run` installs Laurel without the test extra, so
everything engine/ and admin/ import must come from the main dependencies of pyproject.toml;
`make test` runs the tests that use no database once."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
OWN = {"engine", "admin", "api", "migrations", "tests", "bench"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: set[str]) -> set[str]:
    """The declared distributions and everything they require in turn."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in reqs:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_name(req.name))
    return seen


def test_every_import_of_the_application_is_a_main_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _closure({_name(d) for d in project["dependencies"]})
    dists = packages_distributions()
    missing = {}
    for folder in ("engine", "admin", "api", "migrations"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in OWN or top in sys.stdlib_module_names:
                        continue
                    owners = {_name(d) for d in dists.get(top, [])}
                    if not owners & installed:
                        missing[top] = str(path.relative_to(ROOT))
    assert not missing, f"imported but not a main dependency: {missing}"


def test_the_back_office_modules_import_each_other_without_a_circle():
    """admin/: no module imports one that imports it back, at the top or in a function
    (shared helpers live in admin/base.py, the wiring in admin/setup.py)."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "admin").glob("*.py"):
        name = f"admin.{path.stem}"
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "admin":
                    graph[name] |= {f"admin.{a.name}" for a in node.names}
                elif node.module.startswith("admin."):
                    graph[name].add(node.module)
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name.startswith("admin.")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, set()))
    assert circles == [], f"modules in an import circle: {circles}"


def _collected(*options: str) -> set[str]:
    """The test ids pytest collects from two files with these options (no plugins but
    pytest-xdist's and pytest-bdd's, which pyproject.toml's options name: loading every
    installed one took three seconds of the four)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "xdist.plugin", "-p", "pytest_bdd.plugin", *options,
         "tests/test_period_codes.py", "tests/test_people.py", "tests/test_policy_specs.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    return {line.split("[")[0] for line in done.stdout.splitlines() if "::" in line}


def test_the_postgresql_pass_leaves_out_only_the_tests_that_use_no_database():
    """`make test` runs the suite on SQLite, then with --database-tests-only on PostgreSQL:
    a test that asks for no database (directly or through session, app or client) runs
    once, every other twice."""
    every = _collected()
    database_only = _collected("--database-tests-only")
    no_database = {"tests/test_period_codes.py::test_period_years_run_from_1900_to_9999",
                   "tests/test_period_codes.py::test_a_period_code_is_ascii_with_a_sane_year",
                   "tests/test_people.py::"
                   "test_a_measured_ratio_is_cut_never_rounded_up_to_the_tier_it_missed"}
    assert no_database <= every
    assert not no_database & database_only
    assert "tests/test_period_codes.py::test_laurel_run_refuses_a_period_code_in_one_line" \
        in database_only  # asks for db_url itself
    assert database_only == every - no_database  # session and client ask for it too
    # a Gherkin scenario's steps ask for the database as they run: kept
    scenarios = {t for t in every if t.startswith("tests/test_policy_specs.py::")}
    assert scenarios and scenarios <= database_only
