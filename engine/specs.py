"""Policy scenarios in HR's words: the step vocabulary, and a runner that gates publishing.

The steps are the ones the feature files in ``features/`` use; ``tests/test_policy_specs.py``
binds the same functions to pytest-bdd, so a step means the same in the test suite and in
the back office. A rule version carries its scenarios (engine.scenarios); the runner
expands backgrounds and outlines (the "pickles" of the Gherkin compiler) and runs every
scenario against a scratch SQLite database holding the draft rule set: the published rules
with the draft replacing its key. The scratch database is seeded once per gate run (from
an empty migrated schema made once per version of the migrations); each scenario starts
from a copy of it. A step whose expectation fails says what
it found, and where one new figure would make it hold (an amount, a status, a value), it
says which: HR can accept it into the scenario.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import inspect
import io
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import parse
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from engine.errors import LaurelError
from engine.messages import msg
from engine.scenarios import SpecSyntaxError as SpecSyntaxError  # its errors, said here too
from engine.scenarios import Where, example_row, expand

ACTOR = "tester@example.com"
# A team nobody declared is `mature`: no stage-scoped bonus applies to it by accident.
DEFAULT_STAGE = "mature"
MONEY_KINDS = ("commission", "bonus")
FEATURES = Path(__file__).resolve().parent.parent / "features"

Staff = dict[str, tuple[str, str]]  # employee code -> (level, team)
Runs = list[tuple[str, Any]]  # (period, RunResult) in the order the runs were made


class SpecFailure(AssertionError):
    """A step whose expectation does not hold: what was expected and what was found, and
    the step's figures that would make it hold (``{"amount": "8400.00"}``), if known."""

    def __init__(self, expected: str, actual: str, figures: dict[str, str] | None = None):
        self.expected, self.actual, self.figures = expected, actual, figures
        super().__init__(f"expected {expected}; found {actual}")


def _expect(ok: bool, expected: str, actual: Any, figures: dict[str, str] | None = None
            ) -> None:
    if not ok:
        raise SpecFailure(expected, actual if isinstance(actual, str) else _shown(actual),
                          figures)


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
ASSIGNMENTS = "the dated assignments:"
RESULTS_FOR = 'the results for "{period}":'
RESULTS = "the results:"
RULE_CHANGED = 'the rule "{rule}" changed:'
RUN_WAS_MADE = 'the compensation run for "{period}" was made'
RUN_WAS_SETTLED = 'the compensation run for "{period}" was made and {state}'
RUN_IS_MADE = 'the compensation run for "{period}" is made'
RECEIVES = '"{code}" receives a "{rule}" {kind} of {amount} {status}'
ONLY_RECEIVE = 'only "{codes}" receive a "{rule}" {kind} of {amount} {status}'
RECEIVES_NO = '"{code}" receives no "{rule}" {kind}'
OWES = '"{code}" owes a "{rule}" draw balance of {amount}'
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


def dated_assignments(session: Session, teams: dict[str, str], staff: Staff,
                      datatable: list[list[str]]) -> Staff:
    """Import dated rows (| employee | team | level | effective_date | leave_date |, the
    last three optional) through the employees import, in the table's order, after the
    employees declared so far: a hire, a transfer, a leave. Each employee then stands as
    their latest assignment says."""
    from engine.errors import ImportFileError
    from engine.imports import import_employees

    header = [h.strip() for h in datatable[0]]
    allowed = ["employee", "team", "level", "effective_date", "leave_date"]
    if header[:3] != allowed[:3] or any(h not in allowed for h in header):
        raise SpecFailure("a table with the columns employee, team, level and any of "
                          "effective_date, leave_date", ", ".join(header))
    if staff:
        _import_staff(session, teams, staff)
    rows = [dict(zip(header, (c.strip() for c in r), strict=True)) for r in datatable[1:]]
    latest: dict[str, tuple[str, tuple[str, str]]] = {}
    pending: list[dict[str, str]] = []

    def send() -> None:
        out = [["code", "name", "team", "level", "team_stage", *header[3:]]]
        for r in pending:
            out.append([r["employee"], f"Employee {r['employee']}", r["team"], r["level"],
                        teams.get(r["team"], DEFAULT_STAGE), *(r[h] for h in header[3:])])
        try:
            import_employees(session, "employees.csv", data=_csv(out))
        except ImportFileError as exc:
            raise SpecFailure("dated assignments the employees import takes", str(exc)) \
                from None
        pending.clear()

    for r in rows:  # one file per batch: a file names an employee once
        if any(p["employee"] == r["employee"] for p in pending):
            send()
        pending.append(r)
        date = r.get("effective_date") or ""
        if r["employee"] not in latest or date >= latest[r["employee"]][0]:
            latest[r["employee"]] = (date, (r["level"], r["team"]))
    if pending:
        send()
    session.commit()
    return {**staff, **{code: assigned for code, (_, assigned) in latest.items()}}


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


