"""Policy authoring: drafts, scenarios, the second pair of eyes, version diffs, try-it, impact.

A rule changes through versions (engine.rulebook.save_rule): saving a changed rule writes a
new draft version, which carries its scenarios (engine.scenarios). An hr_admin asks to
publish a draft; another hr_admin approves it, and only then is it published. Both steps
run the version's scenarios (engine.specs) against the draft rule set first: a failing
scenario blocks them, and a version without scenarios cannot be published. Where a
scenario fails on a new figure (an amount, a rating), HR can accept the figure into the
draft's scenarios. Trying a draft on one employee and previewing its impact on past
periods evaluate the draft rule set exactly as a run would (engine.runs with the draft's
documents) and store nothing; the preview compares with what the period's last approved
or locked run stored.
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

from engine import isolate, periods, rollup, scenarios, wording
from engine.db import audit
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.messages import msg
from engine.models import Period, Rule, User
from engine.rulebook import publish_rule, published_rules, save_rule
from engine.specs import GateReport, checked, run_gate

ZERO = Decimal("0.00")
AUTHOR_ROLE = "hr_admin"


class PublishBlocked(LaurelError):
    """A publish request or approval stopped by a failing scenario; carries the report."""

    def __init__(self, rule: Rule, report: GateReport):
        self.rule, self.report = rule, report
        if not report.scenarios:
            super().__init__(f"rule {rule.key} v{rule.version} has no scenario: write one "
                             "(or make one from try-it) before asking to publish it")
            return
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
        raise PermissionDenied(msg("%(actor)s is not an hr_admin: only HR administrators change "
                                   "and publish policies", actor=actor))
    return user


def get_version(session: Session, key: str, version: int) -> Rule:
    rule = session.scalar(select(Rule).where(Rule.key == key, Rule.version == version))
    if rule is None:
        raise NotFound(msg("rule %(key)s v%(version)s does not exist", key=key, version=version))
    return rule


def versions(session: Session, key: str) -> list[Rule]:
    """Every version of a rule, newest first."""
    return list(session.scalars(select(Rule).where(Rule.key == key)
                                .order_by(Rule.version.desc())))


def current_published(session: Session, key: str) -> Rule | None:
    return session.scalar(select(Rule).where(Rule.key == key, Rule.status == "published"))


# --- drafts and their scenarios ---------------------------------------------------------------


def save_draft(session: Session, doc: Mapping[str, Any], actor: str,
               base: Rule | None = None, scenarios: str | None = None) -> tuple[Rule, bool]:
    """Validate and store the rule as a new draft version unless nothing changed.

    ``base`` is the version the change starts from (its scenarios come along unless
    ``scenarios`` are given). Editing a published rule gives a new draft; the published
    version stays in force until the draft is approved. Raises RuleError naming the field
    and row.
    """
    _require_author(session, actor)
    if scenarios is not None:
        scenarios = checked(scenarios, msg("scenarios of %(key)s",
                                           key=doc.get("key") or "the rule"))
    rule, created = save_rule(session, doc, f"rule {doc.get('key') or ''}".strip(),
                              scenarios=scenarios, base=base)
    if created:
        rule.created_by = actor
        session.flush()
    return rule, created


def save_scenarios(session: Session, rule: Rule, text: str, actor: str) -> Rule:
    """Give a version new scenarios; they must parse and use the vocabulary's steps.

    A draft nobody asked to publish yet holds them itself; any other version gets a new
    draft version with the same rule and these scenarios. Returns the version that holds
    them (the same when nothing changed).
    """
    _require_author(session, actor)
    text = checked(text, msg("scenarios of %(key)s", key=rule.key))
    if scenarios.same(rule.scenarios or "", text) and rule.scenarios == text:
        return rule
    if rule.status == "draft" and rule.publish_requested_by is None:
        before = scenarios.count(rule.scenarios or "")
        rule.scenarios = text
        audit(session, "update", "rule", rule.id,
              summary=msg("scenarios of %(key)s v%(v)s", key=rule.key, v=rule.version),
              before={"scenarios": before}, after={"scenarios": scenarios.count(text)},
              actor=actor)
        session.flush()
        return rule
    if rule.status == "draft":
        raise LaurelError(msg("rule %(key)s v%(version)s waits for approval: withdraw the "
                              "request before changing its scenarios", key=rule.key,
                              version=rule.version))
    new, _ = save_draft(session, dict(rule.definition), actor, base=rule, scenarios=text)
    return new


def discard(session: Session, rule: Rule, actor: str) -> None:
    """Set a draft aside: it stays in the versions, marked discarded, and is never
    published; the next change starts from the published version again."""
    _require_author(session, actor)
    if rule.status != "draft":
        raise LaurelError(msg("rule %(key)s v%(version)s is %(status)s; only a draft can be "
                              "discarded", key=rule.key, version=rule.version, status=rule.status))
    rule.status = "discarded"
    rule.publish_requested_by = rule.publish_requested_at = None
    audit(session, "discard", "rule", rule.id,
          summary=msg("discarded %(key)s v%(v)s", key=rule.key, v=rule.version),
          actor=actor)
    session.flush()


def starting_version(session: Session, key: str, version: int | None = None) -> Rule:
    """The version an edit starts from: the one asked for, else the published one, else
    the newest that is not discarded."""
    if version is not None:
        return get_version(session, key, version)
    found = current_published(session, key) or next(
        (r for r in versions(session, key) if r.status != "discarded"), None)
    if found is None:
        raise NotFound(msg("rule %(key)s does not exist", key=key))
    return found


def renamed(text: str, old_key: str, new_key: str) -> str:
    """A copy's scenarios: the steps that name the old rule name the copy."""
    return text.replace(f'"{old_key}"', f'"{new_key}"')


