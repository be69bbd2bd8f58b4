"""Compensation runs: load, enrich, evaluate, store; and the outcomes they give.

A run evaluates the published rules whose period kind matches the period. It stores the
content hash of the rule set it used and, for every outcome, its explanation. If any
employee fails, the run fails as a whole: the caller rolls back and records only the
failure (``record_failure``).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine import (
    assignments,
    bulk,
    clawbacks,
    compliance,
    draws,
    earlier,
    followup,
    forks,
    periods,
    pips,
    rollup,
    statements,
    wording,
)
from engine.bulk import quiet_collector
from engine.compiler import CompiledRuleset, Evaluation, Firing, compile_rules, to_fact
from engine.compiler import Session as EngineSession
from engine.conditions import (
    POPULATION_OPS,
    Check,
    conjunction,
    describe,
    facts_read,
    held_checks,
    hole_text,
    leaves,
    population_fields,
)
from engine.db import audit
from engine.errors import NotFound, RunError, RunFailed, RunStale
from engine.exact import exact, from_fraction, product, round_half_up
from engine.facts import EmployeeFacts, build_facts
from engine.messages import msg
from engine.metrics import PLAIN, plain_text, to_plain
from engine.models import (
    LIVE_RUN,
    Adjustment,
    Employee,
    Metric,
    Outcome,
    Period,
    Run,
)
from engine.rulebook import published_rules

CENT = Decimal("0.01")
MONEY_KINDS = ("commission", "bonus")


def currency() -> str:
    return os.environ.get("LAUREL_CURRENCY", "CNY")


def round_money(value: Decimal | Fraction) -> Decimal:
    """Round an exact amount to 0.01, half up (1234.50 x 3% = 37.035 -> 37.04); a zero is
    0.00, never -0.00."""
    return round_half_up(value, CENT)


# The amount column holds 24 digits before the point (engine.models.MONEY).
AMOUNT_LIMIT = Decimal(10) ** 24


def _show(value: Any) -> str:
    if value is None:
        return "undefined"
    return plain_text(value)


@dataclass
class Timings:
    load: float = 0.0
    enrich: float = 0.0
    evaluate: float = 0.0
    store: float = 0.0


@dataclass
class RunResult:
    run: Run | None
    period: Period
    outcomes: list[dict[str, Any]]
    employees: int
    ruleset_hash: str
    timings: Timings = field(default_factory=Timings)
    # Set when results of the period changed while the run was calculated.
    stale: RunStale | None = None

    def summary(self) -> str:
        counts: dict[str, int] = {}
        total = Decimal(0)
        held = Decimal(0)
        for o in self.outcomes:
            counts[o["kind"]] = counts.get(o["kind"], 0) + 1
            if o["amount"] is not None:
                if o["status"] == "held":
                    held += o["amount"]
                else:
                    total += o["amount"]
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no outcomes"
        return (f"period {self.period.code}: {self.employees} employees, "
                f"{len(self.outcomes)} outcomes ({parts}); payable {currency()} {total:.2f}, "
                f"held {currency()} {held:.2f}")


# --- outcomes of one employee --------------------------------------------------------------------


def _explain_facts(names: list[str], values: dict[str, Any],
                   population: set[str] | frozenset[str] = frozenset()
                   ) -> dict[str, str | None]:
    """The facts read, with their values; for a fact the rule ranks (highest, top_share),
    the count strictly higher, N and the company maximum."""
    out: dict[str, str | None] = {}
    for name in names:
        value = values.get(name)
        out[name] = None if value is None else str(to_plain(value))
        higher, n, _ = population_fields(name)
        if name in population and higher in values:
            out[f"{name} (strictly higher)"] = str(to_plain(values[higher]))
            out[f"{name} (defined, N)"] = str(to_plain(values[n]))
            out[f"{name} (company maximum)"] = str(to_plain(values[f"{name}__max"]))
    return out


def _amount(rule: dict[str, Any], firing: Firing, values: dict[str, Any],
            worded: Worded | None = None) -> tuple[Decimal, dict[str, Any]]:
    """Return (amount, its calculation as data) of a money rule; a rule that prorates pays
    the share of the period the employee was employed (active_share) of the exact amount,
    rounded once. The facts it reads: _arithmetic_facts."""
    amount, calc = _full_amount(rule, firing, values, worded or _worded(firing))
    rounded = round_money(amount)
    calc["amount"] = f"{rounded:.2f}"  # a dict _full_amount made for this call
    if not rule["action"].get("prorate"):
        return rounded, calc
    days, period = values["active_days"], values["period_days"]
    share = Fraction(int(days), int(period))
    prorated = round_money(Fraction(exact(amount)) * share)
    calc["prorated"] = {"active_days": str(int(days)), "period_days": str(int(period)),
                        "amount": f"{prorated:.2f}"}
    return prorated, calc


def _arithmetic_facts(action: dict[str, Any]) -> list[str]:
    """The facts the calculation of a money rule's amount reads (_amount)."""
    atype = action["type"]
    if atype == "rate":
        reads = [action["base"]]
    elif atype == "per_unit":
        reads = [action["per"]]
    elif atype == "tiers":
        reads = [action["metric"], action["base"]]
    else:
        reads = []
    return reads + (["active_days", "period_days"] if action.get("prorate") else [])


def _full_amount(rule: dict[str, Any], firing: Firing, values: dict[str, Any], worded: Worded
                 ) -> tuple[Decimal | Fraction, dict[str, Any]]:
    """(exact amount before rounding, calculation) of a money rule; the rates come from
    the firing's words, worked out once a rule set (_worded)."""
    action = rule["action"]
    atype = action["type"]
    if atype == "fixed":
        return Decimal(action["amount"]), {"type": "fixed"}
    if atype == "rate":
        rate, base = worded.factor, values[action["base"]]
        return product(base, rate), {"type": "rate", "rate": worded.factor_text,
                                     "base": action["base"], "base_value": _show(base)}
    if atype == "per_unit":
        unit, per = worded.factor, values[action["per"]]
        return product(per, unit), {"type": "per_unit", "unit": worded.factor_text,
                                    "per": action["per"], "per_value": _show(per)}
    tier = action["tiers"][firing.index - 1]
    rate, base = worded.factor, values[action["base"]]
    metric = action["metric"]
    calc = {"type": "tiers", "metric": metric, "metric_value": _show(values[metric]),
            "tier": firing.index, "from": tier["from"], "to": tier["to"],
            "rate": worded.factor_text, "base": action["base"], "base_value": _show(base)}
    if action.get("mode") == "marginal":
        slices = marginal_slices(action["tiers"], firing.index, base, values[metric])
        amount: Decimal | Fraction = sum((Fraction(s["rate"]) * s["base"] for s in slices),
                                         Fraction(0))
        calc["mode"] = "marginal"
        calc["slices"] = [{"tier": s["tier"], "from": s["from"], "to": s["to"],
                           "rate": s["rate"], "base": _show(from_fraction(s["base"])),
                           "amount": _show(from_fraction(Fraction(s["rate"]) * s["base"]))}
                          for s in slices]
    else:
        amount = product(base, rate)
    return amount, calc


