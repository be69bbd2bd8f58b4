"""Compile published rules to one durable_rules ruleset, and evaluate it per employee.

What DESIGN.md measured about durable_rules shapes this module:
- facts, not events (every matching rule fires); one sid per employee, asserted, collected
  and deleted at once, so one state is live at a time;
- one ``Host`` per process with the background dispatcher off, rulesets registered under
  a name made of the content hash, actions looked up by name on our host;
- numbers cross as floats: conditions never divide, ratios are computed beforehand, and
  each value is encoded so that its order against every constant of the rules is the
  order of the exact decimals (a ratio of 0.7999... never passes for 0.80);
- undefined values are dropped from the fact, never sent as null.

Rules chain through the engine: a rating rule asserts a ``rated`` fact (the employee's
facts plus the rating) that eligibility and PIP rules match; a commission or bonus
asserts a ``payout`` fact and a holding flag a ``hold`` fact, and a system rule that joins
the two marks the payout held. First match wins in a decision table because each row is
compiled with the negation of the rows above it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import threading
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.conditions import (
    CHAINED_FACTS,
    POPULATION_OPS,
    facts_read,
    lower_leaf,
    negate,
    push_not,
)
from engine.errors import RunFailed

# --- the compiled form ----------------------------------------------------------------------


@dataclass
class Firing:
    """One compiled durable rule: which rule document, and what part of it."""

    rule: dict[str, Any]
    role: str  # main, tier, row, warn, hold
    index: int | None = None  # tier or row number (1-based)
    missing: str | None = None  # for warnings: the undefined fact
    condition: dict[str, Any] | None = None  # what held, for the explanation
    parts: tuple[list[str], list[Any]] | None = None  # its facts and leaves, once worked out


@dataclass
class CompiledRuleset:
    name: str
    content_hash: str
    rules: list[dict[str, Any]]
    definition: dict[str, Any]
    firings: dict[str, Firing]
    conditions: dict[str, dict[str, Any]]  # durable rule name -> plain condition tree
    stages: dict[str, str]  # durable rule name -> fact type it matches (emp or rated)
    thresholds: dict[str, list[tuple[Decimal, float]]]
    fields: set[str]
    population: set[str] = field(default_factory=set)
    ref_pairs: list[tuple[str, str]] = field(default_factory=list)


def _num(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def scope_condition(rule: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for fact, values in (rule.get("scope") or {}).items():
        out.append({"fact": fact, "op": "in", "value": list(values)})
    return out


def _all(*parts: Any) -> dict[str, Any]:
    items = []
    for p in parts:
        if p is None:
            continue
        if isinstance(p, list):
            items.extend(p)
        else:
            items.append(p)
    return {"all": items}


def _without_fact(cond: dict[str, Any] | None, fact: str) -> dict[str, Any] | None | bool:
    """Drop a conjunction's leaves on a fact; False when cond is not a plain conjunction."""
    if cond is None:
        return None
    if "fact" in cond:
        return None if cond["fact"] == fact or cond.get("ref") == fact else cond
    if "all" in cond and all("fact" in c for c in cond["all"]):
        return {"all": [c for c in cond["all"] if c["fact"] != fact and c.get("ref") != fact]}
    return False


def _tests_value(cond: dict[str, Any] | None, fact: str) -> bool:
    """True when the condition compares the fact's value (not only that it is defined)."""
    stack = [cond] if cond else []
    while stack:
        c = stack.pop()
        if "all" in c or "any" in c:
            stack.extend(c.get("all") or c.get("any") or [])
        elif "not" in c:
            stack.append(c["not"])
        elif fact in (c["fact"], c.get("ref")) and c["op"] not in ("defined", "undefined"):
            return True
    return False


