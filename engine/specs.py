"""Policy scenarios in HR's words: the step vocabulary, and a runner that gates publishing.

The steps are the ones the feature files in ``features/`` use; ``tests/test_policy_specs.py``
binds the same functions to pytest-bdd, so a step means the same in the test suite and in
the back office. The runner parses Gherkin with the parser pytest-bdd uses, expands
backgrounds and outlines (the "pickles" of the Gherkin compiler) and runs every scenario
against a scratch SQLite database holding the draft rule set: the published rules with
the draft replacing its key. The scratch database is migrated and seeded once per gate
run; each scenario starts from a copy of it.
"""

from __future__ import annotations

import csv
import inspect
import io
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import parse
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import LaurelError

ACTOR = "tester@example.com"
# A team nobody declared is `mature`: no stage-scoped bonus applies to it by accident.
DEFAULT_STAGE = "mature"
MONEY_KINDS = ("commission", "bonus")
FEATURES = Path(__file__).resolve().parent.parent / "features"

Staff = dict[str, tuple[str, str]]  # employee code -> (level, team)
Runs = list[tuple[str, Any]]  # (period, RunResult) in the order the runs were made


class SpecFailure(AssertionError):
    """A step whose expectation does not hold: what was expected and what was found."""

    def __init__(self, expected: str, actual: str):
        self.expected, self.actual = expected, actual
        super().__init__(f"expected {expected}; found {actual}")


class SpecSyntaxError(LaurelError):
    """Scenarios that do not parse as Gherkin; names the line."""


def _expect(ok: bool, expected: str, actual: Any) -> None:
    if not ok:
        raise SpecFailure(expected, actual if isinstance(actual, str) else _shown(actual))


def _shown(outcomes: Any) -> str:
    if isinstance(outcomes, list):
        if not outcomes:
            return "nothing"
        return "; ".join(_one(o) if isinstance(o, dict) else str(o) for o in outcomes)
    return str(outcomes)


def _one(o: dict[str, Any]) -> str:
    parts = [o.get("employee_code", ""), o.get("rule_key", ""), o.get("kind", "")]
    if o.get("amount") is not None:
        parts.append(f"{o['amount']} {o.get('currency') or ''}".strip())
    if o.get("value") is not None:
        parts.append(f'valued "{o["value"]}"')
    if o.get("status"):
        parts.append(o["status"])
    return " ".join(p for p in parts if p)


# --- the organisation ---------------------------------------------------------------------------

TEAM_AT_STAGE = 'the team "{team}" at stage "{stage}"'
ONE_EMPLOYEE = 'employee "{code}" at level "{level}" in team "{team}"'
EMPLOYEE_RANGE = 'employees "{first}" to "{last}" at level "{level}" in team "{team}"'
RESULTS_FOR = 'the results for "{period}":'
RESULTS = "the results:"
RUN_WAS_MADE = 'the compensation run for "{period}" was made'
RUN_IS_MADE = 'the compensation run for "{period}" is made'
RECEIVES = '"{code}" receives a "{rule}" {kind} of {amount} {status}'
ONLY_RECEIVE = 'only "{codes}" receive a "{rule}" {kind} of {amount} {status}'
RECEIVES_NO = '"{code}" receives no "{rule}" {kind}'
IS_RATED = '"{code}" is rated "{value}"'
IS_NOT_RATED = '"{code}" is not rated'
GETS_VALUED = '"{code}" gets the {kind} "{rule}" valued "{value}"'
ONLY_GET = 'only "{codes}" get the {kind} "{rule}" valued "{value}"'
HAS_NO_OUTCOME = '"{code}" has no "{rule}" outcome'
NOBODY_HAS = 'nobody has a "{rule}" outcome'
GETS_WARNING = '"{code}" gets a warning from "{rule}" naming "{metric}"'


def team_at_stage(teams: dict[str, str], team: str, stage: str) -> dict[str, str]:
    return {**teams, team: stage}


def one_employee(staff: Staff, code: str, level: str, team: str) -> Staff:
    return {**staff, code: (level, team)}