# --- the rules ----------------------------------------------------------------------------------

_PATH_PART = re.compile(r"([A-Za-z_]+)(?:\[(\d+)\])?")
_REMOVED = object()


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pruned(v) for v in value if v is not _REMOVED]
    return value


def _set_field(doc: dict[str, Any], path: str, value: str) -> None:
    """Set one field of a rule document by its validator name (action.tiers[2].rate, the
    index 1-based); an empty value removes the field."""
    parts = path.split(".")
    node: Any = doc
    for i, part in enumerate(parts):
        m = _PATH_PART.fullmatch(part)
        if m is None:
            raise SpecFailure("a field such as action.cap or action.tiers[2].rate", path)
        name, index, last = m[1], m[2], i == len(parts) - 1
        if not isinstance(node, dict):
            raise SpecFailure(f"{'.'.join(parts[:i])} to be a mapping", path)
        if index is None and last:
            if value == "":
                node.pop(name, None)
            else:
                node[name] = value
            return
        node = node.setdefault(name, {} if index is None else [])
        if index is not None:
            if not isinstance(node, list) or not 1 <= int(index) <= len(node):
                raise SpecFailure(f"{name} to have an item {index}", path)
            if last:  # an empty value removes the item once the table is applied
                node[int(index) - 1] = _REMOVED if value == "" else value
                return
            node = node[int(index) - 1]


def rule_changed(session: Session, rule: str, datatable: list[list[str]]) -> None:
    """Publish a new version of a published rule with the fields of the table changed
    (| field | value |), validated as the back office validates it."""
    from engine.errors import RuleError
    from engine.rulebook import published_rules, save_rule

    current = next((r for r in published_rules(session) if r.key == rule), None)
    if current is None:
        raise SpecFailure(f"a published rule {rule}", "no such rule")
    header, *rows = datatable
    if [h.strip() for h in header] != ["field", "value"]:
        raise SpecFailure("a table with the columns field and value", ", ".join(header))
    doc = copy.deepcopy(dict(current.definition))
    for row in rows:
        _set_field(doc, row[0].strip(), row[1].strip())
    try:
        save_rule(session, _pruned(doc), f"rule {rule}", publish=True)
    except RuleError as exc:
        raise SpecFailure(f"a valid change of {rule}", str(exc)) from None
    session.commit()


# --- runs ---------------------------------------------------------------------------------------


def make_run(session: Session, runs: Runs, period: str) -> Runs:
    from engine.runs import start_run

    result = start_run(session, period, actor=ACTOR)
    session.commit()
    return [*runs, (period, result)]


APPROVER = "approver@example.com"


def make_settled_run(session: Session, runs: Runs, period: str, state: str) -> Runs:
    """Make the run, then approve it (and lock it) as a second person would."""
    from engine.lifecycle import approve, lock
    from engine.models import User

    if state not in ("approved", "locked"):
        raise SpecFailure('"approved" or "locked"', state)
    runs = make_run(session, runs, period)
    if session.scalar(select(User).where(User.email == APPROVER)) is None:
        session.add(User(email=APPROVER, name="Approver", role="comp_analyst"))
    run_id = runs[-1][1].run.id
    approve(session, run_id, APPROVER)
    if state == "locked":
        lock(session, run_id, APPROVER, open_flags_reason="locked in a scenario")
    session.commit()
    return runs


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


