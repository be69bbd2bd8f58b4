"""The compiler: its output per operator and table kind, value encoding, and a differential
test of durable_rules against the plain-Python meaning of the same conditions."""

from __future__ import annotations

import gc
import random
from decimal import Decimal
from pathlib import Path

import pytest

from engine import compiler
from engine.conditions import CHAINED_FACTS, holds, negate
from engine.metrics import CATALOG
from engine.rulebook import read_yaml, stored_form, validate

ROOT = Path(__file__).resolve().parent.parent
TYPES = {k: t for k, _, _, t, _, _ in CATALOG}
NUMERIC = set(TYPES) | {"level_authority", "team_revenue", "team_quota", "team_attainment",
                        "per_capita_output", "team_members", "pips_overlapping"}

EXTRA_RULES = [
    {"key": "x.ops", "kind": "alert", "period_kind": "month",
     "scope": {"level": ["S1", "S2"], "team_stage": ["growth"]},
     "when": {"any": [
         {"all": [{"fact": "visits", "op": "!=", "value": 3},
                  {"fact": "nps", "op": "<=", "value": "-10.5"}]},
         {"not": {"fact": "region", "op": "in", "value": ["North", "East"]}},
         {"fact": "teamwork_score", "op": "undefined"},
     ]},
     "action": {"type": "value", "value": "x"}},
    {"key": "x.ref", "kind": "flag", "period_kind": "month",
     "when": [{"fact": "collected_amount", "op": ">=", "ref": "signed_amount"},
              {"fact": "level", "op": "not_in", "value": ["M1"]}],
     "action": {"type": "value", "value": "y"}},
    {"key": "x.highest", "kind": "award", "period_kind": "month",
     "when": [{"fact": "visits", "op": "highest"},
              {"fact": "satisfaction", "op": "top_share", "value": "0.25"}],
     "action": {"type": "fixed", "amount": "10"}},
]


def library(period_kind: str | None = None) -> list[dict]:
    docs = []
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        doc = validate(read_yaml(path.read_text(), str(path)), str(path), TYPES)
        docs.append(stored_form(doc))
    docs += [stored_form(validate(d, d["key"], TYPES)) for d in EXTRA_RULES]
    return [d for d in docs if period_kind is None or d["period_kind"] == period_kind]


def _definitions(c: compiler.CompiledRuleset, firing: str | None = None) -> str:
    return str([rule for p in c.parts for d, rule in p.definition.items()
                if firing is None or p.paths.get(d) == firing])


def test_comparison_operators_compile_to_durable_tests():
    c = compiler.compile_rules([stored_form(validate(d, d["key"], TYPES))
                                for d in EXTRA_RULES[:2]], NUMERIC)
    text = _definitions(c)
    for token in ("$neq", "$lte", "$nex", "$m", "$ex", "'t': 'emp'"):
        assert token in text, token
    assert "$or" not in text  # alternatives are rules of their own


def test_tier_table_compiles_to_one_exclusive_rule_per_tier():
    docs = [d for d in library("month") if d["key"] == "commission.tiered"]
    c = compiler.compile_rules(docs, NUMERIC)
    tiers = [f for f in c.firings.values() if f.role == "tier"]
    assert [f.index for f in tiers] == [1, 2, 3, 4]
    # tier 2 is attainment >= 0.80 and < 1.00
    name = next(n for n, f in c.firings.items() if f.index == 2)
    body = _definitions(c, name)
    scale = next(s for s in c.scales if "attainment" in s.fields)
    low, high = scale.code(Decimal("0.80")), scale.code(Decimal("1.00"))
    assert f"{{'$gte': {{'attainment': {low}}}}}" in body
    assert f"{{'$lt': {{'attainment': {high}}}}}" in body
    warn = [f for f in c.firings.values() if f.role == "warn"]
    assert {f.missing for f in warn} == {"attainment", "revenue_total"}


def test_decision_rows_are_rules_of_their_own_and_the_first_that_fired_wins():
    docs = [d for d in library("quarter") if d["key"] == "rating.quarterly"]
    c = compiler.compile_rules(docs, NUMERIC)
    rows = {f.index: n for n, f in c.firings.items() if f.role == "row"}
    assert "$or" not in _definitions(c, rows[2])  # no negation of row 1 in row 2
    session = compiler.Session(c)
    facts = {"attainment": Decimal("1.2"), "evaluation_score": Decimal("90")}
    fired = session.evaluate("e", compiler.to_fact(facts, c)).fired
    assert fired == [rows[1]]  # rows 2, 3 and 4 hold too; row 1 comes first
    # the chained rules read the rating from the rated fact
    assert [n for n, s in c.stages.items() if s == "rated"] == []
    c2 = compiler.compile_rules(library("quarter"), NUMERIC)
    keys = {c2.firings[n].rule["key"] for n, s in c2.stages.items() if s == "rated"}
    assert keys == {"eligibility.reserve_supervisor", "pip.trigger"}


