"""A rule version's scenarios as data: read from Gherkin, edited, compared, written back.

Each rule version carries its scenarios as the text of one feature file (the same Gherkin
and step vocabulary as ``features/``, engine.specs). This module reads that text into a
``Feature`` (background, scenarios, steps with their tables, examples) that the back
office shows and edits, writes a ``Feature`` back as text in the house style, and maps an
expanded scenario (a Gherkin "pickle") to the scenario, step and example row it came from,
so that a new figure found by the gate can be written into the right cell.

Text read from a file is kept as it is (its spacing and comments); a feature changed in
the back office is written again whole, tables padded to their widest cell.
"""

from __future__ import annotations

import copy
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.errors import LaurelError
from engine.messages import msg

KEYWORDS = ("Given", "When", "Then", "And", "But")
PLACEHOLDER = re.compile(r"<([^<>]+)>")


class SpecSyntaxError(LaurelError):
    """Scenarios that do not parse as Gherkin, or use words no step has; names the line."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(message)


@dataclass
class Step:
    keyword: str  # Given, When, Then, And or But, as written
    text: str
    table: list[list[str]] | None = None
    comments: list[str] = field(default_factory=list)  # the lines above it, "# ..."


@dataclass
class Examples:
    table: list[list[str]]  # the header, then one row per example
    name: str = ""

    @property
    def header(self) -> list[str]:
        return self.table[0] if self.table else []

    @property
    def rows(self) -> list[list[str]]:
        return self.table[1:]


@dataclass
class Scenario:
    name: str
    steps: list[Step] = field(default_factory=list)
    examples: list[Examples] = field(default_factory=list)
    description: str = ""
    tags: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def outline(self) -> bool:
        return bool(self.examples)


@dataclass
class Feature:
    name: str = ""
    description: str = ""
    background: list[Step] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Where:
    """Where an expanded scenario comes from: its scenario and, for an outline, its row."""

    scenario: int
    examples: int | None = None
    row: int | None = None  # index into Examples.rows


# --- reading ------------------------------------------------------------------------------------


def _document(text: str, source: str) -> dict[str, Any]:
    from gherkin.parser import Parser

    if not re.search(r"^\s*Feature:", text, flags=re.M):
        text = f"Feature: {source}\n" + text
    try:
        document = Parser().parse(text)
    except Exception as exc:  # gherkin's CompositeParserException and its kin
        found = re.search(r"\((\d+):\d+\)", str(exc))
        raise SpecSyntaxError(msg("%(source)s: %(reason)s", source=source, reason=str(exc)),
                              int(found[1]) if found else None) from None
    document["uri"] = source
    return document


def _table(node: dict[str, Any] | None) -> list[list[str]] | None:
    if not node:
        return None
    return [[c["value"] for c in row["cells"]] for row in node["rows"]]


def _dedent(description: str) -> str:
    return textwrap.dedent(description or "").strip("\n")


def read(text: str, source: str = "scenarios") -> Feature:
    """Read a feature text into a Feature; raise SpecSyntaxError naming the line."""
    feature, _ = _read(text, source)
    return feature


def _read(text: str, source: str) -> tuple[Feature, dict[str, Any]]:
    """The Feature, and the Gherkin AST ids of its steps and example rows."""
    out = Feature()
    ids: dict[str, Any] = {}
    if not text.strip():
        return out, ids
    document = _document(text, source)
    node = document.get("feature") or {}
    out.name, out.description = node.get("name", ""), _dedent(node.get("description", ""))
    out.tags = [t["name"] for t in node.get("tags", [])]
    # Comments go with the step or scenario on the next line.
    comments = sorted((c["location"]["line"], c["text"].strip())
                      for c in document.get("comments", []))
    holders: list[tuple[int, list[str]]] = []

    def steps_of(raw: list[dict[str, Any]], where: Any) -> list[Step]:
        steps = []
        for i, s in enumerate(raw):
            step = Step(s["keyword"].strip(), s["text"], _table(s.get("dataTable")))
            holders.append((s["location"]["line"], step.comments))
            ids[s["id"]] = (where, i)
            steps.append(step)
        return steps

    for child in node.get("children", []):
        if "background" in child:
            out.background += steps_of(child["background"]["steps"], "background")
        elif "scenario" in child:
            raw = child["scenario"]
            index = len(out.scenarios)
            scenario = Scenario(raw["name"], description=_dedent(raw.get("description", "")),
                                tags=[t["name"] for t in raw.get("tags", [])])
            holders.append((raw["location"]["line"], scenario.comments))
            scenario.steps = steps_of(raw["steps"], index)
            for e, ex in enumerate(raw.get("examples", [])):
                header = ex.get("tableHeader")
                body = ex.get("tableBody") or []
                table = ([[c["value"] for c in header["cells"]]] if header else []) + \
                    [[c["value"] for c in row["cells"]] for row in body]
                scenario.examples.append(Examples(table, ex.get("name", "")))
                for r, row in enumerate(body):
                    ids[row["id"]] = Where(index, e, r)
            ids[raw["id"]] = Where(index)
            out.scenarios.append(scenario)
        else:
            raise SpecSyntaxError(msg("%(source)s: a Rule: block is not supported; write "
                                      "the scenarios directly under the feature",
                                      source=source))
    holders.sort(key=lambda h: h[0])
    for line, comment in comments:
        target = next((h for h in holders if h[0] > line), None)
        if target is not None:
            target[1].append(comment)
    return out, ids


# --- writing ------------------------------------------------------------------------------------


def _cell(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n")


def _table_lines(table: list[list[str]], indent: str) -> list[str]:
    cells = [[_cell(c) for c in row] for row in table]
    widths = [max(len(row[i]) for row in cells if i < len(row))
              for i in range(max(len(r) for r in cells))]
    return [indent + "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |"
            for row in cells]


def _step_lines(step: Step, indent: str) -> list[str]:
    lines = [indent + c for c in step.comments]
    lines.append(f"{indent}{step.keyword} {step.text}")
    if step.table:
        lines += _table_lines(step.table, indent + "  ")
    return lines


def _text_lines(text: str, indent: str) -> list[str]:
    return [indent + line if line.strip() else "" for line in text.splitlines()]


def write(feature: Feature) -> str:
    """The feature as Gherkin text in the style of ``features/``."""
    if not feature.scenarios and not feature.background:
        return ""
    lines: list[str] = []
    if feature.tags:
        lines.append(" ".join(feature.tags))
    lines.append(f"Feature: {feature.name}".rstrip())
    lines += _text_lines(feature.description, "  ")
    if feature.background:
        lines += ["", "  Background:"]
        for step in feature.background:
            lines += _step_lines(step, "    ")
    for scenario in feature.scenarios:
        lines.append("")
        lines += ["  " + c for c in scenario.comments]
        if scenario.tags:
            lines.append("  " + " ".join(scenario.tags))
        keyword = "Scenario Outline" if scenario.outline else "Scenario"
        lines.append(f"  {keyword}: {scenario.name}".rstrip())
        lines += _text_lines(scenario.description, "    ")
        for step in scenario.steps:
            lines += _step_lines(step, "    ")
        for ex in scenario.examples:
            lines += ["", f"    Examples: {ex.name}".rstrip()]
            if ex.table:
                lines += _table_lines(ex.table, "      ")
    return "\n".join(lines) + "\n"


def normal(text: str, source: str = "scenarios") -> str:
    """The text as the back office keeps it: as written when it is a feature file, the
    body of one feature when HR wrote scenarios without a ``Feature:`` line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return ""
    feature = read(text, source)  # refuses what does not parse
    if not re.search(r"^\s*Feature:", text, flags=re.M):
        return write(feature)
    return text if text.endswith("\n") else text + "\n"


