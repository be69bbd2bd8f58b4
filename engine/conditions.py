"""Conditions over facts: the fact catalog, the operators, and their meaning.

A condition is a tree: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": cond}`` or a leaf
``{"fact": "attainment", "op": ">=", "value": "1.10"}`` (``"ref": "level_authority"``
compares with another fact instead of a constant). A condition on an undefined value is
false. This module gives conditions their meaning in plain Python (the reference the
durable_rules compilation is tested against) and renders them in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from engine.exact import exact

NUMBER_OPS = ("==", "!=", "<", "<=", ">", ">=")
TEXT_OPS = ("==", "!=", "in", "not_in")
PRESENCE_OPS = ("defined", "undefined")
POPULATION_OPS = ("top_share", "highest")
ALL_OPS = NUMBER_OPS + ("in", "not_in") + PRESENCE_OPS + POPULATION_OPS

# Facts that are not metrics: (name, type, English description).
CONTEXT_FACTS: list[tuple[str, str, str]] = [
    ("team", "text", "the employee's team"),
    ("team_stage", "text", "the team's stage (startup, growth, mature)"),
    ("region", "text", "the team's region"),
    ("level", "text", "the employee's level"),
    ("level_authority", "ratio", "the discount authority of the employee's level"),
    ("team_revenue", "money", "sum of the team members' revenue_total"),
    ("team_quota", "money", "sum of the team members' quota"),
    ("team_attainment", "ratio", "team_revenue / team_quota"),
    ("per_capita_output", "money", "team_revenue / number of team members"),
    ("team_members", "count", "team members with a result for the period (a member who "
     "belonged part of the period counts for that share of it)"),
    ("previous_rating", "text", "the rating of the previous period of the same kind"),
    ("pips_overlapping", "count", "PIPs of the employee that overlap this period"),
    ("rating", "text", "the rating given in this run (set by a rating rule)"),
    ("active_days", "count", "the days of the period the employee was employed"),
    ("period_days", "count", "the days of the period"),
    ("active_share", "ratio", "active_days / period_days"),
]
# Facts set by rules during the run; a rule that reads one runs after the rule that sets it.
CHAINED_FACTS = {"rating"}


@dataclass(frozen=True)
class FactInfo:
    name: str
    type: str  # money, count, score, ratio, text

    @property
    def numeric(self) -> bool:
        return self.type != "text"


def fact_catalog(metric_types: Mapping[str, str]) -> dict[str, FactInfo]:
    """Return every fact a condition may read: the metrics and the context facts."""
    facts = {k: FactInfo(k, t) for k, t in metric_types.items()}
    for name, ftype, _ in CONTEXT_FACTS:
        facts[name] = FactInfo(name, ftype)
    return facts


def population_fields(fact: str) -> tuple[str, str, str]:
    """Names of the population facts of a metric: strictly-higher count, N, higher share."""
    return f"{fact}__higher", f"{fact}__n", f"{fact}__higher_share"


# --- walking ------------------------------------------------------------------------------


def leaves(cond: Mapping[str, Any] | None) -> Iterable[Mapping[str, Any]]:
    if not cond:
        return
    if "all" in cond or "any" in cond:
        for sub in cond.get("all") or cond.get("any") or []:
            yield from leaves(sub)
    elif "not" in cond:
        yield from leaves(cond["not"])
    else:
        yield cond


def facts_read(cond: Mapping[str, Any] | None) -> list[str]:
    """Return the facts a condition reads, in order of first use."""
    out: list[str] = []
    for leaf in leaves(cond):
        for name in (leaf["fact"], leaf.get("ref")):
            if name and name not in out:
                out.append(name)
    return out


# --- plain-Python meaning -----------------------------------------------------------------


def _num(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def leaf_holds(leaf: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    op, name = leaf["op"], leaf["fact"]
    value = facts.get(name)
    if op == "defined":
        return value is not None
    if op == "undefined":
        return value is None
    if value is None:
        return False
    if op == "highest":
        return facts.get(population_fields(name)[0]) == 0
    if op == "top_share":
        share = facts.get(population_fields(name)[2])
        return share is not None and exact(share) < exact(leaf["value"])
    if op in ("in", "not_in"):
        found = str(value) in [str(v) for v in leaf["value"]]
        return found if op == "in" else not found
    if "ref" in leaf:
        other = facts.get(leaf["ref"])
        if other is None:
            return False
    else:
        other = leaf["value"]
    if isinstance(value, str) or isinstance(other, str) and not _is_number(other):
        a, b = str(value), str(other)
        return a == b if op == "==" else a != b if op == "!=" else False
    a, b = exact(value), exact(other)
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
            ">=": a >= b}[op]


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except Exception:
        return False
    return True


def holds(cond: Mapping[str, Any] | None, facts: Mapping[str, Any]) -> bool:
    """Evaluate a condition tree over facts (undefined values are absent or None)."""
    if not cond:
        return True
    if "all" in cond:
        return all(holds(c, facts) for c in cond["all"])
    if "any" in cond:
        return any(holds(c, facts) for c in cond["any"])
    if "not" in cond:
        return not holds(cond["not"], facts)
    return leaf_holds(cond, facts)


# --- negation that keeps "undefined is false" ----------------------------------------------

_FLIP = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<",
         "in": "not_in", "not_in": "in", "defined": "undefined", "undefined": "defined"}


def negate(cond: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a tree without "not" that holds exactly when cond does not."""
    if not cond:
        return {"any": []}
    if "all" in cond:
        return {"any": [negate(c) for c in cond["all"]]}
    if "any" in cond:
        return {"all": [negate(c) for c in cond["any"]]}
    if "not" in cond:
        return push_not(cond["not"])
    leaf = dict(cond)
    op = leaf["op"]
    if op in PRESENCE_OPS:
        leaf["op"] = _FLIP[op]
        return leaf
    undefined = [{"fact": leaf["fact"], "op": "undefined"}]
    if "ref" in leaf:
        undefined.append({"fact": leaf["ref"], "op": "undefined"})
    if op in POPULATION_OPS:
        return negate(lower_leaf(leaf))
    leaf["op"] = _FLIP[op]
    return {"any": [leaf, *undefined]}


