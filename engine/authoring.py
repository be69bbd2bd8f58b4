"""Policy authoring: drafts, the second pair of eyes, version diffs, try-it and impact.

A rule changes through versions (engine.rulebook.save_rule): saving a changed rule writes a
new draft version. An hr_admin asks to publish a draft; another hr_admin approves it, and
only then is it published. Both steps run the policy's scenarios (engine.specs) against
the draft rule set first: a failing scenario blocks them. Trying a draft on one employee
and previewing its impact on a past period evaluate the draft rule set exactly as a run
would (engine.runs with the draft's documents) and store nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import isolate, periods
from engine.conditions import describe
from engine.db import audit
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.models import Period, Rule, RuleScenario, User
from engine.rulebook import publish_rule, published_rules, save_rule
from engine.specs import GateReport, parse_scenarios, run_gate

ZERO = Decimal("0.00")
AUTHOR_ROLE = "hr_admin"


class PublishBlocked(LaurelError):
    """A publish request or approval stopped by a failing scenario; carries the report."""

    def __init__(self, rule: Rule, report: GateReport):
        self.rule, self.report = rule, report
        failed = report.failures[0]
        step = failed.failed_step
        where = f"{step.keyword} {step.text}" if step else failed.name
        detail = (f"expected {failed.expected}, found {failed.actual}" if failed.expected
                  else failed.error or "")
        super().__init__(f"rule {rule.key} v{rule.version}: {len(report.failures)} scenario(s) "
                         f"fail, first '{failed.name}' at '{where}': {detail}")


# --- who may author -------------------------------------------------------------------------


def _require_author(session: Session, actor: str) -> User:
    user = session.scalar(select(User).where(User.email == actor, User.active.is_(True)))
    if user is None or user.role != AUTHOR_ROLE:
        raise PermissionDenied(f"{actor} is not an hr_admin: only HR administrators change "
                               "and publish policies")
    return user


def get_version(session: Session, key: str, version: int) -> Rule:
    rule = session.scalar(select(Rule).where(Rule.key == key, Rule.version == version))
    if rule is None:
        raise NotFound(f"rule {key} v{version} does not exist")
    return rule


def versions(session: Session, key: str) -> list[Rule]:
    """Every version of a rule, newest first."""
    return list(session.scalars(select(Rule).where(Rule.key == key)
                                .order_by(Rule.version.desc())))


def current_published(session: Session, key: str) -> Rule | None:
    return session.scalar(select(Rule).where(Rule.key == key, Rule.status == "published"))


# --- drafts and HR's scenarios ---------------------------------------------------------------


def save_draft(session: Session, doc: Mapping[str, Any], actor: str) -> tuple[Rule, bool]:
    """Validate and store the rule as a new draft version unless nothing changed.

    Editing a published rule gives a new draft; the published version stays in force
    until the draft is approved. Raises RuleError naming the field and row.
    """
    _require_author(session, actor)
    rule, created = save_rule(session, doc, f"rule {doc.get('key') or ''}".strip())
    if created:
        rule.created_by = actor
        session.flush()
    return rule, created


def scenarios_of(session: Session, key: str) -> str:
    row = session.scalar(select(RuleScenario).where(RuleScenario.rule_key == key))
    return row.text if row else ""


def save_scenarios(session: Session, key: str, text: str, actor: str) -> bool:
    """Keep HR's scenarios of a policy; they must parse. Returns whether they changed."""
    _require_author(session, actor)
    text = text.replace("\r\n", "\n").strip()
    parse_scenarios(text, "scenarios written in the back office")
    row = session.scalar(select(RuleScenario).where(RuleScenario.rule_key == key))
    if row is None:
        if not text:
            return False
        row = RuleScenario(rule_key=key, text="")
        session.add(row)
    if row.text == text:
        return False
    row.text, row.updated_by, row.updated_at = text, actor, dt.datetime.now(dt.UTC)
    session.flush()
    return True


def check_scenarios(session: Session, rule: Rule) -> GateReport:
    """Run the policy's feature file and HR's scenarios against the draft rule set (in a
    child process where isolation is on: engine.isolate)."""
    return isolate.run(session, _gate, dict(rule.definition), scenarios_of(session, rule.key))


