"""Compile published rules to durable_rules rulesets, and evaluate them per employee.

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

The C core has fixed limits (src/rules of durable_rules 2.0.28): 32 expressions (and, or,
end) per rule, 64 alpha nodes pending while one fact is matched, 255 fields a fact. A
ruleset past them crashed the process or refused to load. So no durable rule holds an
"or": each condition is worked out into its alternatives (negations pushed down to the
leaves, then distributed), one plain conjunction per durable rule; and the rules are
shared out among several small rulesets (``Part``), each given only the fields it reads.
Where a rule cannot fit (too many alternatives, too long a conjunction), ``check_limits``
refuses it at validation, naming the rule and the limit.

Rules chain through the engine in stages: the employee's ``emp`` fact goes through the
parts of the first stage; a rating rule's row gives a ``rated`` fact (the employee's facts
plus the rating) that the parts of rules reading ``rating`` match, and an employee no
rating rule rated gets a ``rated`` fact without one, so those rules see every employee. Only
what other rules read is chained: a holding flag that fired holds every commission and
bonus of the employee, paired here without asserting payouts and holds (a join of two
facts per payout cost a third of the engine's time and decided nothing). In a decision table
each row is a rule of its own and the first row that fired wins (rows above are not
negated into the ones below: that made conditions no ruleset could hold); likewise a
table's warning stands only when no row of it fired.
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
from functools import cached_property
from typing import Any, NamedTuple

import orjson

from engine.conditions import (
    CHAINED_FACTS,
    POPULATION_OPS,
    PRESENCE_OPS,
    facts_read,
    leaves,
    lower_leaf,
    push_not,
)
from engine.errors import RunFailed
from engine.exact import exact
from engine.reach import numeric_domains, satisfiable

# --- limits of the compiled form --------------------------------------------------------------

MAX_ALTERNATIVES = 128  # conjunctions one rule (a row, a tier) may work out to
MAX_LEAVES = 24  # tests in one conjunction (the C core takes 32 expressions a rule)
PART_NODES = 40  # tests in one ruleset (the C core keeps at most 64 pending)
PART_FIELDS = 200  # fields a part's fact may carry (the C core takes 255)

# --- the compiled form ----------------------------------------------------------------------


@dataclass
class Firing:
    """One rule of a document as compiled: which rule document, and what part of it."""

    rule: dict[str, Any]
    role: str  # main, tier, row, warn
    index: int | None = None  # tier or row number (1-based)
    missing: str | None = None  # for warnings: the undefined fact
    condition: dict[str, Any] | None = None  # what held, for the explanation
    reads: list[str] | None = None  # the facts its condition reads, once worked out
    # what its outcomes say the same for every employee, worded once (engine.runs.Worded)
    worded: Any = None


@dataclass
class Part:
    """One durable_rules ruleset: some conjunctions of one stage, and the fields they read."""

    name: str
    stage: str  # emp or rated
    definition: dict[str, Any]
    paths: dict[str, str]  # durable rule name -> firing name
    fields: frozenset[str]


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
        """Write the codes of the employee's values of this scale's facts into fact (a
        scale of one fact, alone in its gap, is encoded by to_fact itself)."""
        keys = self.keys
        gaps: dict[int, list[tuple[Any, str]]] = {}
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


@dataclass
class CompiledRuleset:
    name: str
    content_hash: str
    rules: list[dict[str, Any]]
    parts: list[Part]
    firings: dict[str, Firing]
    conditions: dict[str, dict[str, Any]]  # firing name -> plain condition tree (lowered)
    stages: dict[str, str]  # firing name -> fact type it matches (emp or rated)
    scales: list[Scale]  # the numeric facts the rules read, by group compared together
    text_fields: set[str]
    population: set[str] = field(default_factory=set)
    # (employee id, rule key) -> what the rule paid the employee earlier in the year, for
    # the rules with an annual cap; set for a period by engine.runs.compile_for.
    paid_earlier: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    # (employee id, rule key) -> what a recoverable draw is owed before the period
    # (engine.draws.balances), set with paid_earlier.
    draw_balances: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    # employee id -> the payments of rules with a clawback it may correct
    # (engine.clawbacks.candidates), set with paid_earlier.
    clawable: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # employee id -> the parts of earlier payments held until collected
    # (engine.clawbacks.held_until_collected)
    held_until_collected: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def fields(self) -> set[str]:
        return self.text_fields | {f for s in self.scales for f in s.fields}

    @cached_property
    def by_key(self) -> dict[str, dict[str, Any]]:
        """The rules by key (read per employee where a clawback or a release names one)."""
        return {r["key"]: r for r in self.rules}

    @cached_property
    def encoding(self) -> tuple[tuple[str, ...],
                                tuple[tuple[str, list[Decimal], int] | Scale, ...]]:
        """How to_fact encodes an employee: the text fields, then the scales in order,
        one of a single fact as (fact, constants, their count)."""
        return (tuple(self.text_fields),
                tuple((s.fields[0], s.keys, len(s.keys)) if len(s.fields) == 1 else s
                      for s in self.scales))

    @property
    def rates(self) -> bool:
        """True when some rule reads the rating of this run (it needs the rated stage)."""
        return "rated" in self.stages.values()


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
    """Return (name, firing, condition) for every part of the documents that fires."""
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
            for i, row in enumerate(action["rows"], start=1):
                cond = _all(base, row["when"] or {"all": []})
                out.append((f"r{next(counter)}", Firing(rule, "row", i, condition=cond), cond))
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
            # undefined, so a rule that compares it simply does not apply: no warning. A
            # table's warning is dropped when one of its rows fired (Session).
            undefined = {"fact": fact, "op": "undefined"}
            if action["type"] == "table":
                cond = _all(base, assume_defined(action["rows"][-1]["when"], fact), undefined)
            else:
                cond = _all(scope_condition(rule), assume_defined(rule.get("when"), fact),
                            undefined)
            out.append((f"r{next(counter)}", Firing(rule, "warn", missing=fact), cond))
    return out


# --- conditions worked out into plain conjunctions ------------------------------------------------


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


class _TooMany(Exception):
    pass


def alternatives(cond: dict[str, Any], limit: int = MAX_ALTERNATIVES
                 ) -> list[list[dict[str, Any]]]:
    """The lowered condition as a list of plain conjunctions (its disjunctive form).

    A conjunction that tests a fact both undefined and anything else can never hold and is
    left out. Raises _TooMany past ``limit`` conjunctions.
    """

    def walk(c: dict[str, Any]) -> list[list[dict[str, Any]]]:
        if "any" in c:
            out = [conj for x in c["any"] for conj in walk(x)]
            if len(out) > limit:
                raise _TooMany
            return out
        if "all" in c:
            out = [[]]
            for x in c["all"]:
                out = [a + b for a in out for b in walk(x) if _possible(a + b)]
                if len(out) > limit:
                    raise _TooMany
            return out
        return [[c]]

    return walk(cond)


def _possible(conj: list[dict[str, Any]]) -> bool:
    undefined = {c["fact"] for c in conj if c["op"] == "undefined"}
    if not undefined:
        return True
    return not any(c["op"] != "undefined" and (c["fact"] in undefined
                                                or c.get("ref") in undefined) for c in conj)


def check_limits(rule: Mapping[str, Any]) -> tuple[str, str] | None:
    """Why the engine cannot hold this rule, as (field, reason), or None when it can."""
    for fact, values in (rule.get("scope") or {}).items():
        if len(values) > MAX_ALTERNATIVES:
            return f"scope.{fact}", (f"{len(values)} values; a scope takes at most "
                                     f"{MAX_ALTERNATIVES} (each is an alternative)")
    for name, firing, cond in plan([dict(rule)]):
        where = _where(firing)
        try:
            conjs = alternatives(_split_in(_lower(cond)))
        except _TooMany:
            return where, (f"the condition works out to more than {MAX_ALTERNATIVES} "
                           "alternatives (each 'any', each value of an 'in' list and each "
                           "'not' of several tests multiply them); split the rule into "
                           "simpler ones")
        longest = max((len(c) for c in conjs), default=0)
        if longest > MAX_LEAVES:
            return where, (f"one alternative of the condition tests {longest} things; the "
                           f"engine takes at most {MAX_LEAVES} in one")
        del name
    return None


def _where(firing: Firing) -> str:
    if firing.role == "row":
        return f"action.rows[{firing.index}].when"
    if firing.role == "tier":
        return f"action.tiers[{firing.index}]"
    return "when"


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


_DURABLE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}


class _Emitter:
    def __init__(self, numeric: set[str], scales: list[Scale]):
        self.numeric = numeric
        self.scale = {f: s for s in scales for f in s.fields}

    def value(self, fact: str, value: Any) -> Any:
        if _is_numeric(fact, self.numeric):
            return self.scale[fact].code(Decimal(str(value)))
        return str(value)

    def leaf(self, c: dict[str, Any]) -> list[dict[str, Any]]:
        """The durable tests of one leaf (a conjunction of them)."""
        fact, op = c["fact"], c["op"]
        if op == "defined":
            return [{"$ex": {fact: 1}}]
        if op == "undefined":
            return [{"$nex": {fact: 1}}]
        if op in ("in", "not_in"):
            values = [self.value(fact, v) for v in c["value"]]
            if op == "in":  # alternatives are worked out before: one value here
                raise AssertionError("'in' reaches the emitter only as alternatives")
            return [{"$ex": {fact: 1}}, *({"$neq": {fact: v}} for v in values)]
        if "ref" in c:
            other: Any = {"$m": c["ref"]}
            guard = [{"$ex": {fact: 1}}, {"$ex": {c["ref"]: 1}}]
        else:
            other = self.value(fact, c["value"])
            guard = [{"$ex": {fact: 1}}] if op == "!=" else []
        test = {fact: other} if op == "==" else {_DURABLE_OPS[op]: {fact: other}}
        return [*guard, test]

    def conjunction(self, stage: str, conj: list[dict[str, Any]]) -> dict[str, Any]:
        tests: list[dict[str, Any]] = [{"t": stage}]
        for c in conj:
            for test in self.leaf(c):
                if test not in tests:
                    tests.append(test)
        return {"all": [{"m": {"$and": tests}}]}


def _split_in(cond: dict[str, Any]) -> dict[str, Any]:
    """'in' as alternatives of '==' (one value each), so no durable rule holds an 'or'."""
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        return {key: [_split_in(c) for c in cond[key]]}
    if cond["op"] == "in":
        return {"any": [{"fact": cond["fact"], "op": "==", "value": v} for v in cond["value"]]}
    return cond


def compile_rules(rules: list[dict[str, Any]], numeric_facts: set[str]) -> CompiledRuleset:
    """Compile rule documents (validated, stored form) into durable_rules rulesets."""
    digest = hashlib.sha256(json.dumps(rules, sort_keys=True, default=str).encode()).hexdigest()
    name = f"laurel_{digest[:16]}"
    firings: dict[str, Firing] = {}
    conditions: dict[str, dict[str, Any]] = {}
    stages: dict[str, str] = {}
    population: set[str] = set()
    domains = numeric_domains(numeric_facts)
    for fname, firing, cond in plan(rules):
        if firing.role == "warn" and not satisfiable(cond, domains):
            continue  # e.g. the condition compares the very fact that is undefined
        stages[fname] = "rated" if any(f in CHAINED_FACTS for f in facts_read(cond)) else "emp"
        population |= {c["fact"] for c in leaves(cond) if c["op"] in POPULATION_OPS}
        firings[fname] = firing
        conditions[fname] = _lower(cond)
    scales, text = _scales(list(conditions.values()), numeric_facts)
    emitter = _Emitter(numeric_facts, scales)
    paths: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {"emp": [], "rated": []}
    for fname, lowered in conditions.items():
        try:
            conjs = alternatives(_split_in(lowered))
        except _TooMany:
            raise RunFailed(f"rule {firings[fname].rule['key']}: its condition works out to "
                            f"more than {MAX_ALTERNATIVES} alternatives") from None
        paths[stages[fname]].extend((fname, conj) for conj in conjs)
    parts = []
    for stage in ("emp", "rated"):
        for chunk in _share_out(paths[stage]):
            parts.append(_part(f"{name}_{len(parts)}", stage, chunk, emitter))
    return CompiledRuleset(
        name=name, content_hash=digest, rules=rules, parts=parts, firings=firings,
        conditions=conditions, stages=stages, scales=scales, text_fields=text,
        population=population,
    )


def _share_out(paths: list[tuple[str, list[dict[str, Any]]]]
               ) -> list[list[tuple[str, list[dict[str, Any]]]]]:
    """Share conjunctions out among parts of at most PART_NODES tests and PART_FIELDS
    fields; the conjunctions of one firing stay together where they fit."""
    chunks: list[list[tuple[str, list[dict[str, Any]]]]] = []
    nodes = 0
    fields: set[str] = set()
    for fname, conj in paths:
        cost = len(conj) + 1
        reads = {f for c in conj for f in (c["fact"], c.get("ref")) if f}
        if not chunks or nodes + cost > PART_NODES or len(fields | reads) > PART_FIELDS:
            chunks.append([])
            nodes, fields = 0, set()
        chunks[-1].append((fname, conj))
        nodes += cost
        fields |= reads
    return chunks


def _part(name: str, stage: str, chunk: list[tuple[str, list[dict[str, Any]]]],
          emitter: _Emitter) -> Part:
    definition: dict[str, Any] = {}
    paths: dict[str, str] = {}
    fields: set[str] = set()
    for i, (fname, conj) in enumerate(chunk):
        durable_name = f"{fname}_{i}"
        definition[durable_name] = emitter.conjunction(stage, conj)
        paths[durable_name] = fname
        fields |= {f for c in conj for f in (c["fact"], c.get("ref")) if f}
    # Every fact must match some rule: durable_rules kept a state for a fact that matched
    # nothing, and deleting that state crashed the process (measured here).
    definition["seen"] = {"all": [{"m": {"t": stage}}]}
    paths["seen"] = ""
    return Part(name, stage, definition, paths, frozenset(fields))


def to_fact(values: Mapping[str, Any], compiled: CompiledRuleset) -> dict[str, Any]:
    """The employee's facts as durable_rules sees them: only fields the rules read, each
    number as its code on its scale (see Scale)."""
    fact: dict[str, Any] = {"t": "emp"}
    texts, scales = compiled.encoding
    get = values.get
    for name in texts:
        value = get(name)
        if value is not None:
            fact[name] = str(value)
    for scale in scales:
        if type(scale) is not tuple:  # several facts compared together
            scale.encode(values, fact)
            continue
        # Scale.encode of a scale of one fact (most of them), inline
        name, keys, count = scale
        value = get(name)
        if value is not None:
            v = value if type(value) is Decimal else exact(value)
            i = bisect_left(keys, v)
            fact[name] = float((2 * i + 1) * STEP) if i < count and keys[i] == v \
                else float(2 * i * STEP + 1)
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
MAX_RULESETS = 16  # compiled rule sets kept registered in one process
_registered: list[str] = []


def _register(host: Any, compiled: CompiledRuleset) -> dict[str, Any]:
    """Register a compiled rule set's parts once per process; drop the oldest rule sets
    beyond MAX_RULESETS. Returns the durable rulesets by part name."""
    if compiled.name in _registered:
        _registered.remove(compiled.name)
        _registered.append(compiled.name)
        return {p.name: host._ruleset_directory[p.name] for p in compiled.parts}
    for part in compiled.parts:
        # set_rulesets deletes "run" from the dicts it is given: pass copies. The actions
        # do nothing: Session reads what fired from the C core (fire), and only the
        # wrapper's own dispatch (bench/bench_run.py's bare durable_rules) calls them.
        definition = copy.deepcopy(part.definition)
        for rule in definition.values():
            rule["run"] = _promise(_noop)
        host.set_rulesets({part.name: definition})
    _registered.append(compiled.name)
    while len(_registered) > MAX_RULESETS:
        _drop(host, _registered.pop(0))
    return {p.name: host._ruleset_directory[p.name] for p in compiled.parts}


def _drop(host: Any, compiled_name: str) -> None:
    """Unregister a compiled rule set's parts and free their C side (popping the name
    alone would leak it)."""
    import durable_rules_engine

    for name in [n for n in host._ruleset_directory if n.startswith(compiled_name + "_")]:
        ruleset = host._ruleset_directory.pop(name)
        if ruleset in host._ruleset_list:
            host._ruleset_list.remove(ruleset)
        durable_rules_engine.delete_ruleset(ruleset._handle)


def _noop(c: Any) -> None:
    return None


def fire(handle: int, text: str) -> list[str]:
    """Assert one fact (its JSON text) into a durable ruleset's C core and return the
    durable rules it fired, in order; a fact that matches nothing fires none.

    What ``Host.assert_fact`` does, without what only its Python actions need: for each
    firing the wrapper built a ``Closure`` (reading the clock), decoded the state and the
    message, called the action and encoded the state back, three quarters of the
    engine's time in a run. The rule's name is the first key of the message the core
    starts (``{"r1_0":{"m":...}}``); the state is left as the core has it, and the caller
    deletes it (``delete_state``). Raises MessageObservedException for a fact asserted
    twice, as the wrapper does."""
    core = _core()
    result = core.assert_fact(handle, text)
    if result[0] == 1:
        return []  # MessageNotHandledException in the wrapper
    if result[0] == 2:
        raise _durable().MessageObservedException(text)
    state = 0 if result[0] == 3 else result[1]
    started = core.start_action_for_state(handle, state)
    if not started:
        return []
    names = []
    message = started[1]
    while message:
        names.append(_action_name(message))
        message = core.complete_and_start_action(handle, state)
    return names


def _action_name(message: str) -> str:
    """The rule a started action's message names (its only key)."""
    if message.startswith('{"'):
        end = message.find('"', 2)
        if end > 2 and message[end + 1:end + 2] == ":":
            return message[2:end]
    return next(iter(json.loads(message)))