def required_facts(rule: Mapping[str, Any]) -> list[str]:
    """Facts the rule's amount or value needs; undefined, they give a warning."""
    action = rule["action"]
    atype = action["type"]
    if atype == "tiers":
        return list(dict.fromkeys([action["metric"], action["base"]]))
    if atype == "rate":
        return [action["base"]]
    if atype == "per_unit":
        return [action["per"]]
    if atype == "table":
        last = action["rows"][-1]["when"]
        cond = last if last is None or "fact" in last else None
        conj = [cond] if cond else (last or {}).get("all", []) if last and "all" in last else []
        return [c["fact"] for c in conj if "fact" in c and c["op"] == "defined"]
    return []


def plan(rules: list[dict[str, Any]]) -> list[tuple[str, Firing, dict[str, Any]]]:
    """Return (name, firing, condition) for every durable rule the documents make."""
    out: list[tuple[str, Firing, dict[str, Any]]] = []
    counter = itertools.count(1)
    for rule in rules:
        base = _all(scope_condition(rule), rule.get("when"))
        action = rule["action"]
        if action["type"] == "tiers":
            metric, tbase = action["metric"], action["base"]
            for i, tier in enumerate(action["tiers"], start=1):
                band = []
                if tier["from"] is not None:
                    band.append({"fact": metric, "op": ">=", "value": _num(tier["from"])})
                if tier["to"] is not None:
                    band.append({"fact": metric, "op": "<", "value": _num(tier["to"])})
                if not band:
                    band.append({"fact": metric, "op": "defined"})
                cond = _all(base, band, {"fact": tbase, "op": "defined"})
                out.append((f"r{next(counter)}", Firing(rule, "tier", i, condition=cond), cond))
        elif action["type"] == "table":
            above: list[dict[str, Any]] = []
            for i, row in enumerate(action["rows"], start=1):
                this = row["when"] or {"all": []}
                cond = _all(base, this, [negate(a) for a in above])
                shown = _all(base, this)
                out.append((f"r{next(counter)}", Firing(rule, "row", i, condition=shown), cond))
                above.append(this)
        else:
            needs = [{"fact": f, "op": "defined"} for f in required_facts(rule)]
            cond = _all(base, needs)
            out.append((f"r{next(counter)}", Firing(rule, "main", condition=base), cond))
        for fact in required_facts(rule):
            rest = _without_fact(rule.get("when"), fact)
            if rest is False or fact in CHAINED_FACTS or _tests_value(rule.get("when"), fact):
                # A rule whose condition compares the fact simply does not apply when it is
                # undefined (a condition on an undefined value is false): no warning.
                continue
            cond = _all(scope_condition(rule), rest, {"fact": fact, "op": "undefined"})
            out.append((f"r{next(counter)}", Firing(rule, "warn", missing=fact), cond))
    return out


# --- to durable_rules JSON ---------------------------------------------------------------------


def _lower(cond: dict[str, Any]) -> dict[str, Any]:
    """Push negations to the leaves and rewrite population operators as comparisons."""
    cond = push_not(cond)

    def walk(c: dict[str, Any]) -> dict[str, Any]:
        if "all" in c:
            return {"all": [walk(x) for x in c["all"]]}
        if "any" in c:
            return {"any": [walk(x) for x in c["any"]]}
        if c["op"] in POPULATION_OPS:
            return lower_leaf(c)
        return c

    return walk(cond)


_DURABLE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}