def lower_leaf(leaf: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite a population leaf as a plain comparison on its population fact."""
    higher, _, share = population_fields(leaf["fact"])
    if leaf["op"] == "highest":
        return {"fact": higher, "op": "==", "value": 0}
    if leaf["op"] == "top_share":
        return {"fact": share, "op": "<", "value": leaf["value"]}
    return dict(leaf)


def push_not(cond: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the tree with every "not" pushed down to the leaves (see negate)."""
    if not cond:
        return {"all": []}
    if "all" in cond:
        return {"all": [push_not(c) for c in cond["all"]]}
    if "any" in cond:
        return {"any": [push_not(c) for c in cond["any"]]}
    if "not" in cond:
        return negate(cond["not"])
    return dict(cond)


# --- words --------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, Decimal):  # most values
        return format(value, "f")
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def describe(cond: Mapping[str, Any] | None) -> str:
    """Render a condition tree in words, e.g. ``attainment >= 1.10 and evaluation_score >= 80``."""
    if not cond:
        return "always"
    if "all" in cond:
        parts = [describe(c) for c in cond["all"]]
        return " and ".join(f"({p})" if " or " in p else p for p in parts) or "always"
    if "any" in cond:
        return " or ".join(describe(c) for c in cond["any"]) or "never"
    if "not" in cond:
        return f"not ({describe(cond['not'])})"
    op, name = cond["op"], cond["fact"]
    if op in PRESENCE_OPS:
        return f"{name} {op}"
    if op == "highest":
        return f"{name} is the highest (no one has a strictly higher {name})"
    if op == "top_share":
        share = _num(cond["value"]) * 100
        return (f"fewer than {format(share.normalize(), 'f')}% of the employees with a defined "
                f"{name} have a strictly higher one")
    other = cond["ref"] if "ref" in cond else _fmt(cond["value"])
    return f"{name} {op.replace('_', ' ')} {other}"


def held_checks(cond: Mapping[str, Any] | None, facts: Mapping[str, Any]
                ) -> tuple[list[dict[str, Any]], list[str]]:
    """The parts of a condition that hold: as data (fact, op, compared value, the values
    read) and as the rule states them (``attainment >= 1.20``, CONTRACT.md's example).

    A ``not`` that holds is one part, its inner condition marked ``negated``; of an
    ``any``, the alternatives that hold.
    """
    out: list[dict[str, Any]] = []
    words: list[str] = []
    for part, negated in _held_parts(cond, facts):
        words.append(describe({"not": part}) if negated else describe(part))
        if "fact" not in part:  # not (a group): its words say it
            out.append({"fact": facts_read(part)[0], "op": "not", "text": describe(part),
                        "negated": True})
            continue
        item = _check_item(part, facts)
        if negated:
            item["negated"] = True
        out.append(item)
    return out, words


def conjunction(cond: Mapping[str, Any] | None) -> list[Mapping[str, Any]] | None:
    """The leaves of a condition made of ``all`` groups and leaves only (every leaf holds
    when it holds), in order; None for one with an ``any`` or a ``not``."""
    if not cond:
        return []
    if "all" in cond:
        out: list[Mapping[str, Any]] = []
        for c in cond["all"]:
            sub = conjunction(c)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if "any" in cond or "not" in cond:
        return None
    return [cond]


@dataclass(frozen=True)
class Check:
    """What held_checks says of one leaf, the part of it that reads no fact worked out
    once: ``item(facts)`` is the check with the employee's values."""

    head: tuple[tuple[str, Any], ...]  # fact, op and the value compared with, as shown
    fact: str
    ref: str | None
    population: tuple[str, str] | None  # the strictly-higher and N facts of a ranked one
    # the head as the dict each item starts from (a copy of a dict is made faster than a
    # dict of pairs)
    start: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, leaf: Mapping[str, Any]) -> Check:
        head: list[tuple[str, Any]] = [("fact", leaf["fact"]), ("op", leaf["op"])]
        if "value" in leaf:
            head.append(("value", [str(v) for v in leaf["value"]]
                         if isinstance(leaf["value"], list) else _fmt(leaf["value"])))
        population = None
        if leaf["op"] in POPULATION_OPS:
            higher, n, _ = population_fields(leaf["fact"])
            population = (higher, n)
        return cls(tuple(head), leaf["fact"], leaf.get("ref"), population, dict(head))

    def item(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        item = self.start.copy()
        if self.ref is not None:
            item["ref"] = self.ref
            ref_actual = facts.get(self.ref)
            item["ref_actual"] = None if ref_actual is None else _fmt(ref_actual)
        actual = facts.get(self.fact)
        item["actual"] = None if actual is None else _fmt(actual)
        if self.population is not None:
            item["higher"] = _fmt(facts.get(self.population[0]))
            item["n"] = _fmt(facts.get(self.population[1]))
        return item

    def holes(self) -> list[tuple[bool, str]]:
        """The facts item(facts) reads, in its order (ref_actual, actual, higher, n), each
        with whether it is a population fact (shown as _fmt shows None: never null): the
        holes of an explanation's template (engine.runs.Template), filled in with
        hole_text of each."""
        out = [(False, self.fact)]
        if self.ref is not None:
            out.insert(0, (False, self.ref))
        if self.population is not None:
            out += [(True, self.population[0]), (True, self.population[1])]
        return out


def hole_text(population: bool, value: Any) -> str:
    """The JSON text of what item() makes of a value (Check.holes): null where it is
    undefined (a population fact's None is the text "None", as item() shows it), else the
    text _fmt gives."""
    if population:
        return orjson.dumps(_fmt(value)).decode()
    return _fmt_json(value)


def _fmt_json(value: Any) -> str:
    """The JSON of what item() makes of a value: null, or the text _fmt gives."""
    if value is None:
        return "null"
    if type(value) is Decimal:  # digits, a point and a sign: nothing JSON escapes
        return f'"{value:f}"'
    return orjson.dumps(_fmt(value)).decode()


def _held_parts(cond: Mapping[str, Any] | None, facts: Mapping[str, Any]
                ) -> list[tuple[Mapping[str, Any], bool]]:
    if not cond:
        return []
    if "all" in cond:
        return [p for c in cond["all"] for p in _held_parts(c, facts)]
    if "any" in cond:
        return [p for c in cond["any"] if holds(c, facts) for p in _held_parts(c, facts)]
    if "not" in cond:
        return [] if holds(cond["not"], facts) else [(cond["not"], True)]
    return [(cond, False)] if leaf_holds(cond, facts) else []


def _check_item(leaf: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    return Check.of(leaf).item(facts)