def test_negation_keeps_undefined_false():
    cond = {"fact": "attainment", "op": ">=", "value": Decimal("1.1")}
    neg = negate(cond)
    assert holds(neg, {}) is True  # undefined: the original is false, so its negation holds
    assert holds(neg, {"attainment": Decimal("1.0")}) is True
    assert holds(neg, {"attainment": Decimal("1.1")}) is False


@pytest.mark.parametrize("value,threshold", [
    ("0.79999999999999999999", "0.80"), ("0.80000000000000000001", "0.80"),
    ("1.19999999999999999999", "1.2"), ("0.3", "0.30"), ("-0.0000000000000000001", "0"),
    ("1000000000000000.05", "1000000000000000.04"), ("1000000000000000.02", "1000000000000000.01"),
    ("99999999999999.99", "99999999999999.990001"), ("9999999999999999", "10000000000000000"),
])
def test_encoding_keeps_the_exact_order_against_thresholds(value, threshold):
    v, t = Decimal(value), Decimal(threshold)
    scale = compiler.Scale(("x",), [t])
    fact: dict = {}
    scale.encode({"x": v}, fact)
    code = scale.code(t)
    assert (fact["x"] < code) == (v < t)
    assert (fact["x"] == code) == (v == t)
    assert (fact["x"] > code) == (v > t)
    # to_fact encodes a scale of one fact itself: the same code
    compiled = compiler.CompiledRuleset("c", "h", [], [], {}, {}, {}, [scale], set())
    assert compiler.to_fact({"x": v}, compiled) == {"t": "emp", "x": fact["x"]}


def test_values_compared_by_ref_keep_their_order_in_one_gap():
    """Two facts between the same two constants: their codes keep the decimals' order."""
    scale = compiler.Scale(("a", "b"), [Decimal("1000000000000000.04")])
    for a, b in (("1000000000000000.05", "1000000000000000.05"),
                 ("1000000000000000.05", "1000000000000000.06"),
                 ("12345678901234.56", "12345678901234.560000"),
                 ("9999999999999999", "10000000000000000")):
        fact: dict = {}
        scale.encode({"a": Decimal(a), "b": Decimal(b)}, fact)
        assert (fact["a"] < fact["b"]) == (Decimal(a) < Decimal(b))
        assert (fact["a"] == fact["b"]) == (Decimal(a) == Decimal(b))


# --- differential test ----------------------------------------------------------------------

THRESHOLDS = {}


def _random_facts(rng: random.Random, c: compiler.CompiledRuleset) -> dict:
    facts: dict = {}
    for name in sorted(c.fields):
        if name in CHAINED_FACTS:
            continue
        if rng.random() < 0.12:
            continue  # undefined
        if name in ("team_stage",):
            facts[name] = rng.choice(["startup", "growth", "mature"])
        elif name == "level":
            facts[name] = rng.choice(["S1", "S2", "S3", "M1"])
        elif name == "region":
            facts[name] = rng.choice(["North", "East", "South"])
        elif name == "previous_rating":
            facts[name] = rng.choice("ABCD")
        else:
            near = next((list(sc.keys) for sc in c.scales if name in sc.fields), []) \
                or [Decimal(0)]
            base = rng.choice(near)
            tiny = Decimal(1).scaleb(-rng.choice([2, 6, 18, 22]))
            facts[name] = base + rng.choice([-1, 0, 0, 1]) * tiny * rng.randint(1, 9)
    return facts


def _plain(c: compiler.CompiledRuleset, facts: dict) -> set[str]:
    emp = {n for n, cond in c.conditions.items() if c.stages[n] == "emp" and holds(cond, facts)}
    first = compiler.resolve(c, emp, {})
    ratings = [c.firings[n].rule["action"]["rows"][c.firings[n].index - 1]["value"]
               for n in first if c.firings[n].role == "row"
               and c.firings[n].rule["kind"] == "rating"]
    rated = {}
    for rating in ratings or [None]:  # an unrated employee: the rating is undefined
        values = dict(facts, rating=rating)
        rated[rating] = {m for m, cond in c.conditions.items()
                         if c.stages[m] == "rated" and holds(cond, values)}
    return compiler.resolve(c, emp, rated)