def employee_range(staff: Staff, first: str, last: str, level: str, team: str) -> Staff:
    lo, hi = re.fullmatch(r"(\D*)(\d+)", first), re.fullmatch(r"(\D*)(\d+)", last)
    if not (lo and hi and lo[1] == hi[1] and len(lo[2]) == len(hi[2])):
        raise SpecFailure(f'"{first}" to "{last}" to be a range of codes such as S01 to S20',
                          f'"{first}" and "{last}"')
    width = len(lo[2])
    added = {f"{lo[1]}{n:0{width}d}": (level, team) for n in range(int(lo[2]), int(hi[2]) + 1)}
    return {**staff, **added}


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def _import_staff(session: Session, teams: dict[str, str], staff: Staff) -> None:
    from engine.imports import import_employees

    rows = [["code", "name", "team", "level", "team_stage"]]
    for code, (level, team) in staff.items():
        rows.append([code, f"Employee {code}", team, level, teams.get(team, DEFAULT_STAGE)])
    import_employees(session, "employees.csv", data=_csv(rows))


def _import_results(session: Session, teams: dict[str, str], staff: Staff,
                    table: list[list[str]], period: str | None) -> None:
    """Import a table whose `employee` column names the employee; an empty cell is undefined."""
    from engine.imports import import_results

    _import_staff(session, teams, staff)
    header = ["employee_code" if h == "employee" else h for h in table[0]]
    body = [list(r) for r in table[1:]]
    if period is not None:
        header = ["period", *header]
        body = [[period, *r] for r in body]
    import_results(session, "results.csv", data=_csv([header, *body]))
    session.commit()


def results_for(session: Session, teams: dict[str, str], staff: Staff, period: str,
                datatable: list[list[str]]) -> None:
    _import_results(session, teams, staff, datatable, period)


def results_by_period(session: Session, teams: dict[str, str], staff: Staff,
                      datatable: list[list[str]]) -> None:
    if "period" not in datatable[0]:
        raise SpecFailure("a period column in the table", ", ".join(datatable[0]))
    _import_results(session, teams, staff, datatable, None)


# --- runs ---------------------------------------------------------------------------------------


def make_run(session: Session, runs: Runs, period: str) -> Runs:
    from engine.runs import start_run

    result = start_run(session, period, actor=ACTOR)
    session.commit()
    return [*runs, (period, result)]