class _Emitter:
    def __init__(self, numeric: set[str]):
        self.numeric = numeric
        self.thresholds: dict[str, set[Decimal]] = {}
        self.fields: set[str] = set()
        self.ref_pairs: set[tuple[str, str]] = set()

    def value(self, fact: str, value: Any) -> Any:
        if fact in self.numeric or "__" in fact:  # population facts are numbers
            d = _num(value)
            self.thresholds.setdefault(fact, set()).add(d)
            return safe_float(float(d))
        return str(value)

    def expr(self, c: dict[str, Any]) -> dict[str, Any]:
        if "all" in c:
            parts = [self.expr(x) for x in c["all"]]
            return parts[0] if len(parts) == 1 else {"$and": parts} if parts else \
                {"$ex": {"t": 1}}
        if "any" in c:
            parts = [self.expr(x) for x in c["any"]]
            return parts[0] if len(parts) == 1 else {"$or": parts} if parts else \
                {"$nex": {"t": 1}}
        fact, op = c["fact"], c["op"]
        self.fields.add(fact)
        if op == "defined":
            return {"$ex": {fact: 1}}
        if op == "undefined":
            return {"$nex": {fact: 1}}
        if op in ("in", "not_in"):
            values = [self.value(fact, v) for v in c["value"]]
            if op == "in":
                eqs = [{fact: v} for v in values]
                return eqs[0] if len(eqs) == 1 else {"$or": eqs}
            return {"$and": [{"$ex": {fact: 1}}, *({"$neq": {fact: v}} for v in values)]}
        if "ref" in c:
            self.fields.add(c["ref"])
            if fact in self.numeric:
                self.ref_pairs.add((fact, c["ref"]))
            other: Any = {"$m": c["ref"]}
            guard = [{"$ex": {fact: 1}}, {"$ex": {c["ref"]: 1}}]
        else:
            other = self.value(fact, c["value"])
            guard = [{"$ex": {fact: 1}}]
        if op == "==":
            test = {fact: other}
        else:
            test = {_DURABLE_OPS[op]: {fact: other}}
        return {"$and": [*guard, test]} if op == "!=" or "ref" in c else test


def compile_rules(rules: list[dict[str, Any]], numeric_facts: set[str]) -> CompiledRuleset:
    """Compile rule documents (validated, stored form) into one durable_rules ruleset."""
    digest = hashlib.sha256(json.dumps(rules, sort_keys=True, default=str).encode()).hexdigest()
    emitter = _Emitter(numeric_facts)
    definition: dict[str, Any] = {}
    firings: dict[str, Firing] = {}
    conditions: dict[str, dict[str, Any]] = {}
    stages: dict[str, str] = {}
    population: set[str] = set()
    for name, firing, cond in plan(rules):
        reads = facts_read(cond)
        stage = "rated" if any(f in CHAINED_FACTS for f in reads) else "emp"
        for leaf_fact, leaf_op in _leaf_ops(cond):
            if leaf_op in POPULATION_OPS:
                population.add(leaf_fact)
        lowered = _lower(cond)
        expr = emitter.expr(lowered)
        definition[name] = {"all": [{"m": {"$and": [{"t": stage}, expr]}}], "run": name}
        firings[name] = firing
        conditions[name] = lowered
        stages[name] = stage
    definition["hold"] = {
        "all": [{"p": {"t": "payout"}}, {"h": {"t": "hold"}}], "run": "hold",
    }
    # Every employee's fact must match some rule: durable_rules keeps a state for a fact
    # that matched nothing, and deleting that state crashed the process (measured here).
    definition["seen"] = {"all": [{"m": {"t": "emp"}}], "run": "seen"}
    thresholds = {
        f: sorted((d, safe_float(float(d))) for d in values)
        for f, values in emitter.thresholds.items()
    }
    return CompiledRuleset(
        name=f"laurel_{digest[:16]}", content_hash=digest, rules=rules, definition=definition,
        firings=firings, conditions=conditions, stages=stages, thresholds=thresholds,
        fields=emitter.fields, population=population, ref_pairs=sorted(emitter.ref_pairs),
    )