def _gate(session: Session, definition: dict[str, Any], scenarios: str) -> GateReport:
    return run_gate(session, definition, scenarios)


# --- the second pair of eyes ------------------------------------------------------------------


def request_publish(session: Session, rule: Rule, actor: str) -> GateReport:
    """Ask another hr_admin to publish this draft; its scenarios must pass first."""
    _require_author(session, actor)
    if rule.status != "draft":
        raise LaurelError(f"rule {rule.key} v{rule.version} is {rule.status}, not a draft")
    report = check_scenarios(session, rule)
    if not report.passed:
        raise PublishBlocked(rule, report)
    rule.publish_requested_by = actor
    rule.publish_requested_at = dt.datetime.now(dt.UTC)
    audit(session, "request", "rule", rule.id, summary=f"publish {rule.key} v{rule.version}",
          after={"scenarios": len(report.scenarios)}, actor=actor)
    session.flush()
    return report


def withdraw_request(session: Session, rule: Rule, actor: str) -> None:
    """Take back a publish request (the draft stays, to be changed or asked again)."""
    _require_author(session, actor)
    if rule.status != "draft" or rule.publish_requested_by is None:
        raise LaurelError(f"rule {rule.key} v{rule.version} awaits no approval")
    rule.publish_requested_by = rule.publish_requested_at = None
    session.flush()


def approve(session: Session, rule: Rule, actor: str) -> GateReport:
    """Publish a requested draft on the approval of another hr_admin.

    Neither who asked to publish nor who wrote the version may approve it. The scenarios
    run again: the published rules may have changed since the request.
    """
    _require_author(session, actor)
    if rule.status != "draft" or rule.publish_requested_by is None:
        raise LaurelError(f"rule {rule.key} v{rule.version} awaits no approval: ask to "
                          "publish it first")
    if actor in (rule.publish_requested_by, rule.created_by):
        raise PermissionDenied(f"rule {rule.key} v{rule.version}: {actor} wrote it or asked "
                               "to publish it; another hr_admin approves it")
    report = check_scenarios(session, rule)
    if not report.passed:
        raise PublishBlocked(rule, report)
    publish_rule(session, rule)
    rule.approved_by, rule.approved_at = actor, dt.datetime.now(dt.UTC)
    audit(session, "approve", "rule", rule.id, summary=f"published {rule.key} v{rule.version}",
          after={"requested_by": rule.publish_requested_by}, actor=actor)
    session.flush()
    return report


def awaiting_approval(session: Session) -> list[Rule]:
    return list(session.scalars(select(Rule).where(
        Rule.status == "draft", Rule.publish_requested_by.is_not(None))
        .order_by(Rule.publish_requested_at)))


# --- comparing versions -----------------------------------------------------------------------

_ACTION_LABELS = {"type": "Amount or value", "amount": "Amount", "rate": "Rate",
                  "base": "Of metric", "per": "Per unit of", "metric": "Tier metric",
                  "value": "Value", "start": "PIP starts", "months": "PIP months",
                  "target": "PIP target"}