@dataclass(frozen=True)
class Acceptance:
    """A new figure HR accepts: the step of the scenario (and example row) it goes into."""

    where: scenarios.Where
    step: int
    figures: dict[str, str]


def accept_figures(session: Session, rule: Rule, accepted: list[Acceptance], actor: str
                   ) -> Rule:
    """Write the new figures of failing examples into the scenarios (of this draft, or of
    a new draft); returns the version that holds them."""
    from engine.specs import match

    feature = scenarios.read(rule.scenarios or "", msg("scenarios of %(key)s",
                                                                  key=rule.key))
    for a in accepted:
        try:
            step = feature.scenarios[a.where.scenario].steps[a.step]
        except IndexError:
            raise LaurelError(msg("rule %(key)s v%(version)s: the scenarios changed since they "
                                  "were run; run them again", key=rule.key,
                                  version=rule.version)) from None
        found = match(step.text)
        if found is None:
            raise LaurelError(msg("rule %(key)s: no step has the words %(text)s", key=rule.key,
                                  text=repr(step.text)))
        feature = scenarios.with_figures(feature, a.where, a.step, found[0].pattern,
                                         a.figures)
    return save_scenarios(session, rule, scenarios.write(feature), actor)


def check_scenarios(session: Session, rule: Rule, text: str | None = None) -> GateReport:
    """Run the version's scenarios (or ``text``) against the draft rule set (in a child
    process where isolation is on: engine.isolate)."""
    return isolate.run(session, _gate, dict(rule.definition),
                       rule.scenarios if text is None else text)


def _gate(session: Session, definition: dict[str, Any], text: str) -> GateReport:
    return run_gate(session, definition, text)


def _passing(session: Session, rule: Rule) -> GateReport:
    report = check_scenarios(session, rule)
    if not report.scenarios or not report.passed:
        raise PublishBlocked(rule, report)
    return report


# --- the second pair of eyes ------------------------------------------------------------------


def request_publish(session: Session, rule: Rule, actor: str) -> GateReport:
    """Ask another hr_admin to publish this draft; it must have scenarios, and they must
    pass."""
    _require_author(session, actor)
    if rule.status != "draft":
        raise LaurelError(msg("rule %(key)s v%(version)s is %(status)s, not a draft",
                              key=rule.key, version=rule.version, status=rule.status))
    report = _passing(session, rule)
    rule.publish_requested_by = actor
    rule.publish_requested_at = dt.datetime.now(dt.UTC)
    audit(session, "request", "rule", rule.id,
          summary=msg("publish %(key)s v%(v)s", key=rule.key, v=rule.version),
          after={"scenarios": len(report.scenarios)}, actor=actor)
    session.flush()
    return report


def withdraw_request(session: Session, rule: Rule, actor: str) -> None:
    """Take back a publish request (the draft stays, to be changed or asked again)."""
    _require_author(session, actor)
    if rule.status != "draft" or rule.publish_requested_by is None:
        raise LaurelError(msg("rule %(key)s v%(version)s awaits no approval", key=rule.key,
                              version=rule.version))
    rule.publish_requested_by = rule.publish_requested_at = None
    session.flush()


