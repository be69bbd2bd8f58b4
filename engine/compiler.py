"""Compile published rules to one durable_rules ruleset, and evaluate it per employee.

What DESIGN.md measured about durable_rules shapes this module:
- facts, not events (every matching rule fires); one sid per employee, asserted, collected
  and deleted at once, so one state is live at a time;
- one ``Host`` per process with the background dispatcher off, rulesets registered under
  a name made of the content hash, actions looked up by name on our host;
- numbers cross as floats, and distinct decimals can meet in one float (1e15 + 0.01 and
  1e15 + 0.04 do). So no number crosses as itself: each numeric fact belongs to a
  ``Scale``, the sorted distinct constants of the rules on it and on every fact compared
  with it by ``ref``; a constant crosses as its place on the scale and a value as the place
  of the gap it falls in, values of one employee in the same gap ordered among
  themselves. Small whole floats, exact at every magnitude the decimals have;
- conditions never divide (ratios are computed beforehand, exactly: engine.exact);
- undefined values are dropped from the fact, never sent as null.

Rules chain through the engine: a rating rule asserts a ``rated`` fact (the employee's
facts plus the rating) that rules reading ``rating`` match; an employee no rating rule
rated gets a ``rated`` fact without one, so those rules see every employee. A commission
or bonus asserts a ``payout`` fact and a holding flag a ``hold`` fact, and a system rule
that joins the two marks the payout held. First match wins in a decision table because
each row is compiled with the negation of the rows above it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import threading
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from engine.conditions import (
    CHAINED_FACTS,
    POPULATION_OPS,
    PRESENCE_OPS,
    facts_read,
    leaves,
    lower_leaf,
    negate,
    push_not,
)
from engine.errors import RunFailed
from engine.exact import exact
from engine.reach import numeric_domains, satisfiable

# --- the compiled form ----------------------------------------------------------------------


@dataclass
class Firing:
    """One compiled durable rule: which rule document, and what part of it."""

    rule: dict[str, Any]
    role: str  # main, tier, row, warn, hold
    index: int | None = None  # tier or row number (1-based)
    missing: str | None = None  # for warnings: the undefined fact
    condition: dict[str, Any] | None = None  # what held, for the explanation
    reads: list[str] | None = None  # the facts its condition reads, once worked out


@dataclass
class CompiledRuleset:
    name: str
    content_hash: str
    rules: list[dict[str, Any]]
    definition: dict[str, Any]
    firings: dict[str, Firing]
    conditions: dict[str, dict[str, Any]]  # durable rule name -> plain condition tree
    stages: dict[str, str]  # durable rule name -> fact type it matches (emp or rated)
    scales: list[Scale]  # the numeric facts the rules read, by group compared together
    text_fields: set[str]
    population: set[str] = field(default_factory=set)

    @property
    def fields(self) -> set[str]:
        return self.text_fields | {f for s in self.scales for f in s.fields}

    @property
    def rates(self) -> bool:
        """True when some rule reads the rating of this run (it needs the rated stage)."""
        return "rated" in self.stages.values()


# A constant's code is (2i + 1) x STEP, i its place on the scale; a value between two
# constants gets the code of the gap (2i x STEP) plus its rank among the employee's values
# in that gap. STEP bounds the facts one scale may hold.
STEP = 1024


@dataclass
class Scale:
    """A group of numeric facts compared with each other, and every constant they meet."""

    fields: tuple[str, ...]
    keys: list[Decimal]  # the constants, sorted, one per value (0.7 and 0.70 are one)

    def code(self, constant: Decimal) -> float:
        i = bisect_left(self.keys, constant)
        return float((2 * i + 1) * STEP)

    def encode(self, values: Mapping[str, Any], fact: dict[str, Any]) -> None:
        """Write the codes of the employee's values of this scale's facts into fact."""
        gaps: dict[int, list[tuple[Any, str]]] = {}
        keys = self.keys
        for name in self.fields:
            value = values.get(name)
            if value is None:
                continue
            v = exact(value)
            i = bisect_left(keys, v)
            if i < len(keys) and keys[i] == v:
                fact[name] = float((2 * i + 1) * STEP)
            else:
                gaps.setdefault(i, []).append((v, name))
        for i, items in gaps.items():
            if len(items) == 1:
                fact[items[0][1]] = float(2 * i * STEP + 1)
                continue
            rank = {v: r for r, v in enumerate(sorted({v for v, _ in items}), start=1)}
            for v, name in items:
                fact[name] = float(2 * i * STEP + rank[v])


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


def assume_defined(cond: dict[str, Any] | None, fact: str) -> dict[str, Any] | None:
    """The condition as it reads once ``fact`` is known to be defined: its presence tests
    become true or false; comparisons of its value stay (false while it is undefined)."""
    if cond is None:
        return None
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        return {key: [assume_defined(c, fact) for c in cond[key]]}
    if "not" in cond:
        return {"not": assume_defined(cond["not"], fact)}
    if cond["fact"] == fact and cond["op"] in PRESENCE_OPS:
        return {"all": []} if cond["op"] == "defined" else {"any": []}
    return cond


def required_facts(rule: Mapping[str, Any]) -> list[str]:
    """Facts the rule's amount or value needs; undefined, they give a warning.

    A decision table needs the facts its last row (the catch-all) asks to be defined.
    """
    action = rule["action"]
    atype = action["type"]
    if atype == "tiers":
        return list(dict.fromkeys([action["metric"], action["base"]]))
    if atype == "rate":
        return [action["base"]]
    if atype == "per_unit":
        return [action["per"]]
    if atype == "table":
        last = push_not(action["rows"][-1]["when"])
        return list(dict.fromkeys(c["fact"] for c in leaves(last) if c["op"] == "defined"))
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
            if fact in CHAINED_FACTS:
                continue
            # The warning: the rule would apply were the fact defined (its scope and
            # condition hold, reading the fact's presence tests as met), but its amount or
            # value needs it. A comparison of the fact's value is false while it is
            # undefined, so a rule that compares it simply does not apply: no warning.
            undefined = {"fact": fact, "op": "undefined"}
            if action["type"] == "table":
                rows = [r["when"] or {"all": []} for r in action["rows"]]
                cond = _all(base, [negate(r) for r in rows],
                            assume_defined(rows[-1], fact), undefined)
            else:
                cond = _all(scope_condition(rule), assume_defined(rule.get("when"), fact),
                            undefined)
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


def _is_numeric(fact: str, numeric: set[str]) -> bool:
    return fact in numeric or "__" in fact  # population facts are numbers


def _scales(conds: list[dict[str, Any]], numeric: set[str]) -> tuple[list[Scale], set[str]]:
    """Group the numeric facts the conditions read by ``ref`` and gather their constants."""
    parent: dict[str, str] = {}

    def find(f: str) -> str:
        while parent.setdefault(f, f) != f:
            parent[f] = parent[parent[f]]
            f = parent[f]
        return f

    constants: dict[str, set[Decimal]] = {}
    text: set[str] = set()
    for cond in conds:
        for leaf in leaves(cond):
            fact = leaf["fact"]
            if not _is_numeric(fact, numeric):
                text.add(fact)
                if "ref" in leaf:
                    text.add(leaf["ref"])
                continue
            find(fact)
            if "ref" in leaf:
                parent[find(leaf["ref"])] = find(fact)
            elif "value" in leaf:
                values = leaf["value"] if isinstance(leaf["value"], list) else [leaf["value"]]
                constants.setdefault(fact, set()).update(Decimal(str(v)) for v in values)
    groups: dict[str, list[str]] = {}
    for fact in sorted(parent):
        groups.setdefault(find(fact), []).append(fact)
    scales = []
    for members in groups.values():
        if len(members) >= STEP:
            raise RunFailed(f"{len(members)} facts compared with each other: at most "
                            f"{STEP - 1}")
        keys: dict[Decimal, Decimal] = {}
        for fact in members:
            for c in constants.get(fact, ()):
                keys.setdefault(c.normalize(), c)  # 0.7 and 0.70 are one place
        scales.append(Scale(tuple(members), sorted(keys.values())))
    return scales, text


class _Emitter:
    def __init__(self, numeric: set[str], scales: list[Scale]):
        self.numeric = numeric
        self.scale = {f: s for s in scales for f in s.fields}

    def value(self, fact: str, value: Any) -> Any:
        if _is_numeric(fact, self.numeric):
            return self.scale[fact].code(Decimal(str(value)))
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
    definition: dict[str, Any] = {}
    firings: dict[str, Firing] = {}
    conditions: dict[str, dict[str, Any]] = {}
    stages: dict[str, str] = {}
    population: set[str] = set()
    domains = numeric_domains(numeric_facts)
    for name, firing, cond in plan(rules):
        if firing.role == "warn" and not satisfiable(cond, domains):
            continue  # e.g. the condition compares the very fact that is undefined
        reads = facts_read(cond)
        stages[name] = "rated" if any(f in CHAINED_FACTS for f in reads) else "emp"
        for leaf_fact, leaf_op in _leaf_ops(cond):
            if leaf_op in POPULATION_OPS:
                population.add(leaf_fact)
        firings[name] = firing
        conditions[name] = _lower(cond)
    scales, text = _scales(list(conditions.values()), numeric_facts)
    emitter = _Emitter(numeric_facts, scales)
    for name, lowered in conditions.items():
        expr = emitter.expr(lowered)
        definition[name] = {"all": [{"m": {"$and": [{"t": stages[name]}, expr]}}], "run": name}
    definition["hold"] = {
        "all": [{"p": {"t": "payout"}}, {"h": {"t": "hold"}}], "run": "hold",
    }
    # Every employee's fact must match some rule: durable_rules keeps a state for a fact
    # that matched nothing, and deleting that state crashed the process (measured here).
    definition["seen"] = {"all": [{"m": {"t": "emp"}}], "run": "seen"}
    return CompiledRuleset(
        name=f"laurel_{digest[:16]}", content_hash=digest, rules=rules, definition=definition,
        firings=firings, conditions=conditions, stages=stages, scales=scales,
        text_fields=text, population=population,
    )


def _leaf_ops(cond: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["fact"], c["op"]) for c in leaves(cond)]


def to_fact(values: Mapping[str, Any], compiled: CompiledRuleset) -> dict[str, Any]:
    """The employee's facts as durable_rules sees them: only fields the rules read, each
    number as its code on its scale (see Scale)."""
    fact: dict[str, Any] = {"t": "emp"}
    for name in compiled.text_fields:
        value = values.get(name)
        if value is not None:
            fact[name] = str(value)
    for scale in compiled.scales:
        scale.encode(values, fact)
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


class Evaluation(NamedTuple):
    """What fired for one employee: durable rule names in firing order, the (payout rule,
    holding flag) pairs, and the rating each rule on the rated stage saw (None: unrated)."""

    fired: list[str]
    holds: list[tuple[str, str]]
    ratings: dict[str, str | None]


class Session:
    """Evaluate employees one at a time against a compiled ruleset in this process."""

    def __init__(self, compiled: CompiledRuleset):
        self.compiled = compiled
        self.fired: list[str] = []
        self.ratings: dict[str, str | None] = {}
        self.holds: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.pending: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self._actions = {name: _promise(self._action(name, firing))
                         for name, firing in compiled.firings.items()}
        self._actions["hold"] = _promise(self._hold)
        self._actions["seen"] = _promise(_noop)
        with ENGINE_LOCK:
            self.host = get_host()
            self._ruleset = _register(self.host, compiled)

    def _action(self, name: str, firing: Firing) -> Any:
        rule = firing.rule
        rated_stage = self.compiled.stages[name] == "rated"

        def action(c: Any) -> None:
            # durable_rules keeps an exception raised here on the state instead of raising
            # it: catch everything, and evaluate() turns it into a failed run. Chained facts
            # are asserted by evaluate() after the action: asserted from inside an action,
            # durable_rules ran the action a second time.
            try:
                # A condition with "or" in it is expanded by durable_rules into one path per
                # alternative, and fires once for each that holds; a rule on the rated stage
                # would fire once per rating rule: count a rule once per employee.
                if name in self.seen:
                    return
                self.seen.add(name)
                self.fired.append(name)
                if rated_stage:
                    self.ratings[name] = c.m._d.get("rating")
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

    def evaluate(self, sid: str, fact: dict[str, Any]) -> Evaluation:
        """Assert one employee's fact, collect what fired, delete the state."""
        with ENGINE_LOCK:
            if self._ruleset is not self.host._ruleset_directory.get(self.compiled.name):
                self._ruleset = _register(self.host, self.compiled)  # dropped meanwhile
            # the ruleset may serve several sessions in turn: its actions are ours now
            self._ruleset._actions = self._actions
            return self._evaluate(sid, fact)

    def _evaluate(self, sid: str, fact: dict[str, Any]) -> Evaluation:
        durable_engine = _durable()
        self.fired, self.holds, self.errors, self.pending = [], [], [], []
        self.ratings, self.seen = {}, set()
        emp = dict(fact, sid=sid)
        queue = [emp]
        asserted: set[tuple[str, str]] = set()
        try:
            while queue:
                current = queue.pop(0)
                try:
                    self.host.assert_fact(self.compiled.name, current)
                except durable_engine.MessageNotHandledException:
                    pass  # a chained fact no rule reads
                if current is emp and self.compiled.rates and \
                        not any(p["t"] == "rated" for p in self.pending):
                    # No rating rule rated this employee: rules that read the rating still
                    # see them, with the rating undefined.
                    self.pending.append(dict(emp, t="rated"))
                for chained in self.pending:
                    if chained["t"] in ("payout", "hold"):
                        key = (chained["t"], chained["rule"])
                        if key in asserted:
                            continue
                        asserted.add(key)
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
        return Evaluation(list(self.fired), list(self.holds), dict(self.ratings))


def _promise(fn: Any) -> Any:
    return _durable().Promise(fn)