def _outcomes(session: Session, runs: Runs, code: str | None = None,
              rule: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """The stored outcomes of the latest run, filtered."""
    from engine.runs import outcome_rows

    if not runs:
        raise SpecFailure("a compensation run to have been made", "no run")
    run = runs[-1][1].run
    return [o for o in outcome_rows(session, run)
            if (code is None or o["employee_code"] == code)
            and (rule is None or o["rule_key"] == rule)
            and (kind is None or o["kind"] == kind)]


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


# --- payouts ------------------------------------------------------------------------------------


def _assert_payout(session: Session, runs: Runs, code: str, rule: str, kind: str,
                   amount: str, status: str) -> None:
    _expect(kind in MONEY_KINDS, "a payout kind (commission or bonus)", kind)
    found = _outcomes(session, runs, code, rule)
    _expect([(o["kind"], o["amount"], o["currency"], o["status"]) for o in found]
            == [(kind, amount, "CNY", status)],
            f"{code} {rule} {kind} {amount} CNY {status}", found)


def receives(session: Session, runs: Runs, code: str, rule: str, kind: str, amount: str,
             status: str) -> None:
    _assert_payout(session, runs, code, rule, kind, amount, status)


def only_they_receive(session: Session, runs: Runs, codes: str, rule: str, kind: str,
                      amount: str, status: str) -> None:
    wanted = _codes(codes)
    for code in wanted:
        _assert_payout(session, runs, code, rule, kind, amount, status)
    others = sorted({o["employee_code"] for o in _outcomes(session, runs, rule=rule,
                                                           kind=kind)})
    _expect(others == sorted(wanted), f"{rule} to go to {', '.join(wanted)} only",
            f"it went to {', '.join(others) or 'nobody'}")


def receives_no(session: Session, runs: Runs, code: str, rule: str, kind: str) -> None:
    found = _outcomes(session, runs, code, rule, kind)
    _expect(found == [], f"no {rule} {kind} for {code}", found)


# --- values: ratings, flags, alerts, awards, eligibility, PIPs ----------------------------------


def _assert_valued(session: Session, runs: Runs, code: str, kind: str, rule: str | None,
                   value: str) -> None:
    found = _outcomes(session, runs, code, rule, kind)
    _expect([(o["value"], o["amount"], o["status"]) for o in found] == [(value, None, None)],
            f'{code} {rule or ""} {kind} valued "{value}"'.replace("  ", " "), found)


def is_rated(session: Session, runs: Runs, code: str, value: str) -> None:
    _assert_valued(session, runs, code, "rating", None, value)


def is_not_rated(session: Session, runs: Runs, code: str) -> None:
    found = _outcomes(session, runs, code, kind="rating")
    _expect(found == [], f"no rating for {code}", found)


def gets_valued(session: Session, runs: Runs, code: str, kind: str, rule: str,
                value: str) -> None:
    _assert_valued(session, runs, code, kind, rule, value)


def only_they_get(session: Session, runs: Runs, codes: str, kind: str, rule: str,
                  value: str) -> None:
    wanted = _codes(codes)
    for code in wanted:
        _assert_valued(session, runs, code, kind, rule, value)
    others = sorted({o["employee_code"] for o in _outcomes(session, runs, rule=rule,
                                                           kind=kind)})
    _expect(others == sorted(wanted), f"{rule} to go to {', '.join(wanted)} only",
            f"it went to {', '.join(others) or 'nobody'}")


# --- absence and warnings -----------------------------------------------------------------------


def has_no_outcome(session: Session, runs: Runs, code: str, rule: str) -> None:
    found = _outcomes(session, runs, code, rule)
    _expect(found == [], f"no {rule} outcome for {code}", found)


def nobody_has(session: Session, runs: Runs, rule: str) -> None:
    found = _outcomes(session, runs, rule=rule)
    _expect(found == [], f"no {rule} outcome for anybody", found)


def gets_warning(session: Session, runs: Runs, code: str, rule: str, metric: str) -> None:
    import json

    found = _outcomes(session, runs, code, rule, "warning")
    naming = [o for o in found
              if metric in (o["value"] or "") or metric in json.dumps(o["explanation"])]
    _expect(bool(naming), f"a warning from {rule} for {code} naming {metric}", found)
    _expect(all(o["amount"] is None and o["status"] is None for o in found),
            "a warning without an amount", found)


# --- the vocabulary -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of the vocabulary: its words, the function, and the state it replaces."""

    keyword: str  # Given, When or Then: how the help lists it
    pattern: str
    fn: Callable[..., Any]
    target: str | None = None  # the state the function returns (teams, staff or runs)
    table: str = ""  # an example of the table the step takes, for the help

    @property
    def parser(self) -> parse.Parser:
        return _compiled(self.pattern)


_PARSERS: dict[str, parse.Parser] = {}


def _compiled(pattern: str) -> parse.Parser:
    if pattern not in _PARSERS:
        _PARSERS[pattern] = parse.compile(pattern)
    return _PARSERS[pattern]


STEPS: list[Step] = [
    Step("Given", TEAM_AT_STAGE, team_at_stage, "teams"),
    Step("Given", ONE_EMPLOYEE, one_employee, "staff"),
    Step("Given", EMPLOYEE_RANGE, employee_range, "staff"),
    Step("Given", RESULTS_FOR, results_for,
         table="| employee | quota | revenue_new |\n| E1 | 100000 | 120000 |"),
    Step("Given", RESULTS, results_by_period,
         table="| period | employee | quota |\n| 2026-01 | E1 | 100000 |"),
    Step("Given", RUN_WAS_MADE, make_run, "runs"),
    Step("When", RUN_IS_MADE, make_run, "runs"),
    Step("Then", RECEIVES, receives),
    Step("Then", ONLY_RECEIVE, only_they_receive),
    Step("Then", RECEIVES_NO, receives_no),
    Step("Then", IS_RATED, is_rated),
    Step("Then", IS_NOT_RATED, is_not_rated),
    Step("Then", GETS_VALUED, gets_valued),
    Step("Then", ONLY_GET, only_they_get),
    Step("Then", HAS_NO_OUTCOME, has_no_outcome),
    Step("Then", NOBODY_HAS, nobody_has),
    Step("Then", GETS_WARNING, gets_warning),
]


def vocabulary() -> list[tuple[str, str, str]]:
    """The steps as HR reads them in the help: (keyword, words, example table)."""
    return [(s.keyword, s.pattern, s.table) for s in STEPS]


def match(text: str) -> tuple[Step, dict[str, Any]] | None:
    for step in STEPS:
        found = step.parser.parse(text)
        if found is not None:
            return step, dict(found.named)
    return None


# --- parsing ------------------------------------------------------------------------------------

_KEYWORDS = {"Context": "Given", "Action": "When", "Outcome": "Then"}


@dataclass
class StepResult:
    keyword: str
    text: str
    status: str = "skipped"  # passed, failed, skipped


@dataclass
class ScenarioResult:
    name: str
    source: str
    line: int
    steps: list[StepResult] = field(default_factory=list)
    expected: str | None = None
    actual: str | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.expected is None

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)