def _words(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _band(tier: Mapping[str, Any]) -> str:
    lo, hi = tier.get("from"), tier.get("to")
    if lo is None and hi is None:
        return "any value"
    if lo is None:
        return f"below {hi}"
    if hi is None:
        return f"{lo} and above"
    return f"{lo} to below {hi}"


def readable(definition: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The definition as (field, words) lines, in the editor's order: no JSON."""
    d = definition
    out = [("Key", d.get("key", "")), ("Name", d.get("name", "")),
           ("Description", d.get("description") or ""), ("Kind", d.get("kind", "")),
           ("Period kind", d.get("period_kind", ""))]
    scope = d.get("scope") or {}
    for f, label in (("team_stage", "Team stage"), ("level", "Level"), ("region", "Region")):
        out.append((f"Scope: {label}", _words(scope.get(f)) or "all"))
    out.append(("When", describe(d.get("when"))))
    action = d.get("action") or {}
    for k in ("type", "amount", "rate", "base", "per", "metric", "value", "months", "target"):
        if k in action:
            out.append((_ACTION_LABELS[k], _words(action[k])))
    for i, tier in enumerate(action.get("tiers") or [], start=1):
        out.append((f"Tier {i}", f"{_band(tier)}: rate {tier.get('rate')}"))
    for i, row in enumerate(action.get("rows") or [], start=1):
        out.append((f"Row {i}", f"{row.get('value')} when {describe(row.get('when'))}"))
    out.append(("Holds payouts", _words(bool(d.get("hold")))))
    out.append(("Effective from", _words(d.get("effective_from")) or "always"))
    out.append(("Effective to", _words(d.get("effective_to")) or "open-ended"))
    return out


@dataclass
class DiffLine:
    field: str
    left: str
    right: str

    @property
    def changed(self) -> bool:
        return self.left != self.right


def diff_definitions(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[DiffLine]:
    """Field by field, both versions side by side (a field only one has shows empty)."""
    a, b = dict(readable(left)), dict(readable(right))
    names = list(a)
    for name in b:
        if name not in a:
            names.append(name)
    order = {n: i for i, n in enumerate(names)}
    # Tiers and rows of the longer version sit after the shorter's, before "Holds payouts".
    tail = ("Holds payouts", "Effective from", "Effective to")
    names.sort(key=lambda n: (n in tail, tail.index(n) if n in tail else order[n]))
    return [DiffLine(n, a.get(n, ""), b.get(n, "")) for n in names]


# --- the draft rule set: try it, preview its impact -------------------------------------------


def draft_documents(session: Session, draft: Mapping[str, Any], period: Period
                    ) -> list[dict[str, Any]]:
    """The rules a run of the period would use, with the draft replacing its key.

    The draft applies whatever its effective dates: a preview shows what it would do.
    """
    if draft["period_kind"] != period.kind:
        raise LaurelError(f"rule {draft['key']} is a {draft['period_kind']} rule; choose a "
                          f"{draft['period_kind']} period, not {period.code}")
    rules = published_rules(session, period.kind, on=period.end)
    docs = [dict(r.definition) for r in rules if r.key != draft["key"]]
    return sorted([*docs, dict(draft)], key=lambda d: d["key"])


@dataclass
class TriedOutcome:
    rule_key: str
    kind: str
    amount: Decimal | None
    value: str | None
    status: str | None
    words: list[str]
    explanation: dict[str, Any]
    from_draft: bool


def try_rule(session: Session, draft: Mapping[str, Any], period_code: str,
             employee_code: str) -> list[TriedOutcome]:
    """Evaluate the draft rule set for one employee in one period; store nothing (in a
    child process where isolation is on: engine.isolate)."""
    return isolate.run(session, _try_rule, dict(draft), period_code, employee_code)


def _try_rule(session: Session, draft: Mapping[str, Any], period_code: str,
              employee_code: str) -> list[TriedOutcome]:
    from engine.compiler import Session as EngineSession
    from engine.facts import build_facts
    from engine.runs import compile_for, evaluate_employee
    from engine.statements import explain_in_words

    period = periods.require(session, period_code)
    compiled, _ = compile_for(session, period, draft_documents(session, draft, period))
    # The whole population: top-N% and team figures need everyone's facts.
    facts = build_facts(session, period, sorted(compiled.population))
    ef = next((f for f in facts if f.code == employee_code), None)
    if ef is None:
        raise NotFound(f"employee {employee_code} has no results in {period.code}")
    return [TriedOutcome(o["rule_key"], o["kind"], o["amount"], o["value"], o["status"],
                         explain_in_words(o["kind"], o["explanation"]), o["explanation"],
                         o["rule_key"] == draft["key"])
            for o in evaluate_employee(EngineSession(compiled), ef, period, compiled)]


@dataclass
class EmployeeImpact:
    code: str
    name: str
    before: Decimal
    after: Decimal
    changes: list[str] = field(default_factory=list)

    @property
    def delta(self) -> Decimal:
        return self.after - self.before


@dataclass
class Impact:
    period: str
    employees: int
    changed: list[EmployeeImpact]
    by_kind: dict[str, tuple[Decimal, Decimal]]  # kind -> (before, after)
    rows: list[dict[str, Any]]  # outcome by outcome: as statements.diff_runs gives them

    @property
    def total_before(self) -> Decimal:
        return sum((b for b, _ in self.by_kind.values()), ZERO)

    @property
    def total_after(self) -> Decimal:
        return sum((a for _, a in self.by_kind.values()), ZERO)

    @property
    def total_delta(self) -> Decimal:
        return self.total_after - self.total_before


def _keyed(outcomes: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for o in outcomes:
        key = o["rule_key"] if o["kind"] != "warning" else f"{o['rule_key']} (warning: " \
            f"{o['value']})"
        out[(o["employee_code"], key)] = o
    return out


def _said(o: dict[str, Any] | None) -> str:
    if o is None:
        return "nothing"
    if o["amount"] is not None:
        return f"{o['amount']:.2f}" + (f" {o['status']}" if o["status"] != "payable" else "")
    return o["value"] or o["kind"]


def impact_preview(session: Session, draft: Mapping[str, Any], period_code: str) -> Impact:
    """Shadow-run the period with the published rules and with the draft rule set.

    Stores nothing. Amounts count whatever their status (payable or held): the cost if
    every hold were dismissed. Runs in a child process where isolation is on.
    """
    return isolate.run(session, _impact_preview, dict(draft), period_code)


def _impact_preview(session: Session, draft: Mapping[str, Any], period_code: str) -> Impact:
    from engine.models import Employee
    from engine.runs import evaluate_period

    period = periods.require(session, period_code)
    before, employees, *_ = evaluate_period(session, period)
    after, *_ = evaluate_period(session, period,
                                documents=draft_documents(session, draft, period))
    a, b = _keyed(before), _keyed(after)
    by_kind: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for o in before:
        if o["amount"] is not None:
            by_kind[o["kind"]][0] += o["amount"]
    for o in after:
        if o["amount"] is not None:
            by_kind[o["kind"]][1] += o["amount"]
    per: dict[str, EmployeeImpact] = {}
    rows = []
    names = dict(session.execute(select(Employee.code, Employee.name)).all())
    for k in sorted(set(a) | set(b)):
        old, new = a.get(k), b.get(k)
        if old is not None and new is not None and \
                (old["amount"], old["value"], old["status"]) == \
                (new["amount"], new["value"], new["status"]):
            continue
        code = k[0]
        row = new or old
        delta = (new["amount"] if new and new["amount"] is not None else ZERO) - \
            (old["amount"] if old and old["amount"] is not None else ZERO)
        rows.append({"employee_code": code, "rule_key": row["rule_key"], "kind": row["kind"],
                     "change": "added" if old is None else "removed" if new is None
                     else "changed", "before": old, "after": new, "delta": delta})
        emp = per.setdefault(code, EmployeeImpact(code, names.get(code, ""), ZERO, ZERO))
        emp.changes.append(f"{k[1]}: {_said(old)} -> {_said(new)}")
    for code, emp in per.items():
        emp.before = sum((o["amount"] for o in before if o["employee_code"] == code
                          and o["amount"] is not None), ZERO)
        emp.after = sum((o["amount"] for o in after if o["employee_code"] == code
                         and o["amount"] is not None), ZERO)
    changed = sorted(per.values(), key=lambda e: (-abs(e.delta), e.code))
    return Impact(period.code, employees, changed,
                  {k: (v[0], v[1]) for k, v in sorted(by_kind.items())}, rows)


def preview_periods(session: Session, period_kind: str) -> list[Period]:
    """Periods of the kind that have results, newest first: what a preview can run on."""
    from engine.models import Result

    codes = set(session.scalars(select(Period.code).where(
        Period.id.in_(select(Result.period_id).distinct()))))
    codes |= {parent for code in list(codes) for parent in periods.parents(code)}
    return list(session.scalars(select(Period).where(Period.kind == period_kind,
                                                     Period.code.in_(codes))
                                .order_by(Period.start.desc())))
