"""Clawbacks: a paid commission taken back when the cash is not collected; and a
commission paid in part on signing, the rest once the cash is collected.

An amount rule with ``clawback: {below: 0.5, within: 3, share: 1}`` in its action takes
back ``share`` of what it paid an employee in one of the ``within`` periods of its kind
before this one, when the employee's ``collection_ratio`` (cash collected over contract
value signed) of this period is below ``below``. Each clawback is its own negative line
(rule key ``clawback``) naming the rule, the period it corrects, the run that paid it,
the ratio and the line; what was clawed back from a payment before is taken off, so the
payment is never clawed back below what the rule allows (1 - share of it kept).

An amount rule with ``on_signing: {share: 0.6, release_at: 0.9}`` pays ``share`` of its
amount in the period (after its floor and caps) and holds the rest; the first later
period whose collection ratio reaches ``release_at`` pays it, as its own line (rule key
``collected_release``) naming the rule and the period it comes from.

What was paid, clawed back, held and released are read from the approved or locked run of each
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
    rows = _earlier_lines(session, period, [*within, KEY],
                          _start_of(period.kind, now - back))
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


def _earlier_lines(session: Session, period: Any, keys: list[str],
                   first: dt.date | None = None) -> Any:
    """(employee, rule key, amount, explanation, run, period code, period start) of the
    rules' counted lines in the earlier periods of the kind (from ``first``)."""
    stmt = (select(Outcome.employee_id, Outcome.rule_key, Outcome.amount, Outcome.explanation,
                   Run.id, Period.code, Period.start)
            .join(Run, Run.id == Outcome.run_id).join(Period, Period.id == Run.period_id)
            .where(Outcome.rule_key.in_(keys), Outcome.amount.is_not(None),
                   Outcome.status.in_(COUNTED_STATUSES), Run.status.in_(COUNTED_RUNS),
                   Period.kind == period.kind, Period.start < period.start)
            .order_by(Period.start, Run.id, Outcome.id))
    if first is not None:
        stmt = stmt.where(Period.start >= first)
    return session.execute(stmt)


# --- paid in part on signing, the rest once collected ---------------------------------------

RELEASE = "collected_release"  # the rule key of a line paying a part held until collected


def defer(action: dict[str, Any], amount: Decimal, calc: dict[str, Any]) -> Decimal:
    """The part of an amount paid on signing (``on_signing: {share, release_at}``); the
    rest, held until the cash is collected, goes into ``calc["on_signing"]``."""
    rule = action.get("on_signing")
    if not rule or amount <= 0:
        return amount
    now = round_half_up(Fraction(exact(amount)) * Fraction(Decimal(rule["share"])), CENT)
    calc["on_signing"] = {"share": str(rule["share"]), "release_at": str(rule["release_at"]),
                          "full": f"{amount:.2f}", "paid": f"{now:.2f}",
                          "held": f"{amount - now:.2f}"}
    return now


def held_until_collected(session: Session, period: Any, rules: list[dict[str, Any]]
                         ) -> dict[int, list[dict[str, Any]]]:
    """{employee id: [part]}: the parts of earlier payments held until collected and not
    released yet, of the rules paid in part on signing."""
    keys = [r["key"] for r in rules if (r.get("action") or {}).get("on_signing")]
    if not keys:
        return {}
    held: dict[tuple[int, str, str], dict[str, Any]] = {}
    released: set[tuple[int, str, str]] = set()
    for emp, key, _, explanation, run_id, code, _ in _earlier_lines(session, period,
                                                                     [*keys, RELEASE]):
        if key == RELEASE:
            r = (explanation or {}).get("collected") or {}
            released.add((emp, r.get("rule_key"), r.get("period")))
        elif ((explanation or {}).get("calc") or {}).get("on_signing"):
            part = explanation["calc"]["on_signing"]
            held[(emp, key, code)] = {"rule_key": key, "period": code, "run_id": run_id,
                                      "held": part["held"], "release_at": part["release_at"]}
    out: dict[int, list[dict[str, Any]]] = {}
    for ident, part in held.items():
        if ident not in released:
            out.setdefault(ident[0], []).append(part)
    return out


def releases(values: dict[str, Any], parts: list[dict[str, Any]]
             ) -> list[tuple[Decimal, dict[str, Any]]]:
    """(amount, explanation) of each held part paid now: the collection ratio of the
    period has reached the line its rule set when it was paid."""
    ratio = values.get(METRIC)
    out = []
    for p in parts:
        if ratio is None or exact(ratio) < exact(Decimal(p["release_at"])):
            continue
        shown = str(to_plain(ratio))
        detail = {**p, "ratio": shown}
        out.append((Decimal(p["held"]), _explained(
            "Collected", "collected", detail, f">= {p['release_at']}", release_words(detail))))
    return out


def _explained(name: str, key: str, detail: dict[str, Any], test: str, text: str
               ) -> dict[str, Any]:
    """The explanation of a clawback or a release: its details under ``key``, the ratio
    read and the test it passed."""
    return {"rule": name, key: detail, "facts": {METRIC: detail["ratio"]},
            "conditions": [f"{METRIC} {detail['ratio']} {test}"], "arithmetic": text}


def release_words(c: dict[str, Any], lang: str = "en") -> str:
    """A held part paid once collected, in a payroll file's and an analyst's words."""
    from engine.wording import money, pct

    if lang == "zh":
        return (f"回款率 {pct(c['ratio'])} 达到 {pct(c['release_at'])}，发放 {c['rule_key']} 于 "
                f"{c['period']}（批次 {c['run_id']}）签约时暂缓的 {money(c['held'])}")
    return (f"the {money(c['held'])} of {c['rule_key']} for {c['period']} (run {c['run_id']}) "
            f"held until collected: collection ratio {pct(c['ratio'])} reached "
            f"{pct(c['release_at'])}")


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
        out.append((-amount, _explained("Clawback", "clawback", detail, f"< {below}",
                                        words(detail))))
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