def _payout_figures(found: list[dict[str, Any]], kind: str) -> dict[str, str] | None:
    """The amount and status found, when there is one payout of the kind to take."""
    if len(found) == 1 and found[0]["kind"] == kind and found[0]["amount"] is not None:
        return {"amount": found[0]["amount"], "status": found[0]["status"]}
    return None


def _assert_payout(session: Session, runs: Runs, code: str, rule: str, kind: str,
                   amount: str, status: str) -> None:
    _expect(kind in MONEY_KINDS, "a payout kind (commission or bonus)", kind)
    found = _outcomes(session, runs, code, rule)
    _expect([(o["kind"], o["amount"], o["currency"], o["status"]) for o in found]
            == [(kind, amount, "CNY", status)],
            f"{code} {rule} {kind} {amount} CNY {status}", found, _payout_figures(found, kind))


def receives(session: Session, runs: Runs, code: str, rule: str, kind: str, amount: str,
             status: str) -> None:
    _assert_payout(session, runs, code, rule, kind, amount, status)


def only_they_receive(session: Session, runs: Runs, codes: str, rule: str, kind: str,
                      amount: str, status: str) -> None:
    wanted = _codes(codes)
    try:
        for code in wanted:
            _assert_payout(session, runs, code, rule, kind, amount, status)
    except SpecFailure as exc:
        # one new figure for the step only when every one of them has the same
        figures = [_payout_figures(_outcomes(session, runs, c, rule), kind) for c in wanted]
        exc.figures = figures[0] if all(f == figures[0] for f in figures) else None
        raise
    others = sorted({o["employee_code"] for o in _outcomes(session, runs, rule=rule,
                                                           kind=kind)})
    _expect(others == sorted(wanted), f"{rule} to go to {', '.join(wanted)} only",
            f"it went to {', '.join(others) or 'nobody'}")


def owes(session: Session, runs: Runs, code: str, rule: str, amount: str) -> None:
    """The balance a recoverable draw is owed after the latest run, as its line says."""
    from decimal import Decimal, InvalidOperation

    found = [o for o in _outcomes(session, runs, code, rule)
             if (o["explanation"].get("calc") or {}).get("type") == "draw"]
    if not found:
        raise SpecFailure(f"a {rule} draw line for {code}", "no draw line")
    balance = found[0]["explanation"]["calc"].get("balance_after")
    if balance is None:
        raise SpecFailure(f"{rule} to be a recoverable draw", "a draw that is not recovered")
    try:
        wanted = Decimal(amount)
    except InvalidOperation:
        raise SpecFailure("an amount such as 1500.00", amount) from None
    _expect(Decimal(balance) == wanted, f"{code} to owe {rule} {amount}", balance,
            {"amount": balance})


def receives_no(session: Session, runs: Runs, code: str, rule: str, kind: str) -> None:
    found = _outcomes(session, runs, code, rule, kind)
    _expect(found == [], f"no {rule} {kind} for {code}", found)


# --- values: ratings, flags, alerts, awards, eligibility, PIPs ----------------------------------


def _assert_valued(session: Session, runs: Runs, code: str, kind: str, rule: str | None,
                   value: str) -> None:
    found = _outcomes(session, runs, code, rule, kind)
    figures = {"value": found[0]["value"]} if len(found) == 1 and found[0]["value"] \
        and found[0]["amount"] is None else None
    _expect([(o["value"], o["amount"], o["status"]) for o in found] == [(value, None, None)],
            f'{code} {rule or ""} {kind} valued "{value}"'.replace("  ", " "), found, figures)


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
    try:
        for code in wanted:
            _assert_valued(session, runs, code, kind, rule, value)
    except SpecFailure as exc:
        values = [[o["value"] for o in _outcomes(session, runs, c, rule, kind)] for c in wanted]
        exc.figures = {"value": values[0][0]} if all(
            len(v) == 1 and v == values[0] for v in values) else None
        raise
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
    zh: str = ""  # the same words in Chinese, for reading (the feature keeps the English)

    @property
    def parser(self) -> parse.Parser:
        return _compiled(self.pattern)