def _to_json(fact: dict[str, Any]) -> str:
    """A fact as JSON text for the C core, in UTF-8 as the wrapper sends it
    (json.dumps(fact, ensure_ascii=False)), written by orjson: compact, in a third of the
    time. Its values are texts and the codes of numbers (whole floats below 2^53)."""
    return orjson.dumps(fact).decode()


def _core() -> Any:
    import durable_rules_engine

    return durable_rules_engine


class Evaluation(NamedTuple):
    """What fired for one employee: firing names in order, the (payout rule, holding flag)
    pairs, and the rating each firing on the rated stage saw (None: unrated)."""

    fired: list[str]
    holds: list[tuple[str, str]]
    ratings: dict[str, str | None]


class Session:
    """Evaluate employees one at a time against a compiled rule set in this process."""

    def __init__(self, compiled: CompiledRuleset):
        self.compiled = compiled
        self.by_stage = {stage: [p for p in compiled.parts if p.stage == stage]
                         for stage in ("emp", "rated")}
        self._rates = compiled.rates
        # the parts that read every field a fact has (a rule set of one part: all of it)
        # are sent the fact as it is, not a copy of the fields they read; a rated fact
        # has its rating too
        every = compiled.fields
        self._whole = {p.name for p in compiled.parts
                       if p.fields >= (every if p.stage == "emp" else every | {"rating"})}
        self._durable = _durable()
        with ENGINE_LOCK:
            self.host = get_host()
            self._rulesets = _register(self.host, compiled)

    def evaluate(self, sid: str, fact: dict[str, Any]) -> Evaluation:
        """Assert one employee's fact through the stages, collect what fired, delete the
        states."""
        with ENGINE_LOCK:
            if self.compiled.name not in _registered:
                self._rulesets = _register(self.host, self.compiled)  # dropped meanwhile
            return self._evaluate(sid, fact)

    def _assert(self, parts: list[Part], sid: str, facts: list[dict[str, Any]]) -> list[str]:
        durable_engine = self._durable
        hits: list[str] = []
        dumps = _to_json
        for part in parts:
            ruleset = self._rulesets[part.name]
            handle, paths, fields = ruleset._handle, part.paths, part.fields
            whole = part.name in self._whole
            try:
                for fact in facts:
                    if whole:
                        payload = dict(fact, sid=sid)
                    else:
                        payload = {k: v for k, v in fact.items() if k in fields}
                        payload.update(t=fact["t"], sid=sid)
                    if "rating_rule" in fact:  # what tells two rated facts apart
                        payload["rating_rule"] = fact["rating_rule"]
                    for durable_name in fire(handle, dumps(payload)):
                        firing = paths[durable_name]
                        if firing:  # not the "seen" rule every fact matches
                            hits.append(firing)
            except durable_engine.MessageObservedException:
                raise RunFailed(f"employee {sid}: the same facts were asserted twice") \
                    from None
            except RunFailed:
                raise
            except Exception as exc:
                raise RunFailed(f"employee {sid}: the rule engine failed: {exc}") from exc
            finally:
                ruleset.delete_state(sid)
        return list(dict.fromkeys(hits))

    def _evaluate(self, sid: str, fact: dict[str, Any]) -> Evaluation:
        firings = self.compiled.firings
        fired = _first_rows(self._assert(self.by_stage["emp"], sid, [fact]), firings)
        ratings: dict[str, str | None] = {}
        if self._rates:
            rated = [dict(fact, t="rated", rating=_row_value(firings[f]),
                          rating_rule=firings[f].rule["key"])
                     for f in fired if firings[f].role == "row"
                     and firings[f].rule["kind"] == "rating"]
            rated = rated or [dict(fact, t="rated")]
            for chained in rated:
                for f in self._assert(self.by_stage["rated"], sid, [chained]):
                    if f not in ratings:
                        ratings[f] = chained.get("rating")
                        fired.append(f)
        fired = _drop_answered_warnings(fired, firings)
        payouts = list(dict.fromkeys(
            firings[f].rule["key"] for f in fired
            if firings[f].role != "warn" and firings[f].rule["kind"] in ("commission", "bonus")))
        flags = list(dict.fromkeys(
            firings[f].rule["key"] for f in fired
            if firings[f].role != "warn" and firings[f].rule.get("hold")))
        return Evaluation(fired, [(p, f) for p in payouts for f in flags], ratings)


