"""Clawbacks: a paid commission taken back when the cash is not collected.

An amount rule with ``clawback: {below: 0.5, within: 3, share: 1}`` in its action takes
back ``share`` of what it paid an employee in one of the ``within`` periods of its kind
before this one, when the employee's ``collection_ratio`` (cash collected over contract
value signed) of this period is below ``below``. Each clawback is its own negative line
(rule key ``clawback``) naming the rule, the period it corrects, the run that paid it,
the ratio and the line; what was clawed back from a payment before is taken off, so the
payment is never clawed back below what the rule allows (1 - share of it kept).

What was paid and what was clawed back are read from the approved or locked run of each
earlier period (engine.earlier's rule: payable and held lines), never this period's: a
re-run claws back nothing twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.draws import ordinal
from engine.earlier import COUNTED_RUNS, COUNTED_STATUSES
from engine.exact import exact, round_half_up
from engine.metrics import to_plain
from engine.models import Outcome, Period, Run

KEY = "clawback"  # the rule key of a clawback line
METRIC = "collection_ratio"
CENT = Decimal("0.01")


def candidates(session: Session, period: Any, rules: list[dict[str, Any]]
               ) -> dict[int, list[dict[str, Any]]]:
    """{employee id: [payment]}: each payment of a rule with a clawback in the periods it
    looks back on, with what was clawed back from it before."""
    within = {r["key"]: r["action"]["clawback"] for r in rules
              if (r.get("action") or {}).get("clawback")}
    if not within:
        return {}
    now = ordinal(period.kind, period.start)
    back = max(int(c["within"]) for c in within.values())
    first = _start_of(period.kind, now - back)
    rows = session.execute(
        select(Outcome.employee_id, Outcome.rule_key, Outcome.amount, Outcome.explanation,
               Run.id, Period.code, Period.start)
        .join(Run, Run.id == Outcome.run_id).join(Period, Period.id == Run.period_id)
        .where(Outcome.rule_key.in_([*within, KEY]), Outcome.amount.is_not(None),
               Outcome.status.in_(COUNTED_STATUSES), Run.status.in_(COUNTED_RUNS),
               Period.kind == period.kind, Period.start < period.start,
               Period.start >= first)
        .order_by(Period.start, Run.id, Outcome.id))
    paid: dict[tuple[int, str, str], dict[str, Any]] = {}
    clawed: dict[tuple[int, str, str], Decimal] = {}
    for emp, key, amount, explanation, run_id, code, start in rows:
        if key == KEY:
            c = (explanation or {}).get("clawback") or {}
            ident = (emp, c.get("rule_key"), c.get("period"))
            clawed[ident] = clawed.get(ident, Decimal(0)) - amount
        elif amount > 0 and now - ordinal(period.kind, start) <= int(within[key]["within"]):
            paid[(emp, key, code)] = {"rule_key": key, "period": code, "run_id": run_id,
                                      "paid": amount}
    out: dict[int, list[dict[str, Any]]] = {}
    for (emp, key, code), p in paid.items():
        before = clawed.get((emp, key, code), Decimal(0))
        out.setdefault(emp, []).append({**p, "paid": f"{p['paid']:.2f}",
                                        "clawed_before": f"{before:.2f}"})
    return out


def _start_of(kind: str, n: int) -> dt.date:
    """The first day of the period of a kind numbered ``n`` (draws.ordinal)."""
    if kind == "month":
        return dt.date(n // 12, n % 12 + 1, 1)
    if kind == "quarter":
        return dt.date(n // 4, (n % 4) * 3 + 1, 1)
    return dt.date(n, 1, 1)


def lines(values: dict[str, Any], rules: dict[str, dict[str, Any]],
          payments: list[dict[str, Any]]) -> list[tuple[Decimal, dict[str, Any]]]:
    """(amount, explanation) of each clawback of one employee whose facts are ``values``:
    none while their collection ratio is undefined or not below the rule's line."""
    ratio = values.get(METRIC)
    out = []
    for p in payments:
        rule = rules.get(p["rule_key"])
        if rule is None or ratio is None:
            continue
        claw = rule["action"]["clawback"]
        below = Decimal(claw["below"])
        if exact(ratio) >= exact(below):
            continue
        share = Decimal(claw.get("share") or 1)
        paid, before = Decimal(p["paid"]), Decimal(p["clawed_before"])
        allowed = round_half_up(Fraction(exact(paid)) * Fraction(share), CENT)
        amount = allowed - before
        if amount <= 0:
            continue
        shown = str(to_plain(ratio))
        detail = {**p, "ratio": shown, "below": str(below), "share": str(share),
                  "amount": f"{-amount:.2f}", "kept": f"{paid - allowed:.2f}"}
        out.append((-amount, {
            "rule": "Clawback", "clawback": detail,
            "facts": {METRIC: shown},
            "conditions": [f"{METRIC} {shown} < {below}"],
            "arithmetic": words(detail)}))
    return out


def words(c: dict[str, Any], lang: str = "en") -> str:
    """A clawback in a payroll file's and an analyst's words."""
    from engine.wording import money, pct

    if lang == "zh":
        return (f"因本期回款率 {pct(c['ratio'])} 低于 {pct(c['below'])}，追回 {c['rule_key']} 于 "
                f"{c['period']}（批次 {c['run_id']}）所发 {money(c['paid'])} 的 {pct(c['share'])}："
                f"{money(c['amount'])}" + (f"（此前已追回 {money(c['clawed_before'])}）"
                                           if Decimal(c["clawed_before"]) else ""))
    return (f"clawback of {pct(c['share'])} of the {money(c['paid'])} {c['rule_key']} paid for "
            f"{c['period']} (run {c['run_id']}): collection ratio {pct(c['ratio'])} is below "
            f"{pct(c['below'])}; {money(c['amount'])}"
            + (f" ({money(c['clawed_before'])} clawed back before)"
               if Decimal(c["clawed_before"]) else ""))
