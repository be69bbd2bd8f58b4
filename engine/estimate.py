"""What if: the pay the published rules would give a salesperson for the figures they type.

A dry evaluation by the engine itself, as a run evaluates: the period's figures as stored,
the salesperson's own replaced by what they typed (a blank field keeps the stored value),
the whole population's facts built from them (team figures and ranks need everyone's
figures, and the others' stay as stored), the published rules of the period's kind
compiled and the salesperson's facts evaluated. Nothing is stored, nothing audited. In the
back office it runs in a child process (engine.isolate), as try-it does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import isolate, periods
from engine.cells import CellError, metric_value, typed_amount, typed_percent
from engine.conditions import facts_read
from engine.errors import LaurelError, NotFound
from engine.messages import msg
from engine.metrics import load_catalog, range_problem
from engine.models import Employee, Metric, Period
from engine.rulebook import published_rules


def open_periods(session: Session) -> list[Period]:
    """The periods an estimate is for: open ones, the latest month first."""
    return list(session.scalars(select(Period).where(Period.status == "open")
                                .order_by(Period.kind != "month", Period.end.desc())))


def inputs(session: Session, period_kind: str) -> list[Metric]:
    """The imported metrics the published rules of the period kind read, directly or
    through a derived metric's formula, in the catalog's order."""
    catalog = load_catalog(session)
    wanted: set[str] = set()
    for rule in published_rules(session, period_kind):
        d = rule.definition or {}
        action = d.get("action") or {}
        wanted.update(facts_read(d.get("when")))
        wanted.update(action[k] for k in ("base", "per", "metric") if action.get(k))
        for row in action.get("rows") or []:
            wanted.update(facts_read(row.get("when")))
    formulas = {f.metric: f.names for f in catalog.derived}
    todo = list(wanted)
    while todo:
        key = todo.pop()
        for name in formulas.get(key, ()):
            if name not in wanted:
                wanted.add(name)
                todo.append(name)
    return [m for m in catalog.metrics.values() if not m.formula and m.key in wanted]


def read_figures(session: Session, typed: dict[str, str], currency: str = "CNY"
                 ) -> dict[str, Decimal]:
    """The typed figures as numbers, read as people type them: an amount ("12,000",
    "CN¥12,000"), a ratio as a percentage ("7" or "7 %"), a count or a score as a
    number; each within its metric's range. LaurelError names the field."""
    metrics = {m.key: m for m in session.scalars(select(Metric).where(
        Metric.formula.is_(None)))}
    out: dict[str, Decimal] = {}
    for key, text in typed.items():
        text = (text or "").strip()
        if not text:
            continue
        metric = metrics.get(key)
        if metric is None:
            raise LaurelError(msg("estimate, field %(key)s: unknown metric", key=key))
        try:
            if metric.type == "money":
                value = typed_amount(text, currency)
            elif metric.type == "ratio":
                value = typed_percent(text)
            else:
                value = metric_value(text.replace(",", ""), metric.type)
        except CellError as err:
            raise LaurelError(msg("estimate, field %(key)s: %(reason)s", key=key,
                                  reason=err.reason)) from None
        problem = range_problem(value, metric.type, metric.min_value, metric.max_value,
                                percent=metric.type == "ratio")  # typed as a percentage
        if problem:
            raise LaurelError(msg("estimate, field %(key)s: %(problem)s", key=key,
                                  problem=problem))
        out[key] = value
    return out


def estimate(session: Session, employee_id: int, period_code: str,
             figures: dict[str, Decimal], lang: str = "en") -> dict[str, Any]:
    """Evaluate the published rules for the employee with these figures (a child process
    where isolation is on); nothing is stored. See _estimate for what comes back."""
    plain = {k: str(v) for k, v in figures.items()}
    return isolate.run(session, _estimate, employee_id, period_code, plain, lang)


def _estimate(session: Session, employee_id: int, period_code: str,
              figures: dict[str, str], lang: str) -> dict[str, Any]:
    """{"period", "figures": the employee's figures used, "lines": [{rule_key, name,
    kind, amount, currency, value, status, words}], "totals": by status}."""
    from engine import plain
    from engine.compiler import Session as EngineSession
    from engine.facts import build_facts
    from engine.rollup import period_figures
    from engine.runs import compile_for, evaluate_employee
    from engine.statements import MONEY_STATUSES

    period = periods.require(session, period_code)
    if period.status != "open":
        raise LaurelError(msg("period %(code)s is locked: estimate an open period",
                              code=period.code))
    employee = session.get(Employee, employee_id)
    if employee is None:
        raise NotFound(msg("employee %(employee_id)s does not exist", employee_id=employee_id))
    compiled, used = compile_for(session, period)
    stored = period_figures(session, period.code)
    own = dict(stored.get(employee_id, {}))
    own.update({k: Decimal(v) for k, v in figures.items()})
    stored[employee_id] = own
    facts = build_facts(session, period, sorted(compiled.population), stored)
    ef = next(f for f in facts if f.employee_id == employee_id)
    outcomes = evaluate_employee(EngineSession(compiled), ef, period, compiled)
    v = plain.voice(session, lang)
    defs = plain.definitions(session, used)
    formulas = plain.formulas_of(session)
    totals = {s: Decimal("0.00") for s in MONEY_STATUSES}
    lines = []
    for o in outcomes:
        if o["amount"] is not None and o["status"] in totals:
            totals[o["status"]] += o["amount"]
        lines.append({"rule_key": o["rule_key"], "kind": o["kind"], "amount": o["amount"],
                      "currency": o["currency"], "value": o["value"], "status": o["status"],
                      "name": plain.rule_name(o["rule_key"], defs, v),
                      "words": plain.line_words(o["kind"], o["explanation"], o["status"],
                                                o["value"], v, defs, formulas, period.kind,
                                                o["rule_key"])})
    return {"period": period.code, "figures": own, "lines": lines, "totals": totals}