def limited(action: dict[str, Any], amount: Decimal, calc: dict[str, Any],
            earlier: dict[str, Any] | None) -> Decimal:
    """The amount within the rule's floor, cap and annual cap; each limit that changed it
    goes into ``calc["limits"]`` (what it was before, after, and the change).

    The floor applies first, then the cap (the validation keeps the floor below it), then
    the annual cap: what is left of it once ``earlier`` (what the rule paid the employee in
    earlier periods of the year, paid_earlier) is taken off; never below 0, and a negative
    amount (a deduction) is left as it is.
    """
    limits = []

    def apply(name: str, new: Decimal, **more: Any) -> None:
        nonlocal amount
        if new != amount:
            limits.append({"limit": name, "value": f"{Decimal(action[name]):.2f}",
                           "before": f"{amount:.2f}", "after": f"{new:.2f}",
                           "change": f"{new - amount:.2f}", **more})
            amount = new

    if action.get("floor") is not None:
        apply("floor", max(amount, Decimal(action["floor"])))
    if action.get("cap") is not None:
        apply("cap", min(amount, Decimal(action["cap"])))
    if action.get("annual_cap") is not None:
        paid = Decimal((earlier or {}).get("paid") or 0)
        runs = (earlier or {}).get("runs") or []
        calc["annual_cap"] = {"value": f"{Decimal(action['annual_cap']):.2f}",
                              "paid_earlier": f"{paid:.2f}", "runs": runs}
        room = max(Decimal(action["annual_cap"]) - paid, Decimal(0))
        apply("annual_cap", min(amount, room), paid_earlier=f"{paid:.2f}")
    if limits:
        calc["limits"] = limits
        calc["paid"] = f"{amount:.2f}"
    return amount


# What counts as paid for an annual cap: the rule's lines that engine.earlier counts, in
# the earlier periods of the year.


def paid_earlier(session: Session, period: Period, rules: list[dict[str, Any]]
                 ) -> dict[tuple[int, str], dict[str, Any]]:
    """What each rule with an annual cap paid each employee in the earlier periods of the
    period's kind in its calendar year: {(employee id, key): {"paid", "runs"}}."""
    keys = [r["key"] for r in rules if (r.get("action") or {}).get("annual_cap") is not None]
    found = earlier.totals(session, period, keys, since=dt.date(period.start.year, 1, 1))
    return {k: {"paid": f"{v['total']:.2f}", "runs": v["runs"]} for k, v in found.items()}


def marginal_slices(tiers: list[dict[str, Any]], reached: int, base: Decimal,
                    metric: Decimal) -> list[dict[str, Any]]:
    """The base cut into slices by the tier metric, up to the tier reached (1-based).

    The metric is the base or a ratio of it (engine.rulebook checks), so the base at a
    metric level t is t x base / metric, exactly: with attainment 105% of a quota of
    100,000, the slice of tier "80% to below 100%" is 20,000. The first slice starts at
    the first tier's from (0 when it has none). A metric of 0 or below leaves the whole
    base in the tier reached. Each slice's base is an exact Fraction.
    """
    whole = Fraction(exact(base))
    level = Fraction(exact(metric))
    if level <= 0:
        t = tiers[reached - 1]
        return [{"tier": reached, "from": t["from"], "to": t["to"], "rate": str(t["rate"]),
                 "base": whole}]
    per_unit = whole / level  # the base per unit of the metric (the quota, for attainment)
    out = []
    for i, t in enumerate(tiers[:reached], start=1):
        # a band below 0 holds no part of a positive metric
        lo = max(Fraction(Decimal(str(t["from"]))), Fraction(0)) if t["from"] is not None \
            else Fraction(0)
        hi = level if i == reached else max(Fraction(Decimal(str(t["to"]))), Fraction(0))
        out.append({"tier": i, "from": t["from"], "to": t["to"], "rate": str(t["rate"]),
                    "base": whole - lo * per_unit if i == reached else (hi - lo) * per_unit})
    return out


def _firing_ranks(firing: Firing) -> set[str]:
    """The facts a firing's condition ranks among the population (highest, top_share)."""
    if firing.worded is not None:
        return firing.worded.ranks
    return {c["fact"] for c in leaves(firing.condition) if c["op"] in POPULATION_OPS}


def _firing_reads(firing: Firing) -> list[str]:
    """The facts a firing's condition reads, worked out once per firing."""
    if firing.reads is None:
        firing.reads = facts_read(firing.condition)
    return firing.reads


def evaluate_employee(engine_session: EngineSession, ef: EmployeeFacts, period: Any,
                      compiled: CompiledRuleset, money: str | None = None, texts: bool = False
                      ) -> list[dict[str, Any]]:
    """Evaluate one employee's facts and return their outcomes (nothing stored;
    ``texts``: as employee_outcomes)."""
    return employee_outcomes(ef, period, compiled,
                             engine_session.evaluate(ef.code, to_fact(ef.values, compiled)),
                             money, texts)


@dataclass
class Worded:
    """What a firing's outcomes say alike for every employee, worked out once a rule set
    (the facts it reads and ranks, its condition's leaves when they all hold together,
    their checks and words, a tier's band, the decimals of its action)."""

    reads: list[str]
    ranks: set[str]
    leaves: list[Any] | None  # None: the condition has an any or a not (held_checks)
    words: list[str]
    title: str  # the rule's name, as its explanations start
    # the facts its explanation shows (the condition's, then the calculation's), with the
    # population facts of each it ranks (_shown_facts)
    shown: list[tuple[str, tuple[str, ...] | None]] = field(default_factory=list)
    checks: list[Check] | None = None  # of its leaves
    matched: str | None = None
    factor: Decimal | None = None  # a rate, a unit amount, a tier's rate
    factor_text: str | None = None  # the same as the calculation shows it
    late: bool = False  # a draw: it reads the employee's other commissions, so comes last
    # wording.calculation for its calculations, made from the first one
    # (wording.calculation_template)
    arithmetic: Callable[[dict[str, Any]], str] | None = None
    limits: bool = False  # its action has a floor or a cap (limited)
    on_signing: bool = False  # its action pays a part on signing (clawbacks.defer)
    # its explanations' JSON text with holes for the values (Template), made from the
    # first one; False: its explanations cannot have one
    template: Template | None | bool = None