def approve(session: Session, rule: Rule, actor: str) -> GateReport:
    """Publish a requested draft on the approval of another hr_admin.

    Neither who asked to publish nor who wrote the version may approve it. The scenarios
    run again: the published rules may have changed since the request.
    """
    _require_author(session, actor)
    if rule.status != "draft" or rule.publish_requested_by is None:
        raise LaurelError(msg("rule %(key)s v%(version)s awaits no approval: ask to publish it "
                              "first", key=rule.key, version=rule.version))
    if actor in (rule.publish_requested_by, rule.created_by):
        raise PermissionDenied(msg("rule %(key)s v%(version)s: %(actor)s wrote it or asked to "
                                   "publish it; another hr_admin approves it", key=rule.key,
                                   version=rule.version, actor=actor))
    report = _passing(session, rule)
    publish_rule(session, rule)
    rule.approved_by, rule.approved_at = actor, dt.datetime.now(dt.UTC)
    audit(session, "approve", "rule", rule.id,
          summary=msg("published %(key)s v%(v)s", key=rule.key, v=rule.version),
          after={"requested_by": rule.publish_requested_by}, actor=actor)
    session.flush()
    return report


def awaiting_approval(session: Session) -> list[Rule]:
    return list(session.scalars(select(Rule).where(
        Rule.status == "draft", Rule.publish_requested_by.is_not(None))
        .order_by(Rule.publish_requested_at)))


# --- comparing versions -----------------------------------------------------------------------

def readable(definition: Mapping[str, Any], reader: wording.Reader | None = None
             ) -> list[tuple[str, str]]:
    """The definition as (field, words) lines, in the editor's order: no JSON."""
    return wording.rule_lines(definition, reader or wording.Reader())


@dataclass
class DiffLine:
    field: str
    left: str
    right: str

    @property
    def changed(self) -> bool:
        return self.left != self.right


def diff_definitions(left: Mapping[str, Any], right: Mapping[str, Any],
                     reader: wording.Reader | None = None) -> list[DiffLine]:
    """Field by field, both versions side by side (a field only one has shows empty)."""
    reader = reader or wording.Reader()
    a, b = dict(readable(left, reader)), dict(readable(right, reader))
    names = list(a)
    for name in b:
        if name not in a:
            names.append(name)
    order = {n: i for i, n in enumerate(names)}
    # Tiers and rows of the longer version sit after the shorter's, before "Holds payouts".
    tail = tuple(reader.line(n) for n in ("Holds payouts", "Effective from", "Effective to"))
    names.sort(key=lambda n: (n in tail, tail.index(n) if n in tail else order[n]))
    return [DiffLine(n, a.get(n, ""), b.get(n, "")) for n in names]


def _step_words(step: scenarios.Step, lang: str) -> str:
    from engine.specs import KEYWORDS_ZH, parts

    pieces = parts(step.text, lang)
    words = "".join(v for _, v in pieces) if pieces else step.text
    keyword = KEYWORDS_ZH.get(step.keyword, step.keyword) if lang == "zh" else step.keyword
    if step.table:
        rows = ["，".join(f"{h} {v}" for h, v in zip(step.table[0], row, strict=False))
                if lang == "zh" else
                ", ".join(f"{h} {v}" for h, v in zip(step.table[0], row, strict=False))
                for row in step.table[1:]]
        words += (" " if lang != "zh" else "") + "; ".join(rows)
    return f"{keyword} {words}"


def _scenario_words(sc: scenarios.Scenario, lang: str) -> str:
    return " / ".join(_step_words(s, lang) for s in sc.steps)