_PARSERS: dict[str, parse.Parser] = {}


def _compiled(pattern: str) -> parse.Parser:
    if pattern not in _PARSERS:
        _PARSERS[pattern] = parse.compile(pattern)
    return _PARSERS[pattern]


STEPS: list[Step] = [
    Step("Given", TEAM_AT_STAGE, team_at_stage, "teams", zh="团队“{team}”处于“{stage}”阶段"),
    Step("Given", ONE_EMPLOYEE, one_employee, "staff",
         zh="员工“{code}”，职级“{level}”，团队“{team}”"),
    Step("Given", EMPLOYEE_RANGE, employee_range, "staff",
         zh="员工“{first}”至“{last}”，职级“{level}”，团队“{team}”"),
    Step("Given", ASSIGNMENTS, dated_assignments, "staff",
         table="| employee | team | level | effective_date | leave_date |\n"
               "| E1 | North | S2 | 2026-01-16 | |",
         zh="以下按日期生效的任职："),
    Step("Given", RESULTS_FOR, results_for,
         table="| employee | quota | revenue_new |\n| E1 | 100000 | 120000 |",
         zh="“{period}”的业绩："),
    Step("Given", RESULTS, results_by_period,
         table="| period | employee | quota |\n| 2026-01 | E1 | 100000 |", zh="以下各期的业绩："),
    Step("Given", RULE_CHANGED, rule_changed,
         table="| field | value |\n| action.mode | marginal |\n| action.cap | 5000 |",
         zh="规则“{rule}”改为："),
    Step("Given", RUN_WAS_MADE, make_run, "runs", zh="已发起“{period}”的计算"),
    Step("Given", RUN_WAS_SETTLED, make_settled_run, "runs",
         zh="已发起“{period}”的计算，并已{state}"),
    Step("When", RUN_IS_MADE, make_run, "runs", zh="发起“{period}”的计算"),
    Step("Then", RECEIVES, receives, zh="“{code}”获得“{rule}”{kind} {amount}，{status}"),
    Step("Then", ONLY_RECEIVE, only_they_receive,
         zh="只有“{codes}”获得“{rule}”{kind} {amount}，{status}"),
    Step("Then", RECEIVES_NO, receives_no, zh="“{code}”没有“{rule}”{kind}"),
    Step("Then", OWES, owes, zh="“{code}”尚欠“{rule}”预支余额 {amount}"),
    Step("Then", IS_RATED, is_rated, zh="“{code}”评级为“{value}”"),
    Step("Then", IS_NOT_RATED, is_not_rated, zh="“{code}”没有评级"),
    Step("Then", GETS_VALUED, gets_valued, zh="“{code}”得到{kind}“{rule}”，值为“{value}”"),
    Step("Then", ONLY_GET, only_they_get, zh="只有“{codes}”得到{kind}“{rule}”，值为“{value}”"),
    Step("Then", HAS_NO_OUTCOME, has_no_outcome, zh="“{code}”没有“{rule}”的结果"),
    Step("Then", NOBODY_HAS, nobody_has, zh="没有人有“{rule}”的结果"),
    Step("Then", GETS_WARNING, gets_warning, zh="“{code}”收到“{rule}”关于“{metric}”的警告"),
]
KEYWORDS_ZH = {"Given": "假如", "When": "当", "Then": "那么", "And": "并且", "But": "但是"}


def vocabulary() -> list[tuple[str, str, str]]:
    """The steps as HR reads them in the help: (keyword, words, example table)."""
    return [(s.keyword, s.pattern, s.table) for s in STEPS]


def match(text: str) -> tuple[Step, dict[str, Any]] | None:
    for step in STEPS:
        found = step.parser.parse(text)
        if found is not None:
            return step, dict(found.named)
    return None


