"""A differential test: random rule sets and data around every threshold, evaluated by the
engine and by a small reference evaluator written here from the README's rule language.

The reference shares no code with engine/: it reads values as exact fractions, evaluates
conditions, scope, tiers, tables, holds, the rating chain and warnings as the README and
POLICIES.md state them, and rounds amounts half up to the cent. Hypothesis generates the
rules and the data, large magnitudes included (LAUREL_DIFFERENTIAL_EXAMPLES sets how many;
CI runs a bounded number).
"""

from __future__ import annotations

import os
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.orm import Session

from engine import periods, runs
from engine.errors import RuleError
from engine.imports import import_employees, import_results
from engine.models import Rule
from engine.rulebook import save_rule

EXAMPLES = int(os.environ.get("LAUREL_DIFFERENTIAL_EXAMPLES", "60"))
# CI runs the same examples each time; set LAUREL_DIFFERENTIAL_RANDOM=1 to explore new ones
RANDOM = bool(os.environ.get("LAUREL_DIFFERENTIAL_RANDOM"))

# --- the facts the generated rules read, and values around their thresholds -----------------

MONEY = ["0", "100", "12345678901234.56", "99999999999999.99", "1000000000000000.04",
         "9999999999999999", "10000000000000000"]
ANCHORS = {
    "quota": MONEY, "revenue_new": MONEY, "revenue_existing": MONEY, "revenue_total": MONEY,
    "attainment": ["0.666667", "0.8", "1", "1.2"],
    "visits": ["0", "3", "20"],
    "satisfaction": ["0", "80", "90", "100"],
    "max_discount_pct": ["0", "0.05", "0.08", "1"],
}
INPUTS = ["quota", "revenue_new", "revenue_existing", "visits", "satisfaction",
          "max_discount_pct"]
NUMERIC = list(ANCHORS)
BOUNDS = {"visits": (0, 10**15 - 1), "satisfaction": (0, 100), "max_discount_pct": (0, 1)}
TEXT = {"level": ["S1", "S2", "M1"], "team_stage": ["startup", "growth", "mature"]}
DATA_STEPS = ["0", "0.01", "0.000001", "1"]
RULE_STEPS = ["0", "0.01", "0.000001", "0.0000001", "0.000000000001"]


def _near(fact: str, steps: list[str]) -> st.SearchStrategy[Decimal]:
    def build(anchor: str, step: str, sign: int) -> Decimal:
        value = Decimal(anchor) + sign * Decimal(step)
        if fact == "visits":
            value = value.to_integral_value()
        low, high = BOUNDS.get(fact, (None, None))
        if low is not None:
            value = min(max(value, Decimal(low)), Decimal(high))
        return value

    return st.builds(build, st.sampled_from(ANCHORS[fact]), st.sampled_from(steps),
                     st.sampled_from([-1, 1]))


@st.composite
def leaf(draw: Any, rating: bool) -> dict[str, Any]:
    facts = NUMERIC + list(TEXT) + (["rating"] if rating else [])
    fact = draw(st.sampled_from(facts))
    if fact in TEXT or fact == "rating":
        values = TEXT.get(fact, ["A", "B"])
        op = draw(st.sampled_from(["==", "!=", "in", "not_in", "defined", "undefined"]))
        if op in ("defined", "undefined"):
            return {"fact": fact, "op": op}
        if op in ("in", "not_in"):
            return {"fact": fact, "op": op,
                    "value": draw(st.lists(st.sampled_from(values), min_size=1, max_size=2,
                                           unique=True))}
        return {"fact": fact, "op": op, "value": draw(st.sampled_from(values))}
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "defined", "undefined",
                               "highest", "top_share", "ref"]))
    if op in ("defined", "undefined", "highest"):
        return {"fact": fact, "op": op}
    if op == "top_share":
        return {"fact": fact, "op": op,
                "value": str(draw(st.sampled_from(["0.1", "0.34", "0.5", "1"])))}
    if op == "ref":
        other = draw(st.sampled_from([f for f in NUMERIC if f != fact]))
        return {"fact": fact, "op": draw(st.sampled_from(["==", "!=", "<", ">="])),
                "ref": other}
    return {"fact": fact, "op": op, "value": str(draw(_near(fact, RULE_STEPS)))}


def condition(rating: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaf(rating),
        lambda inner: st.one_of(
            st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda x: {"not": x}, inner)),
        max_leaves=4)