def diff_scenarios(left: str, right: str, lang: str = "en") -> list[DiffLine]:
    """Scenario by scenario (and example by example), what two versions' scenarios say
    where they differ; an empty list when they say the same."""
    a, b = (scenarios.read(t or "", "scenarios") for t in (left, right))
    zh = lang == "zh"
    label = "场景：" if zh else "Scenario: "
    out: list[DiffLine] = []
    if [_step_words(s, lang) for s in a.background] != [_step_words(s, lang)
                                                        for s in b.background]:
        out.append(DiffLine("背景" if zh else "Background",
                            " / ".join(_step_words(s, lang) for s in a.background),
                            " / ".join(_step_words(s, lang) for s in b.background)))
    unmatched = list(b.scenarios)
    pairs: list[tuple[scenarios.Scenario | None, scenarios.Scenario | None]] = []
    for sc in a.scenarios:
        other = next((o for o in unmatched if o.name == sc.name), None)
        if other is not None:
            unmatched.remove(other)
        pairs.append((sc, other))
    pairs += [(None, o) for o in unmatched]
    for old, new in pairs:
        name = label + (old or new).name  # type: ignore[union-attr]
        if old is None or new is None:
            out.append(DiffLine(name, _scenario_words(old, lang) if old else "",
                                _scenario_words(new, lang) if new else ""))
            continue
        if _scenario_words(old, lang) != _scenario_words(new, lang):
            out.append(DiffLine(name, _scenario_words(old, lang), _scenario_words(new, lang)))
        rows_a = [(ex.header, r) for ex in old.examples for r in ex.rows]
        rows_b = [(ex.header, r) for ex in new.examples for r in ex.rows]
        for i in range(max(len(rows_a), len(rows_b))):
            ra = rows_a[i] if i < len(rows_a) else None
            rb = rows_b[i] if i < len(rows_b) else None
            if ra == rb:
                continue
            said = [("，" if zh else ", ").join(f"{h} {v}" for h, v in zip(*r, strict=False))
                    if r else "" for r in (ra, rb)]
            first = (rb or ra)[1][0] if (rb or ra)[1] else str(i + 1)  # type: ignore[index]
            out.append(DiffLine(f"{name}（{first}）" if zh else f"{name} ({first})", *said))
    return out


# --- the draft rule set: try it, preview its impact -------------------------------------------


def draft_documents(session: Session, draft: Mapping[str, Any], period: Period
                    ) -> list[dict[str, Any]]:
    """The rules a run of the period would use, with the draft replacing its key.

    The draft applies whatever its effective dates: a preview shows what it would do.
    """
    if draft["period_kind"] != period.kind:
        raise LaurelError(msg("rule %(draft)s is a %(kind)s rule; choose a %(kind)s period, "
                              "not %(code)s", draft=draft['key'], kind=draft['period_kind'],
                              code=period.code))
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
             employee_code: str, lang: str = "en") -> list[TriedOutcome]:
    """Evaluate the draft rule set for one employee in one period; store nothing (in a
    child process where isolation is on: engine.isolate). The "why" is in ``lang``."""
    return isolate.run(session, _try_rule, dict(draft), period_code, employee_code, lang)


def _try_rule(session: Session, draft: Mapping[str, Any], period_code: str,
              employee_code: str, lang: str = "en") -> list[TriedOutcome]:
    from engine.compiler import Session as EngineSession
    from engine.facts import build_facts
    from engine.runs import compile_for, evaluate_employee
    from engine.statements import explain_in_words, reader

    period = periods.require(session, period_code)
    compiled, _ = compile_for(session, period, draft_documents(session, draft, period))
    # The whole population: top-N% and team figures need everyone's facts.
    facts = build_facts(session, period, sorted(compiled.population))
    ef = next((f for f in facts if f.code == employee_code), None)
    if ef is None:
        raise NotFound(msg("employee %(employee_code)s has no results in %(code)s",
                           employee_code=employee_code, code=period.code))
    r = reader(session, lang)
    return [TriedOutcome(o["rule_key"], o["kind"], o["amount"], o["value"], o["status"],
                         explain_in_words(o["kind"], o["explanation"], lang, r.label,
                                          dict(r.types)),
                         o["explanation"], o["rule_key"] == draft["key"])
            for o in evaluate_employee(EngineSession(compiled), ef, period, compiled)]