# The keys of a calculation alike for every employee a firing fires for (the rest are the
# employee's: base and metric values, amounts, a prorated share, marginal slices).
_CALC_ALIKE = frozenset({"type", "rate", "base", "unit", "per", "metric", "tier", "from", "to",
                         "mode"})
_HOLE = "\x00hole\x00"  # a placeholder no explanation holds
_HOLE_JSON = orjson.dumps(_HOLE).decode()
_HOLED = ("calc", "arithmetic", "facts", "checks")  # the keys with holes, in their order


@dataclass
class Template:
    """The explanations of a firing as JSON text (explanation_text), worked out once from
    its first explanation: what is alike for every employee (the rule's name, the
    calculation's rate and names, the matched tier or row, the facts' names, the checks'
    operators and compared values, the conditions in words) written once, with a hole
    (``%s``) for each of the employee's values, filled in by ``fill`` with the JSON texts
    of what the direct path (employee_outcomes without templates) puts there.

    Made only where every explanation of the firing has the same keys in the same order:
    a condition of leaves that all hold (held_checks otherwise), no population fact
    shown (its rank is shown only where defined), no floor, cap or part paid on signing
    (their lines come and go), not a warning, a draw or a PIP. ``held_by``, when a flag
    holds the payout, is the explanation's last key: added to the text (``held``)."""

    text: str
    calc: tuple[str, ...]  # the calculation's keys, in order (none: no calculation)
    calc_holes: tuple[str, ...]  # those of them that are the employee's
    arithmetic: bool
    facts: tuple[str, ...]
    # the facts its checks show, in order (Check.holes): a fact a rule's conditions test
    # twice (attainment at or above a tier's from and below its to) is written once
    holes: tuple[tuple[bool, str], ...]
    value: str | None  # the outcome's value, alike for every employee

    @classmethod
    def of(cls, worded: Worded, firing: Firing, outcome: dict[str, Any]) -> Template | None:
        """The template of the firing's explanations from one of them (``outcome``'s, by
        the direct path), or None where it cannot have one."""
        rule = firing.rule
        if (firing.role == "warn" or worded.checks is None or worded.limits
                or worded.on_signing or rule["action"]["type"] in ("draw", "pip")
                or any(ranked is not None for _, ranked in worded.shown)):
            return None
        explanation = dict(outcome["explanation"])
        explanation.pop("held_by", None)  # added last, where a flag holds the payout
        calc = explanation.get("calc") or {}
        calc_holes = tuple(k for k in calc if k not in _CALC_ALIKE)
        facts = tuple(name for name, _ in worded.shown)
        if list(explanation.get("facts") or {}) != list(facts) \
                or len(explanation.get("checks") or ()) != len(worded.checks) \
                or not set(explanation) <= {"rule", "calc", "arithmetic", "matched", "row",
                                            "facts", "checks", "conditions"} \
                or [k for k in explanation if k in _HOLED] != [k for k in _HOLED
                                                               if k in explanation]:
            return None
        if calc:
            explanation["calc"] = {k: _HOLE if k in calc_holes else v for k, v in calc.items()}
        if "arithmetic" in explanation:
            explanation["arithmetic"] = _HOLE
        explanation["facts"] = dict.fromkeys(facts, _HOLE)
        checks = []
        for item in explanation["checks"]:
            shown = {k: _HOLE if k in ("ref_actual", "actual", "higher", "n") else v
                     for k, v in item.items()}
            checks.append(shown)
        explanation["checks"] = checks
        try:
            text = orjson.dumps(explanation).decode()
        except TypeError:  # written by json instead (explanation_text): no template
            return None
        pieces = text.replace("%", "%%").split(_HOLE_JSON)
        count = len(calc_holes) + ("arithmetic" in explanation) + len(facts) + sum(
            1 for item in checks for v in item.values() if v is _HOLE)
        if len(pieces) != count + 1:  # a rule's own text held the placeholder
            return None
        return cls("%s".join(pieces), tuple(calc), calc_holes, "arithmetic" in explanation,
                   facts, tuple(hole for check in worded.checks for hole in check.holes()),
                   outcome["value"])

    def fill(self, values: dict[str, Any], calc: dict[str, Any] | None,
             arithmetic: Callable[[dict[str, Any]], str] | None,
             texts: dict[Any, str] | None = None) -> str | None:
        """The explanation's text with the employee's values; None where the calculation
        does not have the template's keys, or orjson does not write one of them.
        ``texts``: the texts of ``values`` written so far, for the employee's other
        explanations (each fact is shown in several: written once)."""
        if texts is None:
            texts = {}
        holes: list[str] = []
        add = holes.append
        dumps = orjson.dumps
        if calc is not None:
            if tuple(calc) != self.calc:
                return None
            try:
                for key in self.calc_holes:
                    add(dumps(calc[key]).decode())
                if self.arithmetic:
                    add(dumps(arithmetic(calc)).decode())  # type: ignore[misc]
            except TypeError:
                return None
        get = values.get
        for name in self.facts:  # plain_text of each, or null
            text = texts.get(name)
            if text is None:
                value = get(name)
                if type(value) is Decimal:  # digits, a point and a sign: nothing to escape
                    text = f'"{value.normalize(PLAIN):f}"'
                else:
                    text = "null" if value is None else dumps(plain_text(value)).decode()
                texts[name] = text
            add(text)
        for hole in self.holes:  # as the checks show them (Check.item)
            text = texts.get(hole)
            if text is None:
                text = texts[hole] = hole_text(hole[0], get(hole[1]))
            add(text)
        return self.text % tuple(holes)

    @staticmethod
    def held(text: str, held_by: list[str]) -> str:
        """The text with ``held_by`` added as its last key."""
        return f'{text[:-1]},"held_by":{orjson.dumps(sorted(held_by)).decode()}}}'