@st.composite
def rule(draw: Any, n: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["alert", "flag", "commission", "bonus", "rating"]))
    doc: dict[str, Any] = {"key": f"g.{n}.{kind}", "kind": kind, "period_kind": "month"}
    reads_rating = kind != "rating" and draw(st.booleans())
    if draw(st.booleans()):
        doc["when"] = draw(condition(reads_rating))
    if draw(st.integers(0, 3)) == 0:
        doc["scope"] = {"level": draw(st.lists(st.sampled_from(TEXT["level"]), min_size=1,
                                               max_size=2, unique=True))}
    if kind in ("alert", "flag"):
        doc["action"] = {"type": "value", "value": "v"}
        doc["hold"] = kind == "flag" and draw(st.booleans())
    elif kind == "rating":
        rows = [{"when": draw(condition(False)), "value": v} for v in ("A", "B")]
        rows.append({"when": {"fact": draw(st.sampled_from(NUMERIC)), "op": "defined"},
                     "value": "C"})
        doc["action"] = {"type": "table", "rows": rows}
    else:
        atype = draw(st.sampled_from(["fixed", "rate", "per_unit", "tiers"]))
        money = ["quota", "revenue_new", "revenue_existing", "revenue_total"]
        if atype == "fixed":
            doc["action"] = {"type": "fixed", "amount": "300.50"}
        elif atype == "rate":
            doc["action"] = {"type": "rate", "rate": draw(st.sampled_from(["0.03", "0.015"])),
                             "base": draw(st.sampled_from(money))}
        elif atype == "per_unit":
            doc["action"] = {"type": "per_unit", "amount": "300", "per": "visits"}
        else:
            metric = draw(st.sampled_from(["attainment", "revenue_new", "satisfaction"]))
            cuts = sorted({draw(_near(metric, RULE_STEPS)) for _ in range(2)})
            bounds = [None, *[str(c) for c in cuts], None]
            doc["action"] = {"type": "tiers", "metric": metric,
                             "base": draw(st.sampled_from(money)),
                             "tiers": [{"from": bounds[i], "to": bounds[i + 1],
                                        "rate": f"0.0{i + 3}"} for i in range(len(bounds) - 1)]}
    return doc