def checked(text: str, source: str) -> str:
    """The scenarios as a rule version keeps them, once they parse and every step is one
    of the vocabulary; raise SpecSyntaxError naming the line otherwise."""
    from engine.scenarios import line_of, normal, read, steps_of

    text = normal(text, source)
    for step in steps_of(read(text, source)):
        if match(step.text) is None:
            line = line_of(text, step)
            raise SpecSyntaxError(msg("%(source)s: line %(line)s: no step has the words "
                                      "%(words)s", source=source, line=line,
                                      words=repr(step.text)), line)
        if step.table is None and "datatable" in inspect.signature(
                match(step.text)[0].fn).parameters:
            raise SpecSyntaxError(msg("%(source)s: line %(line)s: the step %(words)s needs a "
                                      "table below it", source=source,
                                      line=line_of(text, step), words=repr(step.text)),
                                  line_of(text, step))
    return text


_FIELD = re.compile(r"\{(\w+)\}")


def parts(text: str, lang: str = "en") -> list[tuple[str, str]] | None:
    """A step's words cut into ("text", words) and (field name, value) pieces, in the
    reader's language, so a page can show the values apart or as inputs; None when no
    step of the vocabulary has these words."""
    found = match(text)
    if found is None:
        return None
    step, values = found
    template = step.zh if lang == "zh" and step.zh else step.pattern
    out: list[tuple[str, str]] = []
    for i, piece in enumerate(_FIELD.split(template)):
        if i % 2:
            out.append((piece, values[piece]))
        elif piece:
            out.append(("text", piece))
    return out


def with_values(text: str, values: Mapping[str, str]) -> str:
    """The step's words with some of its values replaced (the vocabulary's own order)."""
    found = match(text)
    if found is None:
        return text
    step, old = found
    return step.pattern.format(**{**old, **{k: v for k, v in values.items() if k in old}})


# --- the runner ---------------------------------------------------------------------------------

_KEYWORDS = {"Context": "Given", "Action": "When", "Outcome": "Then"}


@dataclass
class StepResult:
    keyword: str
    text: str
    status: str = "skipped"  # passed, failed, skipped
    table: list[list[str]] | None = None
    index: int | None = None  # the scenario's step it is; None for a background step


@dataclass
class ScenarioResult:
    name: str
    source: str
    line: int
    steps: list[StepResult] = field(default_factory=list)
    expected: str | None = None
    actual: str | None = None
    error: str | None = None
    where: Where | None = None
    figures: dict[str, str] | None = None  # what the failed step would need to hold
    example: dict[str, str] = field(default_factory=dict)  # an outline's row, by column

    @property
    def passed(self) -> bool:
        return self.error is None and self.expected is None

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def inputs(self) -> list[StepResult]:
        """The steps that give a table (the results), as the scenario ran them."""
        return [s for s in self.steps if s.table]

    @property
    def acceptable(self) -> bool:
        """Whether HR can take the new figures into the scenario with one click."""
        step = self.failed_step
        return bool(self.figures) and step is not None and step.index is not None \
            and self.where is not None


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
    return [p for p, _, _ in expand(text, source)]


def _table(step: Mapping[str, Any]) -> list[list[str]] | None:
    table = (step.get("argument") or {}).get("dataTable")
    if not table:
        return None
    return [[c["value"] for c in row["cells"]] for row in table["rows"]]


