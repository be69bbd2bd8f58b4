"""The limits of durable_rules' C core: large valid rule sets run, rules beyond the limits
are refused naming the rule and the limit, and a crash in isolated work spares its caller."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from engine import compiler, isolate
from engine.errors import RuleError, RunFailed
from engine.metrics import CATALOG
from engine.rulebook import stored_form, validate

TYPES = {k: t for k, _, _, t, _, _ in CATALOG}
NUMERIC = set(TYPES) | {"level_authority", "team_revenue", "team_quota", "team_attainment",
                        "per_capita_output", "team_members", "pips_overlapping"}


def compiled(*docs: dict) -> compiler.CompiledRuleset:
    return compiler.compile_rules([stored_form(validate(d, d["key"], TYPES)) for d in docs],
                                  NUMERIC)


def evaluate(c: compiler.CompiledRuleset, facts: dict) -> list[compiler.Firing]:
    session = compiler.Session(c)
    return [c.firings[f] for f in session.evaluate("e", compiler.to_fact(facts, c)).fired]


def test_a_commission_with_a_hundred_tiers_pays_the_right_tier():
    bounds = [None, *(Decimal(i) / 100 for i in range(1, 100)), None]
    doc = {"key": "x.tiers", "kind": "commission", "period_kind": "month",
           "action": {"type": "tiers", "metric": "attainment", "base": "revenue_total",
                      "tiers": [{"from": bounds[i], "to": bounds[i + 1], "rate": "0.01"}
                                for i in range(100)]}}
    c = compiled(doc)
    assert len(c.parts) > 2  # shared out among rulesets the C core can hold
    for attainment, tier in (("0", 1), ("0.5", 51), ("0.989999", 99), ("0.99", 100),
                             ("7", 100)):
        fired = evaluate(c, {"attainment": Decimal(attainment),
                             "revenue_total": Decimal(1)})
        assert [(f.role, f.index) for f in fired] == [("tier", tier)], attainment


def test_sixty_alerts_on_distinct_thresholds_all_fire():
    docs = [{"key": f"x.a{i:02d}", "kind": "alert", "period_kind": "month",
             "when": [{"fact": "attainment", "op": ">=", "value": str(Decimal(i) / 50)}],
             "action": {"type": "value", "value": "v"}} for i in range(60)]
    c = compiled(*docs)
    fired = evaluate(c, {"attainment": Decimal("0.5")})
    assert sorted(f.rule["key"] for f in fired) == [f"x.a{i:02d}" for i in range(26)]
    assert len(evaluate(c, {"attainment": Decimal(5)})) == 60


def test_a_table_of_twelve_rows_using_any_takes_the_first_that_matches():
    rows = [{"when": {"any": [{"fact": "attainment", "op": ">=", "value": str(13 - i)},
                              {"fact": "satisfaction", "op": ">=", "value": str(100 - i)},
                              {"fact": "visits", "op": ">", "value": 100 - i}]},
             "value": f"R{i}"} for i in range(12)]
    rows.append({"when": {"fact": "attainment", "op": "defined"}, "value": "Z"})
    c = compiled({"key": "x.table", "kind": "rating", "period_kind": "month",
                  "action": {"type": "table", "rows": rows}})
    cases = [({"attainment": Decimal(20)}, "R0"), ({"visits": Decimal(95)}, "R6"),
             ({"satisfaction": Decimal("88.5"), "attainment": Decimal(1)}, "Z"),
             ({"satisfaction": Decimal(89), "attainment": Decimal(3)}, "R10")]
    for facts, value in cases:
        fired = evaluate(c, facts)
        assert [f.rule["action"]["rows"][f.index - 1]["value"] for f in fired] == [value]


@pytest.mark.parametrize(("when", "field", "why"), [
    ([{"any": [{"fact": f, "op": ">", "value": n} for f in ("quota", "leads", "visits")]}
      for n in range(1, 6)], "when", "more than 128 alternatives"),
    ([{"fact": "quota", "op": ">", "value": n} for n in range(30)], "when", "at most 24"),
])
def test_rules_beyond_the_engine_are_refused_naming_the_limit(when, field, why):
    doc = {"key": "x.big", "kind": "alert", "period_kind": "month", "when": when,
           "action": {"type": "value", "value": "v"}}
    with pytest.raises(RuleError) as err:
        validate(doc, "rule x.big", TYPES)
    assert err.value.field == field and why in str(err.value)
    assert str(err.value).startswith("rule x.big, field when: ")


def _crash(session: Session) -> None:
    os.abort()  # what a crash of the C core looks like to the caller


def _fine(session: Session, value: int) -> int:
    return value + 1


def test_a_crash_in_isolated_work_fails_the_call_and_spares_the_caller(session: Session):
    session.info[isolate.ISOLATE] = True
    with pytest.raises(RunFailed, match="process died"):
        isolate.run(session, _crash)
    assert isolate.run(session, _fine, 41) == 42  # the next call works
    session.info.pop(isolate.ISOLATE)
    assert isolate.run(session, _fine, 1) == 2  # not asked for: in place


CALLER = """
import os, sys, time
sys.path.insert(0, os.getcwd())
from engine import db, isolate
from tests.test_engine_limits import _fine
session = db.make_sessionmaker(sys.argv[1])()
session.info[isolate.ISOLATE] = True
assert isolate.run(session, _fine, 1) == 2
time.sleep(0.5)  # the pool replaces the child that did the work
print(" ".join(str(pid) for pid in isolate._pool._processes), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_the_isolated_children_go_when_their_caller_is_killed(db_url: str) -> None:
    """A server stopped by a signal does not shut its pool down: its children waited on
    their queue for ever (and kept their forkserver up)."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    caller = subprocess.Popen([sys.executable, "-c", CALLER, db_url], cwd=root,
                              stdout=subprocess.PIPE, text=True)
    try:
        children = [int(p) for p in caller.stdout.readline().split()]
        assert children and all(_alive(p) for p in children)
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait(10)
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in children)