def _worded(firing: Firing) -> Worded:
    if firing.worded is not None:
        return firing.worded
    cond = firing.condition
    conj = conjunction(cond) if firing.role != "warn" else []
    rule = firing.rule
    action = rule["action"]
    atype = action["type"]
    worded = Worded(_firing_reads(firing), _firing_ranks(firing), conj,
                    [describe(leaf) for leaf in conj or ()], rule.get("name") or rule["key"])
    if conj is not None:
        worded.checks = [Check.of(leaf) for leaf in conj]
    reads = worded.reads
    if atype in ("fixed", "rate", "per_unit", "tiers"):
        reads = list(dict.fromkeys(reads + _arithmetic_facts(action)))
    elif atype == "table" and firing.role == "row":
        # the rows above were tried first: their facts tell why they did not match (an
        # attainment of 150% rated C shows the evaluation score below 60, or undefined)
        for row in action["rows"][:firing.index - 1]:
            when = row["when"]
            reads = reads + facts_read({"all": when} if isinstance(when, list) else when)
        reads = list(dict.fromkeys(reads))
    for name in reads:
        ranked = None
        if name in worded.ranks:
            higher, n, _ = population_fields(name)
            ranked = (higher, n, f"{name}__max", f"{name} (strictly higher)",
                      f"{name} (defined, N)", f"{name} (company maximum)")
        worded.shown.append((name, ranked))
    if atype == "tiers" and firing.role == "tier":
        tier = action["tiers"][firing.index - 1]
        worded.factor = Decimal(tier["rate"])
        worded.matched = (f"tier {firing.index}: {action['metric']} "
                          f"{wording.band({'from': tier['from'], 'to': tier['to']}, 'en')}")
    elif atype == "rate":
        worded.factor = Decimal(action["rate"])
    elif atype == "per_unit":
        worded.factor = Decimal(action["amount"])
    worded.factor_text = None if worded.factor is None else str(worded.factor)
    worded.late = atype == "draw" and firing.role != "warn"
    worded.limits = any(action.get(name) is not None for name in ("floor", "cap", "annual_cap"))
    worded.on_signing = bool(action.get("on_signing"))
    firing.worded = worded
    return worded


def facts_read_by(compiled: CompiledRuleset) -> set[str]:
    """The facts a run of the compiled rules reads of an employee: those its conditions
    test, its explanations show (and its amounts are worked from), the ones its warnings
    miss, the metrics it ranks, and the collection ratio of clawbacks and releases."""
    needed = compiled.fields | compiled.population | {clawbacks.METRIC}
    for firing in compiled.firings.values():
        needed.update(name for name, _ in _worded(firing).shown)
        if firing.missing:
            needed.add(firing.missing)
    return needed


def _shown_facts(worded: Worded, values: dict[str, Any]) -> dict[str, str | None]:
    """_explain_facts of the facts a firing's explanation shows, as worked out once."""
    out: dict[str, str | None] = {}
    get = values.get
    for name, ranked in worded.shown:
        value = get(name)
        out[name] = None if value is None else plain_text(value)
        if ranked is not None and ranked[0] in values:
            higher, n, maximum, said_higher, said_n, said_maximum = ranked
            out[said_higher] = str(to_plain(values[higher]))
            out[said_n] = str(to_plain(values[n]))
            out[said_maximum] = str(to_plain(values[maximum]))
    return out


def employee_outcomes(ef: EmployeeFacts, period: Any, compiled: CompiledRuleset,
                      evaluation: Evaluation, money: str | None = None, texts: bool = False
                      ) -> list[dict[str, Any]]:
    """Turn what fired for one employee into outcomes with their explanations.

    ``money`` is the currency of the amounts (default: currency(), read once here).
    ``texts``: an explanation that a firing's Template can write is its JSON text
    (explanation_text's, for write_outcomes), not the dict: the same text in about a
    seventh less time, building, serialising and freeing them counted (a run's chunks)."""
    money = money or currency()
    held_by: dict[str, list[str]] = {}
    for payout_rule, hold_rule in evaluation.holds:
        held_by.setdefault(payout_rule, []).append(hold_rule)
    out = []
    written: dict[Any, str] = {}  # the texts of the employee's facts (Template.fill)
    firings = compiled.firings
    ratings = evaluation.ratings
    fired = [(name, firings[name]) for name in evaluation.fired]
    worded_all = [_worded(firing) for _, firing in fired]
    if any(w.late for w in worded_all):  # a draw reads the employee's other commissions
        order = sorted(range(len(fired)), key=lambda i: worded_all[i].late)
        fired, worded_all = [fired[i] for i in order], [worded_all[i] for i in order]
    for (name, firing), worded in zip(fired, worded_all, strict=True):
        rule = firing.rule
        values = ef.values
        if name in ratings:  # a rule that read this run's rating
            values = dict(values, rating=ratings[name])
        kind = rule["kind"]
        if texts and type(worded.template) is Template:  # not a warning's
            template = worded.template
            amount, calc = _amount(rule, firing, values, worded) if template.calc \
                else (None, None)
            text = template.fill(values, calc, worded.arithmetic,
                                 written if values is ef.values else None)
            if text is not None:
                status = _status(ef, rule, kind, amount, held_by)
                if status == "held":
                    text = Template.held(text, held_by[rule["key"]])
                out.append(_outcome(ef, period, rule["key"], kind, amount, template.value,
                                    status, text, money))
                continue
        explanation: dict[str, Any] = {"rule": worded.title}
        amount = None
        value = None
        if firing.role == "warn":
            kind = "warning"
            value = f"{firing.missing} undefined"
            explanation["facts"] = _explain_facts([firing.missing], values)
            explanation["conditions"] = [f"{firing.missing} undefined"]
            explanation.update(missing=firing.missing, employee=ef.code, rule_key=rule["key"])
            explanation["message"] = wording.explain("warning", explanation)[0]
            out.append(_outcome(ef, period, rule["key"], kind, None, value, None, explanation,
                                money))
            continue
        atype = rule["action"]["type"]
        if atype in ("fixed", "rate", "per_unit", "tiers"):
            amount, calc = _amount(rule, firing, values, worded)
            if worded.limits:
                amount = limited(rule["action"], amount, calc,
                                 compiled.paid_earlier.get((ef.employee_id, rule["key"])))
            if worded.on_signing:
                amount = clawbacks.defer(rule["action"], amount, calc)
            explanation["calc"] = calc
            if worded.arithmetic is None:
                worded.arithmetic = wording.calculation_template(calc)
            explanation["arithmetic"] = worded.arithmetic(calc)
            if worded.matched is not None:
                explanation["matched"] = worded.matched
            if atype == "fixed" and rule["action"].get("value"):
                value = rule["action"]["value"]
        elif atype == "draw":
            earned = sum((o["amount"] for o in out if o["kind"] == "commission"
                          and o["amount"] is not None and o["status"] in ("payable", "held")
                          and not _a_draw(o)), Decimal(0))
            line = draws.draw_line(rule, period, earned, compiled.draw_balances.get(
                (ef.employee_id, rule["key"])))
            if line is None:
                continue
            amount, calc = line
            explanation["calc"] = calc
            explanation["arithmetic"] = wording.calculation(calc)
        elif atype == "table":
            row = rule["action"]["rows"][firing.index - 1]
            value = row["value"]
            explanation["row"] = {"index": firing.index, "value": value}
            explanation["matched"] = f"row {firing.index} ({value}), the first that matches"
        elif atype == "pip":
            try:
                start = period.end + dt.timedelta(days=1)
                start, end = pips.span(start, rule["action"]["months"])
            except OverflowError:
                raise RunFailed(f"employee {ef.code}: rule {rule['key']}: a PIP after "
                                f"{period.code} would end after the year 9999") from None
            value = start.isoformat()
            explanation["pip"] = {"start": start.isoformat(), "end": end.isoformat(),
                                  "months": rule["action"]["months"],
                                  "target": rule["action"]["target"]}
        else:
            value = rule["action"]["value"]
        explanation["facts"] = _shown_facts(worded, values)
        if worded.checks is not None:  # it fired: every leaf of its conjunction holds
            explanation["checks"] = [check.item(values) for check in worded.checks]
            explanation["conditions"] = list(worded.words)
        else:
            explanation["checks"], explanation["conditions"] = held_checks(firing.condition,
                                                                           values)
        status = _status(ef, rule, kind, amount, held_by)
        if status == "held":
            explanation["held_by"] = sorted(held_by[rule["key"]])
        out.append(_outcome(ef, period, rule["key"], kind, amount, value, status, explanation,
                            money))
        if texts and worded.template is None:  # the first explanation of the firing
            worded.template = Template.of(worded, firing, out[-1]) or False
    payments = compiled.clawable.get(ef.employee_id)
    rules = compiled.by_key
    if payments:
        for amount, explanation in clawbacks.lines(ef.values, rules, payments):
            c = explanation["clawback"]
            out.append(_outcome(ef, period, clawbacks.KEY, rules[c["rule_key"]]["kind"], amount,
                                f"{c['rule_key']} of {c['period']} (run {c['run_id']})",
                                "payable", explanation, money))
    parts = compiled.held_until_collected.get(ef.employee_id)
    if parts:
        for amount, explanation in clawbacks.releases(ef.values, parts):
            c = explanation["collected"]
            kind = rules[c["rule_key"]]["kind"] if c["rule_key"] in rules else "commission"
            out.append(_outcome(ef, period, clawbacks.RELEASE, kind, amount,
                                f"{c['rule_key']} of {c['period']} (run {c['run_id']})",
                                "payable", explanation, money))
    out.sort(key=lambda o: (o["kind"] == "warning", o["rule_key"]))
    return out