@st.composite
def scenario(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rules = [draw(rule(i)) for i in range(draw(st.integers(1, 4)))]
    ratings = [r for r in rules if r["kind"] == "rating"]
    rules = [r for r in rules if r["kind"] != "rating"] + ratings[:1]
    people = []
    for i in range(draw(st.integers(1, 5))):
        values = {}
        for fact in INPUTS:
            if draw(st.integers(0, 4)) > 0:
                values[fact] = draw(_near(fact, DATA_STEPS))
        if draw(st.booleans()) and "quota" in values and "revenue_new" in values:
            values["revenue_new"] = values["quota"]  # equal values in two columns
        people.append({"code": f"P{i}", "level": draw(st.sampled_from(TEXT["level"])),
                       "team": draw(st.sampled_from(["T1", "T2"])), "values": values})
    return rules, people


# --- the reference evaluator ------------------------------------------------------------------

STAGES = {"T1": "startup", "T2": "growth"}


def _fr(value: Any) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(Decimal(str(value)))


def derived(values: dict[str, Decimal]) -> dict[str, Fraction | None]:
    out: dict[str, Fraction | None] = {k: _fr(v) for k, v in values.items()}
    parts = [out[k] for k in ("revenue_new", "revenue_existing") if out.get(k) is not None]
    out["revenue_total"] = sum(parts, Fraction(0)) if parts else None
    quota = out.get("quota")
    out["attainment"] = (out["revenue_total"] / quota
                         if out["revenue_total"] is not None and quota is not None and quota > 0
                         else None)
    return out


def holds(cond: dict[str, Any] | None, f: dict[str, Any], pop: dict[str, list]) -> bool:
    if cond is None:
        return True
    if "all" in cond:
        return all(holds(c, f, pop) for c in cond["all"])
    if "any" in cond:
        return any(holds(c, f, pop) for c in cond["any"])
    if "not" in cond:
        return not holds(cond["not"], f, pop)
    fact, op, value = cond["fact"], cond["op"], f.get(cond["fact"])
    if op == "defined":
        return value is not None
    if op == "undefined":
        return value is None
    if value is None:
        return False
    if op in ("highest", "top_share"):
        higher = sum(1 for v in pop[fact] if v > value)
        if op == "highest":
            return higher == 0
        return Fraction(higher, len(pop[fact])) < _fr(cond["value"])
    if op in ("in", "not_in"):
        return (value in cond["value"]) == (op == "in")
    other = f.get(cond["ref"]) if "ref" in cond else cond["value"]
    if other is None:
        return False
    if isinstance(value, str):
        return (value == other) == (op == "==")
    a, b = value, _fr(other)
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def assume_defined(cond: Any, fact: str) -> Any:
    if cond is None:
        return None
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        return {key: [assume_defined(c, fact) for c in cond[key]]}
    if "not" in cond:
        return {"not": assume_defined(cond["not"], fact)}
    if cond["fact"] == fact and cond["op"] == "defined":
        return {"all": []}
    if cond["fact"] == fact and cond["op"] == "undefined":
        return {"any": []}
    return cond


def cents(value: Fraction) -> str:
    """Half up to the cent, exactly (on the fraction, never on a rounded decimal)."""
    steps = value * 100
    whole, rest = divmod(abs(steps.numerator), steps.denominator)
    if 2 * rest >= steps.denominator:
        whole += 1
    return f"{Decimal(whole if steps >= 0 else -whole).scaleb(-2):.2f}".replace("-0.00",
                                                                                 "0.00")


def reference(rules: list[dict[str, Any]], people: list[dict[str, Any]]) -> set[tuple]:
    facts = {}
    for p in people:
        f: dict[str, Any] = derived(p["values"])
        f.update(level=p["level"], team_stage=STAGES[p["team"]])
        facts[p["code"]] = f
    pop = {k: [f[k] for f in facts.values() if f.get(k) is not None] for k in NUMERIC}
    out: set[tuple] = set()
    for code, f in facts.items():
        rating = None
        for r in rules:
            if r["kind"] != "rating" or not applies(r, f, pop):
                continue
            rows = r["action"]["rows"]
            match = next((row for row in rows if holds(row["when"], f, pop)), None)
            if match:
                rating = match["value"]
                out.add((code, r["key"], "rating", None, rating, None))
            else:
                last = rows[-1]["when"]
                missing = last["fact"]
                if f.get(missing) is None and holds(assume_defined(last, missing), f, pop):
                    out.add((code, r["key"], "warning", None, f"{missing} undefined", None))
        f = dict(f, rating=rating)
        held = any(r["kind"] == "flag" and r.get("hold") and applies(r, f, pop) for r in rules)
        for r in rules:
            if r["kind"] == "rating":
                continue
            if r["kind"] in ("alert", "flag"):
                if applies(r, f, pop):
                    out.add((code, r["key"], r["kind"], None, "v", None))
                continue
            out |= pay(code, r, f, pop, held)
    return out


def in_scope(r: dict[str, Any], f: dict[str, Any]) -> bool:
    return all(f.get(k) in v for k, v in (r.get("scope") or {}).items())


def applies(r: dict[str, Any], f: dict[str, Any], pop: dict[str, list]) -> bool:
    return in_scope(r, f) and holds(r.get("when"), f, pop)


def pay(code: str, r: dict[str, Any], f: dict[str, Any], pop: dict[str, list],
        held: bool) -> set[tuple]:
    a = r["action"]
    needs = {"fixed": [], "rate": [a.get("base")], "per_unit": [a.get("per")],
             "tiers": [a.get("metric"), a.get("base")]}[a["type"]]
    needs = list(dict.fromkeys(needs))
    status = "held" if held else "payable"
    if all(f.get(n) is not None for n in needs):
        if not applies(r, f, pop):
            return set()
        if a["type"] == "fixed":
            amount = _fr(a["amount"])
        elif a["type"] == "rate":
            amount = f[a["base"]] * _fr(a["rate"])
        elif a["type"] == "per_unit":
            amount = f[a["per"]] * _fr(a["amount"])
        else:
            x = f[a["metric"]]
            tier = next((t for t in a["tiers"]
                         if (t["from"] is None or x >= _fr(t["from"]))
                         and (t["to"] is None or x < _fr(t["to"]))), None)
            if tier is None:
                return set()
            amount = f[a["base"]] * _fr(tier["rate"])
        return {(code, r["key"], r["kind"], cents(amount), None, status)}
    out = set()
    for n in needs:
        if f.get(n) is None and in_scope(r, f) and holds(assume_defined(r.get("when"), n), f,
                                                          pop):
            out.add((code, r["key"], "warning", None, f"{n} undefined", None))
    return out


# --- the engine, through the database ------------------------------------------------------------


def engine_outcomes(session: Session, rules: list[dict[str, Any]],
                    people: list[dict[str, Any]]) -> tuple[set[tuple], list[dict[str, Any]]]:
    emp = ["code,name,team,level,team_stage"] + [
        f"{p['code']},{p['code']},{p['team']},{p['level']},{STAGES[p['team']]}" for p in people]
    import_employees(session, "e.csv", data="\n".join(emp).encode())
    res = ["period,employee_code," + ",".join(INPUTS)] + [
        "2031-07," + p["code"] + "," + ",".join(str(p["values"].get(k, "")) for k in INPUTS)
        for p in people]
    import_results(session, "r.csv", data="\n".join(res).encode())
    kept = []
    for doc in rules:
        try:
            save_rule(session, doc, doc["key"], publish=True)
            kept.append(doc)
        except RuleError as err:  # a generated table whose row no input reaches
            assert "can never match" in str(err), err
    outcomes, *_ = runs.evaluate_period(session, periods.require(session, "2031-07"))
    got = {(o["employee_code"], o["rule_key"], o["kind"],
            None if o["amount"] is None else f"{o['amount']:.2f}", o["value"], o["status"])
           for o in outcomes}
    return got, kept


@pytest.fixture()
def bare(session: Session) -> Session:
    """The test database without the reference library: only generated rules run."""
    session.execute(update(Rule).values(status="retired", effective_to=None))
    session.commit()
    return session


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario())
def test_the_engine_agrees_with_the_reference(bare: Session, case: tuple) -> None:
    rules, people = case
    try:
        got, kept = engine_outcomes(bare, rules, people)
        assert got == reference(kept, people), (kept, people)
    finally:
        bare.rollback()


