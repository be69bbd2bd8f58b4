"""`make run` installs Laurel without the test extra: everything engine/ and admin/ import
must come from the main dependencies of pyproject.toml."""

from __future__ import annotations

import ast
import re
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