def _status(ef: EmployeeFacts, rule: dict[str, Any], kind: str, amount: Decimal | None,
            held_by: dict[str, list[str]]) -> str | None:
    """An outcome's status: payable, or held by a flag, for an amount; none without."""
    if amount is None:
        return None
    if abs(amount) >= AMOUNT_LIMIT:
        raise RunFailed(f"employee {ef.code}: rule {rule['key']} gives {amount}, "
                        "beyond the largest amount (24 digits before the point)")
    if kind in MONEY_KINDS and rule["key"] in held_by:
        return "held"
    return "payable"


def _a_draw(outcome: dict[str, Any]) -> bool:
    """Whether an outcome is a draw's line (its explanation a dict: no Template writes a
    draw's)."""
    explanation = outcome["explanation"]
    return type(explanation) is dict and (explanation.get("calc") or {}).get("type") == "draw"


def _outcome(ef: EmployeeFacts, period: Period, key: str, kind: str, amount: Decimal | None,
             value: str | None, status: str | None, explanation: dict[str, Any] | str,
             money: str | None = None) -> dict[str, Any]:
    return {"employee_id": ef.employee_id, "employee_code": ef.code, "period": period.code,
            "rule_key": key, "kind": kind, "amount": amount,
            "currency": (money or currency()) if amount is not None else None,
            "value": value, "status": status, "explanation": explanation}


# --- the run ------------------------------------------------------------------------------------


PARALLEL_MIN = 2000  # below this, starting worker processes costs more than it saves
CHUNK = 500
_JOB: dict[str, Any] = {}


def workers() -> int:
    """Worker processes for evaluation: LAUREL_RUN_WORKERS, else the number of cores."""
    try:
        return max(1, int(os.environ.get("LAUREL_RUN_WORKERS") or os.cpu_count() or 1))
    except ValueError:
        return 1


def _evaluate_chunk(index: int) -> list[dict[str, Any]]:
    """Evaluate one slice of the employees (in this process or a forked worker)."""
    facts, period, compiled = _JOB["facts"], _JOB["period"], _JOB["compiled"]
    engine_session = _JOB.get("session")
    if engine_session is None or _JOB.get("pid") != os.getpid():
        engine_session = _JOB["session"] = EngineSession(compiled)
        _JOB["pid"] = os.getpid()
    out: list[dict[str, Any]] = []
    size = _JOB["chunk"]
    money = currency()
    with quiet_collector():
        for ef in facts[index * size:(index + 1) * size]:
            try:
                out.extend(evaluate_employee(engine_session, ef, period, compiled, money))
            except RunFailed:
                raise
            except Exception as exc:  # any failure fails the whole run, naming the employee
                raise RunFailed(f"employee {ef.code}: {type(exc).__name__}: {exc}") from exc
    return out