def _row_value(firing: Firing) -> str:
    return firing.rule["action"]["rows"][firing.index - 1]["value"]


def _first_rows(fired: list[str], firings: dict[str, Firing]) -> list[str]:
    """Of each decision table, keep only the first row that fired (first match wins)."""
    best: dict[str, tuple[int, str]] = {}
    for f in fired:
        firing = firings[f]
        if firing.role == "row":
            key = firing.rule["key"]
            if key not in best or firing.index < best[key][0]:
                best[key] = (firing.index, f)
    keep = {f for _, f in best.values()}
    return [f for f in fired if firings[f].role != "row" or f in keep]


def _drop_answered_warnings(fired: list[str], firings: dict[str, Firing]) -> list[str]:
    """A table warns only when no row of it matched."""
    answered = {firings[f].rule["key"] for f in fired if firings[f].role == "row"}
    return [f for f in fired if not (firings[f].role == "warn" and
                                     firings[f].rule["action"]["type"] == "table"
                                     and firings[f].rule["key"] in answered)]


def resolve(compiled: CompiledRuleset, emp_fired: set[str],
            rated_fired: dict[str | None, set[str]]) -> set[str]:
    """What an evaluation keeps of the firings whose conditions held (for the plain-Python
    differential test): first rows of tables, table warnings only where no row fired."""
    fired = _first_rows(sorted(emp_fired), compiled.firings)
    for names in rated_fired.values():
        fired += [f for f in sorted(names) if f not in fired]
    return set(_drop_answered_warnings(fired, compiled.firings))


_sync_promise: type | None = None


def _promise(fn: Any) -> Any:
    """A durable_rules action of ``fn`` (which returns at once and raises nothing)."""
    global _sync_promise
    if _sync_promise is None:

        class SyncPromise(_durable().Promise):
            """durable_rules' Promise without the timeout closure its ``run`` makes at
            every firing (it serves asynchronous actions only): it refers to itself, so
            each firing left a cycle (the closure, the action's context and the state's
            contents, about 60 objects an employee) that only the cycle collector
            frees, and collecting them cost a run more than the rule engine's own work.
            Everything else is durable_rules' own: an exception raised by the action
            stays on the state, as there."""

            def run(self, c: Any, complete: Any) -> None:
                try:
                    self._func(c)
                except BaseException as exc:  # noqa: BLE001 - kept on the state, as there
                    c.s.exception = f"exception caught {exc}"
                if self._next:
                    self._next.run(c, complete)
                else:
                    complete(None)

        _sync_promise = SyncPromise
    return _sync_promise(fn)