# --- the explanations' words worked out once, against the direct path --------------------------
#
# A run words a firing's calculation from what it worked out once for the firing
# (wording.calculation_template), a check from its head made once (Check), an
# explanation's JSON text from its firing's Template, and a ratio of two decimals from
# the quotient rounded already (Catalog.derive): each must give what the direct path
# gives, for the policy library and rules with limits, a prorated share, a part paid on
# signing and marginal tiers, on any facts.

MONEY_RULES = [
    {"key": "x.limits", "kind": "commission", "period_kind": "month",
     "when": [{"fact": "revenue_new", "op": ">", "value": 0}],
     "action": {"type": "rate", "rate": "0.035", "base": "revenue_new", "floor": "50",
                "cap": "1500.00", "annual_cap": "12000", "prorate": True}},
    {"key": "x.signing", "kind": "commission", "period_kind": "month",
     "action": {"type": "per_unit", "amount": "12.5", "per": "visits",
                "on_signing": {"share": "0.4", "release_at": "0.9"}}},
    {"key": "x.marginal", "kind": "bonus", "period_kind": "month",
     "action": {"type": "tiers", "metric": "attainment", "base": "revenue_total",
                "mode": "marginal", "tiers": [
                    {"from": None, "to": "0.8", "rate": "0.01"},
                    {"from": "0.8", "to": "1.2", "rate": "0.025"},
                    {"from": "1.2", "to": None, "rate": "0.04"}]}},
    {"key": "x.fixed", "kind": "bonus", "period_kind": "month", "when": [
        {"fact": "collected_amount", "op": ">=", "ref": "signed_amount"}],
     "action": {"type": "fixed", "amount": "99.99", "prorate": True}},
    {"key": "x.plain", "kind": "bonus", "period_kind": "month",
     "action": {"type": "fixed", "amount": "1200"}},
    {"key": "x.unit", "kind": "bonus", "period_kind": "month",
     "action": {"type": "per_unit", "amount": "0.75", "per": "new_customers"}},
]


def _compiled_library() -> Any:
    from engine.compiler import compile_rules
    from engine.rulebook import stored_form, validate
    from tests.test_compiler import NUMERIC, TYPES, library

    docs = [d for d in library("month")] + [stored_form(validate(d, d["key"], TYPES))
                                            for d in MONEY_RULES]
    return compile_rules(docs, NUMERIC)


def _a_value(draw: Any, fact: str) -> Any:
    from engine.exact import quotient

    how = draw(st.integers(0, 5))
    if how == 0:
        return None
    if how == 1:  # a quotient no decimal holds
        return quotient(draw(_near("attainment", DATA_STEPS)), Decimal(draw(
            st.sampled_from(["3", "7", "0.000003", "123456789"]))))
    if how == 2:
        return Decimal(draw(st.sampled_from(MONEY)))
    return draw(_near(draw(st.sampled_from(NUMERIC)), DATA_STEPS))


@st.composite
def library_facts(draw: Any, names: list[str]) -> dict[str, Any]:
    values = {name: _a_value(draw, name) for name in names}
    values.update(active_days=Decimal(draw(st.integers(0, 31))), period_days=Decimal(31))
    return values