def scenario_from_try(session: Session, draft: Mapping[str, Any], period_code: str,
                      employee_code: str) -> str:
    """A first scenario for the draft from trying it: the employee, their results of the
    period (and of the months or quarters below it), the run, and what the draft gave.

    Only this employee is in the scenario: where the rule compares with the others (a top
    share, team figures), the gate may find another figure, which HR then accepts.
    """
    from engine import specs
    from engine.models import Employee, Metric, ResultRow

    period = periods.require(session, period_code)
    employee = session.scalar(select(Employee).where(Employee.code == employee_code))
    if employee is None:
        raise NotFound(msg("employee %(employee_code)s does not exist",
                           employee_code=employee_code))
    team = employee.team
    team_name = team.name
    keys = {str(i): k for i, k in session.execute(select(Metric.id, Metric.key))}
    rows = [(code, key, value) for code, values in session.execute(
        select(Period.code, ResultRow.values).join(Period, Period.id == ResultRow.period_id)
        .where(ResultRow.employee_id == employee.id, Period.start >= period.start,
               Period.end <= period.end))
        for key, value in rollup.row_values(values, keys).items()]
    if not rows:
        raise NotFound(msg("employee %(employee_code)s has no results in %(code)s",
                           employee_code=employee_code, code=period.code))
    metrics = sorted({k for _, k, _ in rows})
    by_period: dict[str, dict[str, str]] = defaultdict(dict)
    for code, key, value in rows:
        by_period[code][key] = format(value.normalize(), "f") if value % 1 else \
            format(value.quantize(Decimal(1)), "f")
    table = [["period", "employee", *metrics]]
    for code in sorted(by_period, key=lambda c: (len(c), c)):
        table.append([code, employee.code, *(by_period[code].get(m, "") for m in metrics)])
    steps = []
    if team.stage:
        steps.append(scenarios.Step("Given", specs.TEAM_AT_STAGE.format(team=team_name,
                                                                        stage=team.stage)))
    steps.append(scenarios.Step("And" if steps else "Given", specs.ONE_EMPLOYEE.format(
        code=employee.code, level=employee.level.code, team=team_name)))
    steps.append(scenarios.Step("And", specs.RESULTS, table))
    steps.append(scenarios.Step("When", specs.RUN_IS_MADE.format(period=period.code)))
    tried = [t for t in try_rule(session, draft, period.code, employee.code) if t.from_draft]
    key = draft["key"]
    thens = []
    for t in tried:
        if t.kind == "warning":
            missing = (t.explanation or {}).get("missing") or t.value or ""
            thens.append(specs.GETS_WARNING.format(code=employee.code, rule=key,
                                                   metric=missing))
        elif t.amount is not None:
            thens.append(specs.RECEIVES.format(code=employee.code, rule=key, kind=t.kind,
                                               amount=f"{t.amount:.2f}", status=t.status))
        elif t.kind == "rating":
            thens.append(specs.IS_RATED.format(code=employee.code, value=t.value))
        else:
            thens.append(specs.GETS_VALUED.format(code=employee.code, kind=t.kind, rule=key,
                                                  value=t.value))
    if not thens:
        thens.append(specs.HAS_NO_OUTCOME.format(code=employee.code, rule=key))
    steps += [scenarios.Step("Then" if i == 0 else "And", text) for i, text in enumerate(thens)]
    return scenarios.write(scenarios.Feature(
        name=draft.get("name") or key,
        scenarios=[scenarios.Scenario(f"{employee.code} in {period.code}", steps)]))


def with_scenario(text: str, added: str) -> str:
    """A version's scenarios with the scenarios of ``added`` after them."""
    if not text.strip():
        return added
    feature = scenarios.read(text, "scenarios")
    feature.scenarios += scenarios.read(added, "scenarios").scenarios
    return scenarios.write(feature)


@dataclass(frozen=True)
class Said:
    """What one outcome gave, as plain data (a page words it in its language)."""

    kind: str
    amount: Decimal | None
    value: str | None
    status: str | None


@dataclass
class Change:
    rule_key: str
    before: Said | None
    after: Said | None


@dataclass
class EmployeeImpact:
    code: str
    name: str
    before: Decimal
    after: Decimal
    changes: list[Change] = field(default_factory=list)

    @property
    def delta(self) -> Decimal:
        return self.after - self.before