def run_scenario(session: Session, pickle: Mapping[str, Any], source: str,
                 where: Where | None = None, indexes: list[int | None] | None = None
                 ) -> ScenarioResult:
    """Run one expanded scenario on a session of its own database."""
    indexes = indexes or [None] * len(pickle["steps"])
    result = ScenarioResult(pickle["name"], source, pickle.get("location", {}).get("line", 0),
                            [StepResult(_KEYWORDS.get(s.get("type"), "*"), s["text"],
                                        table=_table(s), index=i)
                             for s, i in zip(pickle["steps"], indexes, strict=True)],
                            where=where)
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
        if "datatable" in params:
            if shown.table is None:
                shown.status = "failed"
                result.error = "this step needs a table below it"
                return result
            args["datatable"] = shown.table
        for name in params:
            if name in state and name not in args:
                args[name] = state[name]
        try:
            value = definition.fn(**args)
        except SpecFailure as exc:
            shown.status = "failed"
            result.expected, result.actual = exc.expected, exc.actual
            result.figures = exc.figures
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
    """A migrated SQLite file with the catalog, the levels and the draft rule set.

    Each scenario gets a fresh copy of it, always at the same path: one URL keeps one
    engine (engine.db.get_engine) and with it SQLAlchemy's cache of compiled statements,
    so the statements a run makes are compiled once per gate, not once per scenario.
    """

    def __init__(self, session: Session, draft: Mapping[str, Any]):
        from engine import db
        from engine.models import Level, Metric
        from engine.rulebook import save_rule

        self.dir = Path(tempfile.mkdtemp(prefix="laurel-specs-"))
        self.template = self.dir / "template.db"
        shutil.copy(empty_schema(), self.template)
        url = f"sqlite:///{self.template}"
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
        self.path = self.dir / "scenario.db"
        self.url = f"sqlite:///{self.path}"
        # a scratch copy need not survive a crash: no waiting for the disk at commit (the
        # engine is kept for the URL, its listener with it: engine.db.fresh_sqlite_copy)
        event.listen(db.get_engine(self.url), "connect", _unsynchronised)

    def session(self) -> Session:
        """A session on a fresh copy of the template (the previous scenario's is gone)."""
        from engine import db

        db.fresh_sqlite_copy(self.template, self.path)
        s = db.make_sessionmaker(self.url)()
        s.info["actor"] = ACTOR
        s.info["audit_off"] = True
        return s

    def close(self) -> None:
        _dispose(self.url)
        shutil.rmtree(self.dir, ignore_errors=True)


def _unsynchronised(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA synchronous=OFF")


def _dispose(url: str) -> None:
    from engine import db

    engine = db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def empty_schema() -> Path:
    """An empty SQLite database migrated to the newest revision, made once per version of
    the migrations and kept in the temporary directory: migrating one takes longer than a
    gate's scenarios. It is made under another name and renamed into place, so a
    concurrent gate never copies a half-made file."""
    from engine import db

    digest = hashlib.sha256()
    for path in sorted((db.PROJECT_ROOT / "migrations").rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    target = Path(tempfile.gettempdir()) / f"laurel-schema-{digest.hexdigest()[:16]}.db"
    if not target.is_file():
        work = Path(tempfile.mkdtemp(prefix="laurel-schema-"))
        try:
            made = work / "schema.db"
            url = f"sqlite:///{made}"
            try:
                db.upgrade_schema(url)
            finally:
                _dispose(url)
            made.replace(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def feature_text(key: str, features: Path = FEATURES) -> str | None:
    """The scenarios of the reference library's policy (``features/KEY.feature``)."""
    path = features / f"{key}.feature"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def run_gate(session: Session, draft: Mapping[str, Any], text: str,
             source: str | None = None) -> GateReport:
    """Run a rule version's scenarios against the draft rule set.

    Nothing is written to the session's database. Scenarios that do not parse are a
    SpecSyntaxError (a LaurelError), before anything runs.
    """
    from engine.scenarios import read

    t0 = time.perf_counter()
    source = source or f"{draft['key']}.feature"
    expanded = expand(text, source)
    feature = read(text, source) if expanded else None
    report = GateReport()
    if not expanded:
        return report
    scratch = ScratchDatabase(session, draft)
    try:
        for pickle, where, indexes in expanded:
            s = scratch.session()
            try:
                result = run_scenario(s, pickle, source, where, indexes)
                result.example = example_row(feature, where)
                report.scenarios.append(result)
            finally:
                s.rollback()
                s.close()
    finally:
        scratch.close()
    report.seconds = time.perf_counter() - t0
    return report