@dataclass
class GateReport:
    scenarios: list[ScenarioResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.scenarios)

    @property
    def failures(self) -> list[ScenarioResult]:
        return [s for s in self.scenarios if not s.passed]


def parse_scenarios(text: str, source: str) -> list[dict[str, Any]]:
    """Return the scenarios of a feature text, backgrounds and examples expanded.

    Text without a ``Feature:`` line (as HR writes it in the back office) is read as the
    body of one feature.
    """
    from gherkin.parser import Parser
    from gherkin.pickles.compiler import Compiler

    if not text.strip():
        return []
    if not re.search(r"^\s*Feature:", text, flags=re.M):
        text = f"Feature: {source}\n" + text
    try:
        document = Parser().parse(text)
    except Exception as exc:  # gherkin's CompositeParserException and its kin
        raise SpecSyntaxError(f"{source}: {exc}") from None
    document["uri"] = source
    pickles = Compiler().compile(document)
    total = Counter(p["name"] for p in pickles)
    seen: Counter[str] = Counter()
    for p in pickles:
        name = p["name"]
        seen[name] += 1
        if total[name] > 1:  # the examples of an outline share its name
            p["name"] = f"{name} (example {seen[name]})"
    return pickles


# --- the runner ---------------------------------------------------------------------------------


def _table(step: Mapping[str, Any]) -> list[list[str]] | None:
    table = (step.get("argument") or {}).get("dataTable")
    if not table:
        return None
    return [[c["value"] for c in row["cells"]] for row in table["rows"]]


def run_scenario(session: Session, pickle: Mapping[str, Any], source: str) -> ScenarioResult:
    """Run one expanded scenario on a session of its own database."""
    result = ScenarioResult(pickle["name"], source, pickle.get("location", {}).get("line", 0),
                            [StepResult(_KEYWORDS.get(s.get("type"), "*"), s["text"])
                             for s in pickle["steps"]])
    state: dict[str, Any] = {"session": session, "teams": {}, "staff": {}, "runs": []}
    for step, shown in zip(pickle["steps"], result.steps, strict=True):
        found = match(step["text"])
        if found is None:
            shown.status = "failed"
            result.error = ("no step has these words; the steps are listed under "
                            "'Steps you can use'")
            return result
        definition, args = found
        params = inspect.signature(definition.fn).parameters
        table = _table(step)
        if "datatable" in params:
            if table is None:
                shown.status = "failed"
                result.error = "this step needs a table below it"
                return result
            args["datatable"] = table
        for name in params:
            if name in state and name not in args:
                args[name] = state[name]
        try:
            value = definition.fn(**args)
        except SpecFailure as exc:
            shown.status = "failed"
            result.expected, result.actual = exc.expected, exc.actual
            return result
        except Exception as exc:  # an import refused, a run that failed: the step fails
            session.rollback()
            shown.status = "failed"
            result.error = str(exc) if isinstance(exc, LaurelError) \
                else f"{type(exc).__name__}: {exc}"
            return result
        if definition.target:
            state[definition.target] = value
        shown.status = "passed"
    return result