@pytest.mark.parametrize("period_kind", ["month", "quarter", "year"])
def test_durable_rules_agree_with_the_plain_evaluator(period_kind):
    c = compiler.compile_rules(library(period_kind), NUMERIC)
    session = compiler.Session(c)
    rng = random.Random(20261127)
    for i in range(1500):
        facts = _random_facts(rng, c)
        fired = session.evaluate(f"e{i}", compiler.to_fact(facts, c)).fired
        expected = _plain(c, facts)
        assert sorted(fired) == sorted(expected), (facts, sorted(fired), sorted(expected))


def test_two_facts_compared_keep_their_exact_order():
    docs = [d for d in library("month") if d["key"] == "compliance.discount_authority"]
    c = compiler.compile_rules(docs, NUMERIC)
    session = compiler.Session(c)
    for discount, fires in (("0.08", False), ("0.08000000000000000001", True),
                            ("0.07999999999999999999", False), ("0.0801", True)):
        facts = {"max_discount_pct": Decimal(discount), "level_authority": Decimal("0.08")}
        fired = session.evaluate("e", compiler.to_fact(facts, c)).fired
        assert bool(fired) is fires, discount


def test_rulesets_beyond_the_limit_are_freed_and_come_back():
    """Previews register rule sets; the oldest are dropped (and freed) past the limit."""
    base = library("month")
    sessions = []
    for i in range(compiler.MAX_RULESETS + 3):
        docs = [dict(d) for d in base]
        docs[0] = dict(docs[0], description=f"variant {i}")
        c = compiler.compile_rules(docs, NUMERIC)
        sessions.append((c, compiler.Session(c)))
    host = compiler.get_host()
    assert len(compiler._registered) <= compiler.MAX_RULESETS
    assert not [n for n in host._ruleset_directory if n.startswith(sessions[0][0].name)]
    c, first = sessions[0]
    facts = {"revenue_new": Decimal("100"), "revenue_existing": Decimal("0"),
             "quota": Decimal("100"), "revenue_total": Decimal("100"),
             "attainment": Decimal("1")}
    fired = first.evaluate("x", compiler.to_fact(facts, c)).fired  # registered again
    assert fired


def test_threads_take_turns_on_the_engine():
    import threading

    c = compiler.compile_rules(library("month"), NUMERIC)
    errors = []

    def work(n):
        try:
            s = compiler.Session(c)
            rng = random.Random(n)
            for i in range(200):
                facts = _random_facts(rng, c)
                fired = s.evaluate(f"t{n}-{i}", compiler.to_fact(facts, c)).fired
                assert sorted(fired) == sorted(_plain(c, facts))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_employees_that_match_no_rule_leave_no_state_behind():
    """Over 1,024 employees that match nothing: no live-state limit, no crash."""
    docs = [d for d in library("month") if d["key"] == "compliance.discount_authority"]
    c = compiler.compile_rules(docs, NUMERIC)
    session = compiler.Session(c)
    facts = {"max_discount_pct": Decimal("0.01"), "level_authority": Decimal("0.08")}
    for i in range(1500):
        fired = session.evaluate(f"n{i}", compiler.to_fact(facts, c)).fired
        assert fired == []


def test_evaluations_leave_no_cycles_for_the_collector():
    """durable_rules' own Promise left a cycle at every firing (its timeout closure, about
    15 objects with the firing's context): the actions leave none, so what an evaluation
    drops goes by reference counting and a run's chunk needs no cycle collection."""
    c = compiler.compile_rules(library("month"), NUMERIC)
    session = compiler.Session(c)
    rng = random.Random(20261130)
    facts = [compiler.to_fact(_random_facts(rng, c), c) for _ in range(200)]
    session.evaluate("warm", facts[0])  # the rulesets' actions are this session's now
    gc.collect()
    fired = 0
    gc.disable()
    try:
        for i, fact in enumerate(facts):
            fired += len(session.evaluate(f"g{i}", fact).fired)
        left = gc.collect()
    finally:
        gc.enable()
    assert fired >= 200
    assert left < 50, f"{left} objects in cycles after {fired} firings"


def test_warnings_only_where_an_amount_needs_the_undefined_value():
    """A rule whose condition compares the value does not apply when it is undefined;
    a rule that needs it for its amount or tier warns."""
    c = compiler.compile_rules(library("month") + library("quarter"), NUMERIC)
    warns = {(f.rule["key"], f.missing) for f in c.firings.values() if f.role == "warn"}
    assert ("commission.tiered", "attainment") in warns
    assert ("rating.quarterly", "attainment") in warns
    assert not {k for k, _ in warns} & {"commission.new_logo", "bonus.startup_new_customer"}