def steps_of(feature: Feature) -> list[Step]:
    return [*feature.background, *(s for sc in feature.scenarios for s in sc.steps)]


def line_of(text: str, step: Step) -> int | None:
    """The line of the text where the step is written (the first such line)."""
    wanted = f"{step.keyword} {step.text}".strip()
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip() == wanted:
            return n
    return None


def same(a: str, b: str) -> bool:
    """Whether two scenario texts say the same (spacing and comments aside)."""
    if a == b:
        return True
    try:
        return _plain(read(a)) == _plain(read(b))
    except SpecSyntaxError:
        return False


def _plain(feature: Feature) -> Any:
    out = copy.deepcopy(feature)
    for step in steps_of(out):
        step.comments = []
    for sc in out.scenarios:
        sc.comments = []
    return out


# --- expanding: pickles and where they come from ------------------------------------------------


def expand(text: str, source: str) -> list[tuple[dict[str, Any], Where, list[int | None]]]:
    """The expanded scenarios of a feature text, backgrounds and examples filled in.

    Each comes with its Where and, step by step, the index of the scenario step it is
    (None for a background step). Outline examples are named "NAME (example N)".
    """
    from gherkin.pickles.compiler import Compiler

    if not text.strip():
        return []
    document = _document(text, source)
    _, ids = _read(text, source)
    pickles = Compiler().compile(document)
    total = Counter(p["name"] for p in pickles)
    seen: Counter[str] = Counter()
    out = []
    for p in pickles:
        name = p["name"]
        seen[name] += 1
        if total[name] > 1:  # the examples of an outline share its name
            p["name"] = f"{name} (example {seen[name]})"
        where = ids[p["astNodeIds"][-1]] if len(p["astNodeIds"]) > 1 else ids[p["astNodeIds"][0]]
        steps: list[int | None] = []
        for s in p["steps"]:
            owner, index = ids[s["astNodeIds"][0]]
            steps.append(None if owner == "background" else index)
        out.append((p, where, steps))
    return out