def _leaf_ops(cond: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    stack = [cond]
    while stack:
        c = stack.pop()
        if "all" in c or "any" in c:
            stack.extend(c.get("all") or c.get("any") or [])
        elif "not" in c:
            stack.append(c["not"])
        else:
            out.append((c["fact"], c["op"]))
    return out


def safe_float(f: float) -> float:
    """Avoid the one float spelling durable_rules' JSON parser refuses (1e-05, 1e+16).

    It needs a decimal point in the mantissa; one step away from zero gives one
    (1.0000000000000001e-05) and keeps the value's order against every other float.
    """
    text = repr(f)
    if "e" in text and "." not in text:
        return math.nextafter(f, math.copysign(math.inf, f))
    return f


def encode(value: Decimal, thresholds: list[tuple[Decimal, float]]) -> float:
    """Return a float whose order against each threshold is the decimal's order."""
    return safe_float(_encode(value, thresholds))


def _encode(value: Decimal, thresholds: list[tuple[Decimal, float]]) -> float:
    f = float(value)
    if not thresholds:
        return f
    i = bisect_left(thresholds, (value, -math.inf))
    # thresholds[i-1] < value <= thresholds[i] in exact terms
    if i < len(thresholds) and thresholds[i][0] == value:
        return thresholds[i][1]
    if i > 0 and f <= thresholds[i - 1][1]:
        f = math.nextafter(thresholds[i - 1][1], math.inf)
    if i < len(thresholds) and f >= thresholds[i][1]:
        f = math.nextafter(thresholds[i][1], -math.inf)
    return f


def to_fact(values: Mapping[str, Any], compiled: CompiledRuleset) -> dict[str, Any]:
    """The employee's facts as durable_rules sees them: only fields the rules read."""
    fact: dict[str, Any] = {"t": "emp"}
    for name in compiled.fields:
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, Decimal):
            fact[name] = encode(value, compiled.thresholds.get(name, []))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            fact[name] = encode(Decimal(value), compiled.thresholds.get(name, []))
        else:
            fact[name] = str(value)
    # Two facts compared with each other: distinct decimals that meet in one float are
    # pulled one step apart in the decimals' order.
    for a, b in compiled.ref_pairs:
        if a in fact and b in fact and fact[a] == fact[b]:
            da, db = _num(values[a]), _num(values[b])
            if da != db:
                fact[a] = math.nextafter(fact[a], math.inf if da > db else -math.inf)
    return fact


# --- the host ----------------------------------------------------------------------------------

_host: Any = None
_host_pid: int | None = None


def _durable() -> Any:
    from durable import engine as durable_engine

    return durable_engine


def get_host() -> Any:
    """One host per process, dispatcher off (DESIGN.md: threads and the dispatcher)."""
    global _host, _host_pid
    if _host is None or _host_pid != os.getpid():
        durable_engine = _durable()

        class QuietHost(durable_engine.Host):
            def __init__(self) -> None:
                self.actions: dict[str, Any] = {}
                super().__init__()

            def _run(self) -> None:  # no background dispatcher thread
                return None

            def get_action(self, action_name: str) -> Any:
                return self.actions[action_name]

        _host, _host_pid = QuietHost(), os.getpid()
        _registered.clear()
    return _host


# The C core is not safe when several threads share a host (DESIGN.md): a web server's
# threads that preview or try a rule take turns.
ENGINE_LOCK = threading.RLock()
MAX_RULESETS = 16
_registered: list[str] = []


def _register(host: Any, compiled: CompiledRuleset) -> Any:
    """Register a compiled ruleset once per process; drop the oldest beyond MAX_RULESETS."""
    if compiled.name in host._ruleset_directory:
        if compiled.name in _registered:
            _registered.remove(compiled.name)
        _registered.append(compiled.name)
        return host._ruleset_directory[compiled.name]
    for name in compiled.firings:
        host.actions[name] = _noop
    host.actions["hold"] = _noop
    host.actions["seen"] = _noop
    # set_rulesets deletes "run" from the dicts it is given: pass a copy.
    host.set_rulesets({compiled.name: copy.deepcopy(compiled.definition)})
    _registered.append(compiled.name)
    while len(_registered) > MAX_RULESETS:
        _drop(host, _registered.pop(0))
    return host._ruleset_directory[compiled.name]


def _drop(host: Any, name: str) -> None:
    """Unregister a ruleset and free its C side (popping the name alone would leak it)."""
    import durable_rules_engine

    ruleset = host._ruleset_directory.pop(name, None)
    if ruleset is None:
        return
    if ruleset in host._ruleset_list:
        host._ruleset_list.remove(ruleset)
    durable_rules_engine.delete_ruleset(ruleset._handle)