@dataclass
class Impact:
    period: str
    run_id: int  # the approved or locked run compared with
    run_status: str
    employees: int
    changed: list[EmployeeImpact]
    by_kind: dict[str, tuple[Decimal, Decimal]]  # kind -> (before, after)
    rows: list[dict[str, Any]]  # outcome by outcome: as statements.diff_runs gives them
    currency: str = "CNY"

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
    """Outcomes by (employee, line): a rule's line, or a warning's; where an employee has
    several lines of one key, and always for the lines a run adds (clawbacks, released
    holds: one per payment they follow), each by its value too, and by its place among
    those of the same value, in a set order (the stored ones come in no order, and pairing
    them by place compared unlike lines)."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for o in outcomes:
        key = o["rule_key"] if o["kind"] != "warning" else f"{o['rule_key']} (warning: " \
            f"{o['value']})"
        found[(o["employee_code"], key)].append(o)
    out = {}
    for (code, key), lines in found.items():
        # the lines a run adds (wording.MOVED_NAMES) by their values even where one, so
        # that one is paired with its like among several on the other side
        if len(lines) == 1 and key not in wording.MOVED_NAMES:
            out[(code, key)] = lines[0]
            continue
        seen: dict[str, int] = defaultdict(int)
        for o in sorted(lines, key=lambda o: (str(o["value"]), str(o["amount"]),
                                              str(o["status"]))):
            seen[str(o["value"])] += 1
            out[(code, f"{key} ({o['value']}, {seen[str(o['value'])]})")] = o
    return out


def _said(o: dict[str, Any] | None) -> Said | None:
    return None if o is None else Said(o["kind"], o["amount"], o["value"], o["status"])


def compared_run(session: Session, period: Period) -> Any:
    """The period's last approved or locked run: what a preview compares with."""
    from engine.models import Run

    return session.scalar(select(Run).where(Run.period_id == period.id,
                                            Run.status.in_(("approved", "locked")))
                          .order_by(Run.id.desc()).limit(1))


def impact_preview(session: Session, draft: Mapping[str, Any], period_codes: list[str]
                   ) -> list[Impact]:
    """Evaluate the draft rule set on each period and compare with what the period's last
    approved or locked run stored.

    Stores nothing. Amounts count whatever their status (payable or held): the cost if
    every hold were dismissed. Runs in a child process where isolation is on.
    """
    return isolate.run(session, _impact_preview, dict(draft), list(period_codes))


def _impact_preview(session: Session, draft: Mapping[str, Any], period_codes: list[str]
                    ) -> list[Impact]:
    return [_impact_of(session, draft, code) for code in period_codes]


def _stored(session: Session, run: Any) -> list[dict[str, Any]]:
    from engine.models import Employee, Outcome

    rows = session.execute(
        select(Employee.code, Outcome.rule_key, Outcome.kind, Outcome.amount, Outcome.value,
               Outcome.status, Outcome.currency)
        .join(Employee, Employee.id == Outcome.employee_id).where(Outcome.run_id == run.id))
    return [{"employee_code": c, "rule_key": k, "kind": kind, "amount": a, "value": v,
             "status": st, "currency": cur} for c, k, kind, a, v, st, cur in rows]


def _impact_of(session: Session, draft: Mapping[str, Any], period_code: str) -> Impact:
    import os

    from engine.models import Employee
    from engine.runs import evaluate_period

    period = periods.require(session, period_code)
    run = compared_run(session, period)
    if run is None:
        raise LaurelError(msg("period %(code)s has no approved or locked run to compare with",
                              code=period.code))
    before = _stored(session, run)
    after, employees, *_ = evaluate_period(session, period,
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
        emp.changes.append(Change(row["rule_key"], _said(old), _said(new)))
    for code, emp in per.items():
        emp.before = sum((o["amount"] for o in before if o["employee_code"] == code
                          and o["amount"] is not None), ZERO)
        emp.after = sum((o["amount"] for o in after if o["employee_code"] == code
                         and o["amount"] is not None), ZERO)
    changed = sorted(per.values(), key=lambda e: (-abs(e.delta), e.code))
    currency = next((o["currency"] for o in [*after, *before] if o.get("currency")),
                    os.environ.get("LAUREL_CURRENCY", "CNY"))
    return Impact(period.code, run.id, run.status, employees, changed,
                  {k: (v[0], v[1]) for k, v in sorted(by_kind.items())}, rows, currency)


def preview_periods(session: Session, period_kind: str) -> list[Period]:
    """Periods of the kind with an approved or locked run, newest first: what a preview
    can compare with (never a period that was not run)."""
    from engine.models import Run

    ran = select(Run.period_id).where(Run.status.in_(("approved", "locked")))
    return list(session.scalars(select(Period).where(Period.kind == period_kind,
                                                     Period.id.in_(ran))
                                .order_by(Period.start.desc())))


def try_periods(session: Session, period_kind: str) -> list[Period]:
    """Periods of the kind that have results, newest first: what try-it can run on."""
    from engine.models import ResultRow

    codes = set(session.scalars(select(Period.code).where(
        Period.id.in_(select(ResultRow.period_id).distinct()))))
    codes |= {parent for code in list(codes) for parent in periods.parents(code)}
    return list(session.scalars(select(Period).where(Period.kind == period_kind,
                                                     Period.code.in_(codes))
                                .order_by(Period.start.desc())))