def count(text: str) -> int:
    """How many expanded scenarios (an outline counts each example) the text holds."""
    return len(expand(text, "scenarios")) if text.strip() else 0


def example_row(feature: Feature, where: Where) -> dict[str, str]:
    """The example row of an outline's expanded scenario, by column ({} otherwise)."""
    if where.examples is None or where.row is None:
        return {}
    ex = feature.scenarios[where.scenario].examples[where.examples]
    return dict(zip(ex.header, ex.rows[where.row], strict=False))


# --- changing a figure ---------------------------------------------------------------------------


def with_figures(feature: Feature, where: Where, step: int, pattern: str,
                 figures: dict[str, str]) -> Feature:
    """The feature with a step's figures replaced (an amount, a status, a value).

    ``pattern`` is the step's words (engine.specs); a figure that the step takes from an
    example column (``<commission>``) is written into that example's row, any other into
    the step's own words. Raises LaurelError when the step's words have changed since.
    """
    import parse

    out = copy.deepcopy(feature)
    scenario = out.scenarios[where.scenario]
    target = scenario.steps[step]
    found = parse.parse(pattern, target.text)
    if found is None:
        raise LaurelError(msg("scenario %(name)s: the step %(text)s changed since it was run; "
                              "run the scenarios again", name=repr(scenario.name),
                              text=repr(target.text)))
    params = dict(found.named)
    for name, value in figures.items():
        held = params.get(name, "")
        column = PLACEHOLDER.fullmatch(held)
        if column and where.examples is not None and where.row is not None:
            ex = scenario.examples[where.examples]
            if column[1] not in ex.header:
                raise LaurelError(msg("scenario %(name)s has no example column %(column)s",
                                      name=repr(scenario.name), column=repr(column[1])))
            ex.table[where.row + 1][ex.header.index(column[1])] = value
        elif PLACEHOLDER.search(held):
            raise LaurelError(msg("scenario %(name)s: %(held)s mixes words and an example "
                                  "column; change it by hand", name=repr(scenario.name),
                                  held=repr(held)))
        else:
            params[name] = value
    target.text = pattern.format(**params)
    return out