def _noop(c: Any) -> None:
    return None


class Session:
    """Evaluate employees one at a time against a compiled ruleset in this process."""

    def __init__(self, compiled: CompiledRuleset):
        self.compiled = compiled
        self.fired: list[tuple[str, dict[str, Any]]] = []
        self.holds: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.pending: list[dict[str, Any]] = []
        self._actions = {name: _promise(self._action(name, firing))
                         for name, firing in compiled.firings.items()}
        self._actions["hold"] = _promise(self._hold)
        self._actions["seen"] = _promise(_noop)
        with ENGINE_LOCK:
            self.host = get_host()
            self._ruleset = _register(self.host, compiled)

    def _action(self, name: str, firing: Firing) -> Any:
        rule = firing.rule

        def action(c: Any) -> None:
            # durable_rules keeps an exception raised here on the state instead of raising
            # it: catch everything, and evaluate() turns it into a failed run. Chained facts
            # are asserted by evaluate() after the action: asserted from inside an action,
            # durable_rules ran the action a second time.
            try:
                # A condition with "or" in it is expanded by durable_rules into one path per
                # alternative, and fires once for each that holds: count a rule once per fact.
                seen = (name, c.m._d.get("t"), c.m._d.get("rating_rule"))
                if seen in self.seen:
                    return
                self.seen.add(seen)
                self.fired.append((name, {}))
                if firing.role == "warn":
                    return
                if rule["kind"] == "rating":
                    value = rule["action"]["rows"][firing.index - 1]["value"]
                    rated = dict(c.m._d)
                    rated.update(t="rated", rating=value, rating_rule=rule["key"])
                    self.pending.append(rated)
                if rule["kind"] in ("commission", "bonus"):
                    self.pending.append({"t": "payout", "rule": rule["key"]})
                if rule.get("hold"):
                    self.pending.append({"t": "hold", "rule": rule["key"]})
            except BaseException as exc:  # noqa: BLE001 - reported by evaluate()
                self.errors.append(f"rule {rule['key']}: {type(exc).__name__}: {exc}")

        return action

    def _hold(self, c: Any) -> None:
        pair = (c.p["rule"], c.h["rule"])
        if pair not in self.holds:
            self.holds.append(pair)

    def evaluate(self, sid: str, fact: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
        """Assert one employee's fact, collect what fired, delete the state."""
        with ENGINE_LOCK:
            if self._ruleset is not self.host._ruleset_directory.get(self.compiled.name):
                self._ruleset = _register(self.host, self.compiled)  # dropped meanwhile
            # the ruleset may serve several sessions in turn: its actions are ours now
            self._ruleset._actions = self._actions
            return self._evaluate(sid, fact)

    def _evaluate(self, sid: str, fact: dict[str, Any]
                  ) -> tuple[list[str], list[tuple[str, str]]]:
        durable_engine = _durable()
        self.fired, self.holds, self.errors, self.pending = [], [], [], []
        self.seen: set[tuple[Any, ...]] = set()
        queue = [dict(fact, sid=sid)]
        try:
            while queue:
                try:
                    self.host.assert_fact(self.compiled.name, queue.pop(0))
                except durable_engine.MessageNotHandledException:
                    pass  # a chained fact no rule reads
                for chained in self.pending:
                    chained["sid"] = sid
                    queue.append(chained)
                self.pending = []
        except durable_engine.MessageObservedException:
            raise RunFailed(f"employee {sid}: the same facts were asserted twice") from None
        except Exception as exc:
            raise RunFailed(f"employee {sid}: the rule engine failed: {exc}") from exc
        finally:
            self._ruleset.delete_state(sid)
        if self.errors:
            raise RunFailed(f"employee {sid}: {self.errors[0]}")
        return [name for name, _ in self.fired], list(self.holds)


def _promise(fn: Any) -> Any:
    return _durable().Promise(fn)