def draft_rule_set(session: Session, draft: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The published rules (every period kind) with the draft replacing its key."""
    from engine.models import Rule

    rules = session.scalars(select(Rule).where(Rule.status == "published")
                            .order_by(Rule.key)).all()
    out = [dict(r.definition) for r in rules if r.key != draft["key"]]
    return [*out, dict(draft)]


class ScratchDatabase:
    """A migrated SQLite file with the catalog, the levels and the draft rule set."""

    def __init__(self, session: Session, draft: Mapping[str, Any]):
        from engine import db
        from engine.models import Level, Metric
        from engine.rulebook import save_rule

        self.dir = Path(tempfile.mkdtemp(prefix="laurel-specs-"))
        self.template = self.dir / "template.db"
        url = f"sqlite:///{self.template}"
        db.upgrade_schema(url)
        levels = [(lv.code, lv.name, lv.discount_authority)
                  for lv in session.scalars(select(Level))]
        metrics = [(m.key, m.label_en, m.label_zh, m.type, m.rollup, m.formula, m.description)
                   for m in session.scalars(select(Metric).order_by(Metric.id))]
        published = draft_rule_set(session, draft)[:-1]
        try:
            with db.session_scope(url, actor=ACTOR) as s:
                s.info["audit_off"] = True
                for code, name, authority in levels:
                    s.add(Level(code=code, name=name, discount_authority=authority))
                for key, en, zh, mtype, rollup, formula, description in metrics:
                    s.add(Metric(key=key, label_en=en, label_zh=zh, type=mtype, rollup=rollup,
                                 formula=formula, description=description or ""))
                s.flush()
                for doc in published:
                    save_rule(s, doc, f"rule {doc['key']}", publish=True)
                # Published on top, as approving it will: its predecessor retires.
                save_rule(s, dict(draft), f"rule {draft['key']}", publish=True)
        finally:
            _dispose(url)
        self.count = 0

    def session(self) -> tuple[Session, str]:
        from engine import db

        self.count += 1
        path = self.dir / f"scenario-{self.count}.db"
        shutil.copy(self.template, path)
        url = f"sqlite:///{path}"
        s = db.make_sessionmaker(url)()
        s.info["actor"] = ACTOR
        s.info["audit_off"] = True
        return s, url

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _dispose(url: str) -> None:
    from engine import db

    engine = db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def feature_text(key: str, features: Path = FEATURES) -> str | None:
    path = features / f"{key}.feature"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def run_gate(session: Session, draft: Mapping[str, Any], hr_scenarios: str = "",
             features: Path = FEATURES) -> GateReport:
    """Run the policy's feature file and HR's scenarios against the draft rule set.

    Nothing is written to the session's database. A syntax error in HR's scenarios is a
    SpecSyntaxError (a LaurelError), before anything runs.
    """
    t0 = time.perf_counter()
    sources: list[tuple[str, list[dict[str, Any]]]] = []
    text = feature_text(draft["key"], features)
    if text is not None:
        sources.append((f"features/{draft['key']}.feature",
                        parse_scenarios(text, f"features/{draft['key']}.feature")))
    if hr_scenarios.strip():
        sources.append(("scenarios written in the back office",
                        parse_scenarios(hr_scenarios, "scenarios written in the back office")))
    report = GateReport()
    if not any(pickles for _, pickles in sources):
        return report
    scratch = ScratchDatabase(session, draft)
    try:
        for source, pickles in sources:
            for pickle in pickles:
                s, url = scratch.session()
                try:
                    report.scenarios.append(run_scenario(s, pickle, source))
                finally:
                    s.rollback()
                    s.close()
                    _dispose(url)
    finally:
        scratch.close()
    report.seconds = time.perf_counter() - t0
    return report