def _evaluate_chunks(facts: list[EmployeeFacts], period: Period, compiled: CompiledRuleset
                     ) -> Any:
    """Yield (employees done, outcomes) slice by slice; forked workers for large runs.

    durable_rules holds the GIL in its C core, so it scales with processes, not threads
    (DESIGN.md). Workers are forked (engine.forks): they inherit the facts and the
    compiled rule set instead of receiving them pickled, and each builds its own host. A
    worker that dies (killed, crashed, out of memory) fails the run at once.
    """
    plain = SimpleNamespace(code=period.code, start=period.start, end=period.end,
                            kind=period.kind)
    _JOB.clear()
    # about twenty slices: progress moves visibly, and workers share the load
    size = max(1, min(CHUNK, len(facts) // 20))
    _JOB.update(facts=facts, period=plain, compiled=compiled, chunk=size)
    count = (len(facts) + size - 1) // size
    n = workers()
    try:
        if n > 1 and len(facts) >= PARALLEL_MIN and "fork" in mp.get_all_start_methods():
            for i, chunk in enumerate(forks.forked(_evaluate_chunk, count, min(n, count))):
                yield min((i + 1) * size, len(facts)), chunk
        else:
            for i in range(count):
                yield min((i + 1) * size, len(facts)), _evaluate_chunk(i)
    finally:
        _JOB.clear()


def compile_for(session: Session, period: Period,
                documents: list[dict[str, Any]] | None = None
                ) -> tuple[CompiledRuleset, list[dict[str, Any]]]:
    """Compile the published rules in force for the period's kind on its last day, with
    what the rules with an annual cap paid earlier in the year (paid_earlier).

    ``documents`` (stored rule definitions) replace the published rules: a draft rule set
    tried or previewed in the back office, evaluated exactly as a run would.
    """
    numeric = {k for k, t in session.execute(select(Metric.key, Metric.type))}
    numeric |= {"level_authority", "team_revenue", "team_quota", "team_attainment",
                "per_capita_output", "team_members", "pips_overlapping",
                *assignments.DAY_FACTS}
    if documents is not None:
        compiled = compile_rules([dict(d) for d in documents], numeric)
        used = [{"key": d["key"], "version": d.get("version"), "hash": None}
                for d in documents]
    else:
        rules = published_rules(session, period.kind, on=period.end)
        compiled = compile_rules([dict(r.definition) for r in rules], numeric)
        used = [{"key": r.key, "version": r.version, "hash": r.content_hash} for r in rules]
    compiled.paid_earlier = paid_earlier(session, period, compiled.rules)
    compiled.draw_balances = draws.balances(session, period, compiled.rules)
    compiled.clawable = clawbacks.candidates(session, period, compiled.rules)
    compiled.held_until_collected = clawbacks.held_until_collected(session, period,
                                                                   compiled.rules)
    return compiled, used


def team_figures(facts: list[EmployeeFacts]) -> dict[str, Any]:
    """Every team of the population: its member count and attainment (text; None where
    it is undefined), as a run keeps them (Run.figures)."""
    teams: dict[str, dict[str, Any]] = {}
    for ef in facts:
        v = ef.values
        team = teams.setdefault(v.get("team") or "", {})
        team["members"] = assignments.shown(v["team_members"])
        attainment = v.get("team_attainment")
        team["attainment"] = None if attainment is None else str(to_plain(attainment))
    return {"teams": dict(sorted(teams.items()))}


def evaluate_period(session: Session, period: Period,
                    progress: Callable[[int, int], None] | None = None,
                    documents: list[dict[str, Any]] | None = None
                    ) -> tuple[list[dict[str, Any]], int, CompiledRuleset, list[dict[str, Any]],
                               Timings, dict[str, Any]]:
    """Evaluate the period without storing anything; return outcomes and what was used.

    ``documents`` replace the published rules (see compile_for). The last element is the
    population's team figures (team_figures).
    """
    timings = Timings()
    t0 = time.perf_counter()
    compiled, used = compile_for(session, period, documents)
    t1 = time.perf_counter()
    facts = build_facts(session, period, sorted(compiled.population))
    t2 = time.perf_counter()
    timings.load, timings.enrich = t1 - t0, t2 - t1
    if not facts:
        raise RunError(msg("period %(code)s has no results: import results for it first",
                           code=period.code))
    outcomes: list[dict[str, Any]] = []
    total = len(facts)
    if progress:
        progress(0, total)
    for done, chunk in _evaluate_chunks(facts, period, compiled):
        outcomes.extend(chunk)
        if progress:
            progress(done, total)
    timings.evaluate = time.perf_counter() - t2
    return outcomes, total, compiled, used, timings, team_figures(facts)


def start_run(session: Session, code: str, actor: str = "system", dry_run: bool = False,
              progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run the period: evaluate, then (unless a dry run) store the run and its outcomes.

    The evaluation takes no lock: imports and other runs go on meanwhile. Storing takes the
    period's lock (periods.serialise) and checks again what the evaluation assumed: a period
    locked meanwhile, or another run of it stored meanwhile, refuses this one (RunError,
    nothing stored). Results changed meanwhile leave it stored but stale
    (``RunResult.stale``): it cannot be approved, and its page says why.
    """
    started = dt.datetime.now(dt.UTC)
    period = periods.require(session, code)
    if period.status == "locked":
        raise RunError(msg("period %(code)s is locked: no new run starts", code=code))
    # Read before any result: a change after this point shows as a newer version.
    version = session.scalar(select(Period.results_version).where(Period.id == period.id))
    before = session.scalar(select(func.max(Run.id)).where(
        Run.period_id == period.id, Run.status != "failed")) or 0
    outcomes, employees, compiled, used, timings, figures = evaluate_period(
        session, period, progress)
    releases = compliance.releases_for(session, period,
                                       lambda: {o["employee_id"] for o in outcomes})
    outcomes.extend(_released_hold_outcomes(session, period, releases))
    if dry_run:
        return RunResult(None, period, outcomes, employees, compiled.content_hash, timings)
    t0 = time.perf_counter()
    period = _claim_period(session, period, code, before)
    discarded = discard_replaced(session, period.id)
    run = Run(period_id=period.id, status="calculated", ruleset_hash=compiled.content_hash,
              rules=used, started_by=actor, employee_count=employees, results_version=version,
              started_at=started, finished_at=dt.datetime.now(dt.UTC), figures=figures)
    session.add(run)
    session.flush()
    write_outcomes(session, run.id, outcomes)
    stale = settle(session, run, period, compiled.rules, actor, releases, len(outcomes),
                   discarded)
    timings.store = time.perf_counter() - t0
    return RunResult(run, period, outcomes, employees, compiled.content_hash, timings,
                     stale=stale)


def _claim_period(session: Session, period: Period, code: str, before: int) -> Period:
    """Take the period's lock to store a run; refuse when the period was locked, or
    another run of it stored, since the run started (``before``: the newest run then)."""
    period = periods.serialise(session, period.id)
    if period.status == "locked":
        raise RunError(msg("period %(code)s was locked while this run was calculated; nothing "
                           "was stored", code=code))
    newer = session.scalar(select(Run).where(Run.period_id == period.id, Run.id > before,
                                             Run.status.in_(LIVE_RUN)).order_by(Run.id))
    if newer is not None:
        raise RunError(msg("another run of period %(code)s (run %(id)s, started by "
                           "%(started_by)s) was stored while this one was calculated; this run "
                           "is not stored", code=code, id=newer.id, started_by=newer.started_by))
    return period


def _json_text() -> Callable[[Any], str]:
    """json.dumps, the same text, made for many values: one C encoder made once
    (json.dumps makes one a call) that does not look for circular references (an
    explanation is a tree built here), about 15% less time than json.dumps."""
    make = json.encoder.c_make_encoder
    if make is None:  # no C speedups in this Python: its own encoder, as json.dumps
        return json.JSONEncoder(check_circular=False).encode
    encode = make(None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii,
                  None, ": ", ", ", False, False, True)
    return lambda value: "".join(encode(value, 0))


json_text = _json_text()


def explanation_text(explanation: dict[str, Any]) -> str:
    """An explanation as the JSON its column stores, written by orjson (a fifth of the
    time json takes; compact and in UTF-8, read back as the same data); what orjson
    does not write (an integer beyond 64 bits, a key that is not text) as json does."""
    try:
        return orjson.dumps(explanation).decode()
    except TypeError:
        return json_text(explanation)


OUTCOME_COLUMNS = ("run_id", "employee_id", "rule_key", "kind", "amount", "currency", "value",
                   "status", "explanation", "chunk")
# their types as COPY is told them (PostgreSQL): each value then dumped by its type's
# dumper, not looked up by its Python type (a third of write_row's time), in the binary
# format, which the server reads without parsing numbers from text (63,000 outcomes: 0.34
# to 0.37 s of the server's instead of 0.41 to 0.43 s; the same on the client)
OUTCOME_TYPES = ("int4", "int4", "varchar", "varchar", "numeric", "varchar", "varchar",
                 "varchar", "text", "int4")


def write_outcomes(session: Session, run_id: int, outcomes: list[dict[str, Any]],
                   chunk: int | None = None) -> None:
    """Insert outcomes of a run (of one of its chunks): COPY on PostgreSQL, one
    executemany of the driver's in SQLite; each explanation serialised once, as the JSON
    column would (or given as that text already: employee_outcomes' ``texts``), and each
    amount as its column type would (SQLite keeps it as text)."""
    if not outcomes:
        return

    def dumps(explanation: dict[str, Any] | str) -> str:
        return explanation if type(explanation) is str else explanation_text(explanation)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY outcome ({', '.join(OUTCOME_COLUMNS)}) FROM STDIN "
                         "(FORMAT BINARY)") as copy:
            copy.set_types(OUTCOME_TYPES)
            for o in outcomes:
                copy.write_row((run_id, o["employee_id"], o["rule_key"], o["kind"],
                                o["amount"], o["currency"], o["value"], o["status"],
                                dumps(o["explanation"]), chunk))
        cursor.close()
        return
    amount = Outcome.__table__.c.amount.type.process_bind_param
    dialect = connection.dialect
    # the driver's own executemany: SQLAlchemy's would build and process every row again
    connection.exec_driver_sql(
        f"INSERT INTO outcome ({', '.join(OUTCOME_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in OUTCOME_COLUMNS)})",
        [(run_id, o["employee_id"], o["rule_key"], o["kind"], amount(o["amount"], dialect),
          o["currency"], o["value"], o["status"], dumps(o["explanation"]), chunk)
         for o in outcomes])


def discard_replaced(session: Session, period_id: int) -> list[int]:
    """Discard the period's calculated and approved runs (a new one replaces them), under
    the period's lock and before the new one is stored: one such run a period at most."""
    discarded = list(session.scalars(select(Run.id).where(
        Run.period_id == period_id, Run.status.in_(("calculated", "approved")))))
    if discarded:
        session.execute(update(Run).where(Run.id.in_(discarded)).values(status="discarded"))
        session.flush()
    return discarded


def settle(session: Session, run: Run, period: Period, rules: list[dict[str, Any]],
           actor: str, releases: dict[int, list[dict[str, Any]]], outcomes: int,
           discarded: list[int],
           grouped: Callable[[], statements.OutcomeGroups | None] | None = None,
           cases_analysed: bool = False) -> RunStale | None:
    """The last step of storing a run, under the period's lock, once the runs it replaces
    are discarded (discard_replaced): carry over what people decided on them (flag cases,
    PIPs, adjustments, audited), mark the holds it pays as released, and say whether it is
    already stale. ``grouped`` gives the run's outcomes summed up as its chunks wrote them
    (statements.outcome_groups, worked out meanwhile: engine.chunks.finish), or None:
    its totals use them unless this step changed the outcomes (released holds added,
    carried decisions holding or releasing payouts). ``cases_analysed``: the flag cases'
    statistics were refreshed while the run's chunks worked (compliance.carry_cases)."""
    cases = compliance.carry_cases(session, run, rules, actor, analysed=cases_analysed)
    pips_carried = followup.carry_pips(session, run, list(discarded), actor)
    adjustments = _carry_adjustments(session, run, list(discarded), actor)
    compliance.mark_released(session, run.id, releases)
    # what the checklist's count of employees with no results reads (lifecycle.checklist)
    run.figures = dict(run.figures or {}, results=rollup.results_cover(session, period))
    unchanged = not releases and not compliance.changes_outcomes(cases)
    statements.store_totals(session, run, grouped() if grouped and unchanged else None)
    stale = staleness(session, run)
    audit(session, "run", "run", run.id,
          summary=msg("run %(id)s of %(period)s: %(n)s employees, %(outcomes)s outcomes "
                      "(stale)", id=run.id, period=period.code, n=run.employee_count,
                      outcomes=outcomes) if stale else
          msg("run %(id)s of %(period)s: %(n)s employees, %(outcomes)s outcomes", id=run.id,
              period=period.code, n=run.employee_count, outcomes=outcomes), actor=actor,
          after={"period": period.code, "ruleset_hash": run.ruleset_hash,
                 "discarded_runs": list(discarded), "results_version": run.results_version,
                 "flags": cases,
                 "pips": {k: v for k, v in pips_carried.items() if v},
                 "adjustments_carried": adjustments})
    session.flush()
    return stale


def _carry_adjustments(session: Session, run: Run, discarded: list[int], actor: str
                       ) -> list[int]:
    """Copy the adjustments of the runs this one discards onto it, each audited.

    An adjustment is a person's decision about the period, not about one calculation: it
    stays (with its reason, author and the run it was first added to) until someone takes
    it back with an adjustment of the opposite amount.
    """
    if not discarded:
        return []
    carried = []
    for adj in session.scalars(select(Adjustment).where(Adjustment.run_id.in_(discarded))
                               .order_by(Adjustment.id)):
        copy = Adjustment(run_id=run.id, employee_id=adj.employee_id, amount=adj.amount,
                          currency=adj.currency, reason=adj.reason, created_by=adj.created_by,
                          created_at=adj.created_at,
                          carried_from_run_id=adj.carried_from_run_id or adj.run_id)
        session.add(copy)
        session.flush()
        carried.append(copy.id)
        audit(session, "carry", "run", run.id,
              summary=msg("run %(id)s: adjustment %(adj)s of run %(from_run)s (%(currency)s "
                          "%(amount)s, %(reason)s) carried over as adjustment %(copy)s",
                          id=run.id, adj=adj.id, from_run=adj.run_id, currency=adj.currency,
                          amount=f"{adj.amount:.2f}", reason=adj.reason, copy=copy.id),
              after={"from_run": adj.run_id, "adjustment": copy.id,
                     "amount": f"{adj.amount:.2f}"}, actor=actor)
    return carried


def staleness(session: Session, run: Run) -> RunStale | None:
    """The refusal a stale run gets, or None while its period's results are as it read them.

    A run is stale once results of its period, or of a period within it, changed after it
    read them (an import, or an edit in the back office). A discarded or failed run is
    neither.
    """
    if run.results_version is None or run.status not in LIVE_RUN:
        return None
    period = session.execute(select(Period.results_version, Period.results_changed_how,
                                    Period.results_changed_in, Period.results_changed_at,
                                    Period.results_changed_by)
                             .where(Period.id == run.period_id)).one()
    if period.results_version == run.results_version:
        return None
    return RunStale(run.id, period.results_changed_in or run.period.code,
                    period.results_changed_how or "change", period.results_changed_at,
                    period.results_changed_by)


def _released_hold_outcomes(session: Session, period: Period,
                            releases: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Holds released after their run was locked, paid in this run as their own lines."""
    if not releases:
        return []
    codes = dict(session.execute(select(Employee.id, Employee.code).where(
        Employee.id.in_(bulk.ids_in(session, "laurel_released", releases)))).all())
    out = []
    for emp, lines in sorted(releases.items(), key=lambda kv: codes[kv[0]]):
        for line in lines:
            ef = EmployeeFacts(emp, codes[emp], "", {})
            flags = ", ".join(str(i) for i in line["case_ids"])
            out.append(_outcome(ef, period, "released_hold", line["kind"], line["amount"],
                                f"{line['rule_key']} of {line['period']} (run "
                                f"{line['run_id']}, flag {flags})", "payable", {
                                    "rule": "Released hold",
                                    "released": {"rule_key": line["rule_key"],
                                                 "period": line["period"],
                                                 "run_id": line["run_id"],
                                                 "flags": line["case_ids"]},
                                    "facts": {"amount": f"{line['amount']:.2f}"},
                                    "conditions": [f"every flag that held it "
                                                   f"({', '.join(line['held_by'])}: flag "
                                                   f"{flags}) was dismissed after run "
                                                   f"{line['run_id']} was locked"],
                                    "arithmetic": f"released {line['amount']:.2f} held in "
                                                  f"run {line['run_id']} ({line['period']})",
                                }))
    return out


def record_failure(session: Session, code: str, actor: str, reason: str) -> Run | None:
    """Store a failed run with its reason (nothing else), when the period exists."""
    period = periods.get(session, code) if periods.is_valid(code) else None
    if period is None:
        return None
    run = Run(period_id=period.id, status="failed", started_by=actor, error=reason[:4000],
              started_at=dt.datetime.now(dt.UTC), finished_at=dt.datetime.now(dt.UTC))
    session.add(run)
    session.flush()
    return run


def summary_of(session: Session, run: Run) -> str:
    """A stored run's one-line summary: outcomes by kind, payable and held amounts."""
    counts = dict(session.execute(select(Outcome.kind, func.count()).where(
        Outcome.run_id == run.id).group_by(Outcome.kind)).all())
    # summed here: SQLite would add the amounts' text as floats
    held = payable = Decimal(0)
    for status, amount in session.execute(select(Outcome.status, Outcome.amount).where(
            Outcome.run_id == run.id, Outcome.amount.is_not(None))):
        if status == "held":
            held += amount
        else:
            payable += amount
    parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no outcomes"
    return (f"period {run.period.code}: {run.employee_count} employees, "
            f"{sum(counts.values())} outcomes ({parts}); payable {currency()} {payable:.2f}, "
            f"held {currency()} {held:.2f}")


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(msg("run %(run_id)s does not exist", run_id=run_id))
    return run


# Rows read from the database at a time by the streamed readers (outcomes, exports).
STREAM_BATCH = 1000


def iter_outcome_rows(session: Session, run: Run) -> Iterator[dict[str, Any]]:
    """The run's outcomes in the public format (CONTRACT.md, Outcomes), one at a time:
    read STREAM_BATCH rows at a time (a server-side cursor on PostgreSQL), so that memory
    holds a batch whatever the run's size."""
    run_id, code_of_period = run.id, run.period.code
    rows = session.execute(
        select(Employee.code, Outcome.rule_key, Outcome.kind, Outcome.amount, Outcome.currency,
               Outcome.value, Outcome.status, Outcome.explanation)
        .join(Employee, Employee.id == Outcome.employee_id)
        .where(Outcome.run_id == run_id).order_by(Employee.code, Outcome.id)
        .execution_options(yield_per=STREAM_BATCH))
    for code, rule_key, kind, amount, currency, value, status, explanation in rows:
        yield {"run_id": run_id, "period": code_of_period, "employee_code": code,
               "rule_key": rule_key, "kind": kind,
               "amount": None if amount is None else f"{amount:.2f}",
               "currency": currency, "value": value, "status": status,
               "explanation": explanation}


def outcome_rows(session: Session, run: Run) -> list[dict[str, Any]]:
    """The run's outcomes in the public format (CONTRACT.md, Outcomes), as a list."""
    return list(iter_outcome_rows(session, run))


def iter_outcomes_json(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The text outcomes_json gives, a row at a time."""
    first = True
    for row in rows:
        # an element of json.dumps(list, indent=1): one more space before each line
        yield ("[\n " if first else ",\n ") + json.dumps(
            row, ensure_ascii=False, indent=1).replace("\n", "\n ")
        first = False
    yield "[]" if first else "\n]"


def outcomes_json(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(iter_outcomes_json(rows))