_LIBRARY: list[Any] = []


def _library() -> Any:
    if not _LIBRARY:
        _LIBRARY.append(_compiled_library())
    return _LIBRARY[0]


def _shown_names(compiled: Any) -> list[str]:
    text = {"team", "team_stage", "region", "level", "previous_rating", "rating"}
    return sorted(n for n in runs.facts_read_by(compiled) if n not in text)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(library_facts(_shown_names(_library())), min_size=2, max_size=4))
def test_what_is_worded_once_words_what_the_direct_path_words(people: list) -> None:
    import datetime as dt
    from types import SimpleNamespace

    from engine import wording
    from engine.compiler import Evaluation
    from engine.conditions import conjunction, held_checks, holds
    from engine.facts import EmployeeFacts

    compiled = _library()
    period = SimpleNamespace(code="2031-07", start=dt.date(2031, 7, 1),
                             end=dt.date(2031, 7, 31), kind="month")
    templated = 0  # explanations a Template wrote: the comparison below is of something
    fired: dict[int, list[str]] = {i: [] for i in range(len(people))}
    for name, firing in compiled.firings.items():
        if firing.role == "warn" or firing.rule["action"]["type"] in ("draw", "pip"):
            continue
        for i, values in enumerate(people):
            ef = EmployeeFacts(i + 1, f"P{i}", f"P{i}", dict(values, level="S1"))
            evaluation = Evaluation([name], [(firing.rule["key"], "x.flag")] if i % 2 else [],
                                    {})
            try:
                out = runs.employee_outcomes(ef, period, compiled, evaluation)
            except (TypeError, KeyError, ArithmeticError):
                continue  # facts a firing could not have fired on (an undefined base)
            fired[i].append(name)
            # the same as the JSON text its Template writes, once it has one
            texts = runs.employee_outcomes(ef, period, compiled, evaluation, texts=True)
            templated += sum(isinstance(o["explanation"], str) for o in texts)
            assert [{**o, "explanation": runs.explanation_text(o["explanation"])}
                    for o in out] == [
                {**o, "explanation": o["explanation"] if isinstance(o["explanation"], str)
                 else runs.explanation_text(o["explanation"])} for o in texts], name
            for o in out:
                e = o["explanation"]
                if "calc" in e:
                    assert e["arithmetic"] == wording.calculation(e["calc"]), (name, e)
                leaves = conjunction(firing.condition)
                if leaves is not None and holds({"all": leaves}, ef.values):
                    assert e["checks"] == held_checks({"all": leaves}, ef.values)[0], (name, e)
    # all of them for one employee at once: what one explanation's template writes of a
    # fact is what the next one shows of it (Template.fill writes each fact once)
    for i, values in enumerate(people):
        ef = EmployeeFacts(i + 1, f"P{i}", f"P{i}", dict(values, level="S1"))
        evaluation = Evaluation(fired[i], [], {})
        out = runs.employee_outcomes(ef, period, compiled, evaluation)
        texts = runs.employee_outcomes(ef, period, compiled, evaluation, texts=True)
        assert [{**o, "explanation": runs.explanation_text(o["explanation"])} for o in out] \
            == [{**o, "explanation": o["explanation"] if isinstance(o["explanation"], str)
                 else runs.explanation_text(o["explanation"])} for o in texts]
    assert templated


@settings(max_examples=EXAMPLES * 4, deadline=None, derandomize=not RANDOM)
@given(_near("revenue_new", DATA_STEPS), _near("quota", DATA_STEPS),
       st.sampled_from(["revenue_new / quota", "revenue_new / positive(quota)"]))
def test_a_ratio_of_two_decimals_derives_the_quotient_the_fractions_give(
        a: Decimal, b: Decimal, formula: str) -> None:
    from engine.exact import Quotient, from_fraction
    from engine.metrics import Catalog, parse_formula

    catalog = Catalog({}, [parse_formula("ratio", formula)])
    got = catalog.derive({"revenue_new": a, "quota": b})["ratio"]
    catalog._steps = [(*step[:4], None) for step in catalog._steps]  # no ratio: fractions
    want = catalog.derive({"revenue_new": a, "quota": b})["ratio"]
    assert type(got) is type(want)
    if want is not None:
        assert got.as_tuple() == want.as_tuple()
    if type(want) is Quotient:
        assert got.exact == want.exact == Fraction(a) / Fraction(b)
        assert want.as_tuple() == from_fraction(want.exact).as_tuple()
