"""Whether a condition can hold for some input: a search over what each fact can be.

The rule validation refuses a decision-table row that no input reaches (one that every
row above catches first, or whose own conditions contradict each other), and the compiler
leaves out warnings that can never fire. Both need a yes that is exact, not a guess from
the shape of the rows.

A fact's possible values fall into finitely many cells that no condition tells apart:
undefined, each constant the conditions compare it with, and the stretches between them
(for a whole-number fact, only those that hold a whole number); for text, each constant
and "another value". Facts compared by ``ref`` share their constants, and where two of
them fall in the same stretch the search tries each order of them. ``highest`` and
``top_share`` read the employee's share of strictly higher values, a fraction in [0, 1)
that is 0 for the highest. Facts are otherwise independent: derived metrics are not tied
to the inputs they come from, so a row can be found reachable that the formulas exclude,
never the other way round. A search that grows past ``BUDGET`` steps answers yes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from engine.conditions import POPULATION_OPS, leaves, lower_leaf, population_fields, push_not

BUDGET = 200_000
SHARE = "__share"


@dataclass(frozen=True)
class Domain:
    """What values a fact can take."""

    numeric: bool = True
    integral: bool = False
    low: Decimal | None = None  # bounds included
    high: Decimal | None = None
    high_open: bool = False
    always_defined: bool = False
    texts: tuple[str, ...] | None = None  # the only values a text fact takes


TEXT = Domain(numeric=False)
NUMBER = Domain()
_SHARE_DOMAIN = Domain(low=Decimal(0), high=Decimal(1), high_open=True, always_defined=True)


@dataclass(frozen=True)
class Cell:
    kind: str  # "u" undefined, "p" a constant, "s" a stretch between two, "o" other text
    value: Any = None  # the constant, or a value inside the stretch
    between: tuple[Any, Any] = (None, None)  # a stretch's constants (None: unbounded)

    @property
    def open(self) -> bool:
        """True when two facts in this cell can still stand either way (stretch, other)."""
        return self.kind in ("s", "o")

    @property
    def place(self) -> tuple[str, Any]:
        """What two facts of one group share when they are in the same open cell."""
        return (self.kind, self.between)


class _OutOfBudget(Exception):
    pass


def _lower(cond: Mapping[str, Any]) -> dict[str, Any]:
    """Negations down to the leaves, population operators onto the share fact."""

    def walk(c: Mapping[str, Any]) -> dict[str, Any]:
        if "all" in c or "any" in c:
            key = "all" if "all" in c else "any"
            return {key: [walk(x) for x in c[key]]}
        if c["op"] in POPULATION_OPS:
            c = lower_leaf(c)
        fact = c["fact"]
        for metric in _population_owner(fact):
            share = metric + SHARE
            if c["op"] == "undefined":
                return {"fact": metric, "op": "undefined"}
            if c["op"] == "defined":
                return {"fact": metric, "op": "defined"}
            leaf = dict(c, fact=share)
            if fact == population_fields(metric)[0]:  # the strictly-higher count: 0 or not
                leaf["value"] = 0
            return {"all": [{"fact": metric, "op": "defined"}, leaf]}
        return dict(c)

    def lower_population(c: Mapping[str, Any]) -> dict[str, Any]:
        if "all" in c or "any" in c:
            key = "all" if "all" in c else "any"
            return {key: [lower_population(x) for x in c[key]]}
        if "not" in c:
            return {"not": lower_population(c["not"])}
        return lower_leaf(c) if c["op"] in POPULATION_OPS else dict(c)

    return walk(push_not(lower_population(cond)))


def _population_owner(fact: str) -> list[str]:
    for suffix in ("__higher_share", "__higher"):
        if fact.endswith(suffix):
            return [fact[: -len(suffix)]]
    return []


def _number(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _numeric_cells(keys: list[Decimal], d: Domain) -> list[Cell]:
    """The cells of a numeric fact: its constants and the stretches around them."""

    def inside(v: Decimal) -> bool:
        if d.low is not None and v < d.low:
            return False
        if d.high is not None and (v > d.high or (d.high_open and v == d.high)):
            return False
        return not d.integral or v == v.to_integral_value()

    # Every constant bounds a stretch; it is a cell of its own only where the fact can
    # take it (a count is never 4.5, yet leads > 4.5 and leads <= 4.5 still differ).
    cells: list[Cell] = []
    bounds: list[Decimal | None] = [None, *keys, None]
    for i in range(len(bounds) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        rep = _stretch_value(lo, hi, d)
        if rep is not None:
            cells.append(Cell("s", rep, (lo, hi)))
        if hi is not None and inside(hi):
            cells.append(Cell("p", hi))
    if not d.always_defined:
        cells.insert(0, Cell("u"))
    return cells


def _stretch_value(lo: Decimal | None, hi: Decimal | None, d: Domain) -> Any:
    """A value strictly between two constants (None: open) within the domain, or None."""
    low, low_in = (lo, False) if lo is not None else (d.low, True)
    if lo is not None and d.low is not None and d.low > lo:
        low, low_in = d.low, True
    high, high_in = (hi, False) if hi is not None else (d.high, not d.high_open)
    if hi is not None and d.high is not None and (d.high < hi or (d.high == hi and d.high_open)):
        high, high_in = d.high, not d.high_open
    if d.integral:
        start = None if low is None else (
            math.ceil(low) if low_in else math.floor(low) + 1)
        end = None if high is None else (
            math.floor(high) if high_in else math.ceil(high) - 1)
        if start is None and end is None:
            return Fraction(0)
        if start is None:
            return Fraction(end)
        if end is not None and end < start:
            return None
        return Fraction(start)
    if low is None and high is None:
        return Fraction(0)
    if low is None:
        return Fraction(high) - 1
    if high is None:
        return Fraction(low) + 1
    if low < high:
        return (Fraction(low) + Fraction(high)) / 2
    if low == high and low_in and high_in:
        return Fraction(low)
    return None


class _Problem:
    def __init__(self, cond: Mapping[str, Any], domains: Mapping[str, Domain]):
        self.tree = _lower(cond)
        self.leaves = list(leaves(self.tree))
        self.domains = dict(domains)
        parent: dict[str, str] = {}

        def find(f: str) -> str:
            while parent.setdefault(f, f) != f:
                f = parent[f]
            return f

        constants: dict[str, list[Any]] = {}
        for leaf in self.leaves:
            find(leaf["fact"])
            if "ref" in leaf:
                parent[find(leaf["ref"])] = find(leaf["fact"])
            elif "value" in leaf:
                values = leaf["value"] if isinstance(leaf["value"], list) else [leaf["value"]]
                constants.setdefault(leaf["fact"], []).extend(values)
        self.group = {f: find(f) for f in parent}
        pooled: dict[str, list[Any]] = {}
        for fact, values in constants.items():
            pooled.setdefault(self.group[fact], []).extend(values)
        self.cells: dict[str, list[Cell]] = {}
        for fact in sorted(parent, key=lambda f: (self.group[f], f)):
            d = self.domain(fact)
            values = pooled.get(self.group[fact], [])
            if d.numeric:
                keys = sorted({_number(v) for v in values})
                self.cells[fact] = _numeric_cells(keys, d)
            else:
                texts = sorted({str(v) for v in values})
                if d.texts is not None:
                    cells = [Cell("p", t) for t in d.texts]
                else:
                    cells = [Cell("p", t) for t in texts] + [Cell("o")]
                if not d.always_defined:
                    cells.insert(0, Cell("u"))
                self.cells[fact] = cells
        # the facts the most leaves read first: the search prunes sooner
        uses: dict[str, int] = {}
        for leaf in self.leaves:
            for f in (leaf["fact"], leaf.get("ref")):
                if f:
                    uses[f] = uses.get(f, 0) + 1
        self.order = sorted(self.cells, key=lambda f: (-uses.get(f, 0), f))
        self.steps = 0

    def domain(self, fact: str) -> Domain:
        if fact.endswith(SHARE):
            return _SHARE_DOMAIN
        return self.domains.get(fact, TEXT)

    # --- three-valued evaluation: True, False or None (not known yet) ---

    def value(self, c: Mapping[str, Any], cells: dict[str, Cell],
              ranks: dict[str, int]) -> bool | None:
        if "all" in c or "any" in c:
            # all: False decides, any: True decides; otherwise unknown if any part is
            decisive = "any" in c
            out: bool | None = not decisive
            for x in c["any" if decisive else "all"]:
                v = self.value(x, cells, ranks)
                if v is decisive:
                    return decisive
                if v is None:
                    out = None
            return out
        return self.leaf(c, cells, ranks)

    def leaf(self, c: Mapping[str, Any], cells: dict[str, Cell],
             ranks: dict[str, int]) -> bool | None:
        fact, op = c["fact"], c["op"]
        cell = cells.get(fact)
        if cell is None:
            return None
        if op == "defined":
            return cell.kind != "u"
        if op == "undefined":
            return cell.kind == "u"
        if cell.kind == "u":
            return False
        numeric = self.domain(fact).numeric
        if "ref" in c:
            other = cells.get(c["ref"])
            if other is None:
                return None
            if other.kind == "u":
                return False
            if cell.open and cell.place == other.place:
                if fact not in ranks or c["ref"] not in ranks:
                    return None
                a, b = ranks[fact], ranks[c["ref"]]
            elif numeric:
                a, b = cell.value, other.value
            else:  # text: equal only when both are the same constant
                same = cell.kind == "p" and other.kind == "p" and cell.value == other.value
                a, b = (0, 0) if same else (0, 1)
            return _compare(op, a, b)
        if op in ("in", "not_in"):
            found = cell.kind == "p" and str(cell.value) in [str(v) for v in c["value"]]
            return found if op == "in" else not found
        if numeric:
            return _compare(op, cell.value, _number(c["value"]))
        same = cell.kind == "p" and str(cell.value) == str(c["value"])
        return same if op == "==" else not same if op == "!=" else False

    # --- the search ---

    def search(self, i: int, cells: dict[str, Cell]) -> bool:
        self.steps += 1
        if self.steps > BUDGET:
            raise _OutOfBudget
        known = self.value(self.tree, cells, {})
        if known is not None:
            return known
        if i == len(self.order):
            return any(self.value(self.tree, cells, ranks) for ranks in self.orders(cells))
        fact = self.order[i]
        for cell in self.cells[fact]:
            cells[fact] = cell
            if self.search(i + 1, cells):
                return True
        del cells[fact]
        return False

    def orders(self, cells: dict[str, Cell]) -> Iterator[dict[str, int]]:
        """Every order of the facts that share a group and an open cell."""
        together: dict[tuple[str, tuple[str, Any]], list[str]] = {}
        for fact, cell in cells.items():
            if cell.open:
                together.setdefault((self.group[fact], cell.place), []).append(fact)
        groups = [(facts, self.domain(facts[0]).numeric)
                  for facts in together.values() if len(facts) > 1]
        choices = [list(_weak_orders(facts, numeric)) for facts, numeric in groups]
        for combo in itertools.product(*choices):
            self.steps += 1
            if self.steps > BUDGET:
                raise _OutOfBudget
            ranks: dict[str, int] = {}
            for part in combo:
                ranks.update(part)
            yield ranks


def _compare(op: str, a: Any, b: Any) -> bool:
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
            ">=": a >= b}[op]


def _weak_orders(facts: list[str], numeric: bool) -> Iterator[dict[str, int]]:
    """Each way the facts can stand: in order with ties (numbers), or equal or not (text)."""
    n = len(facts)
    for ranks in itertools.product(range(n), repeat=n):
        used = sorted(set(ranks))
        if used != list(range(len(used))):
            continue  # each tie group once: ranks are 0..k-1 without holes
        if not numeric and list(ranks) != _first_seen(ranks):
            continue  # for text only equality counts: one labelling per partition
        yield dict(zip(facts, ranks, strict=True))


def _first_seen(ranks: tuple[int, ...]) -> list[int]:
    labels: dict[int, int] = {}
    return [labels.setdefault(r, len(labels)) for r in ranks]


def satisfiable(cond: Mapping[str, Any] | None, domains: Mapping[str, Domain]) -> bool:
    """True when some input makes the condition hold (or the search ran out of budget)."""
    if not cond:
        return True
    problem = _Problem(cond, domains)
    try:
        return problem.search(0, {})
    except _OutOfBudget:
        return True


def numeric_domains(numeric: set[str]) -> dict[str, Domain]:
    """Plain number domains for the given facts (text for every other one)."""
    return {f: NUMBER for f in numeric}


# How many imported values a period's figure can add up (months of a quarter, of a year).
_SUMMED = {"month": 1, "quarter": 3, "year": 12}


def domains_for(metric_types: Mapping[str, str], levels: Iterable[str] | None = None,
                inputs: Mapping[str, tuple[str, Decimal | None, Decimal | None, str]] | None
                = None, period_kind: str = "month") -> dict[str, Domain]:
    """What each fact a rule of the period kind reads can be.

    ``inputs``: the imported metrics with their type, own bounds and roll-up; a value is in
    its range, and a count is a whole number. A quarter's or a year's figure rolled up by
    sum can reach 3 or 12 times the bounds. A derived metric can be any number.
    """
    from engine.metrics import metric_range

    out: dict[str, Domain] = {}
    for key in metric_types:
        if inputs is not None and key in inputs:
            itype, low, high, rollup = inputs[key]
            lo, hi = metric_range(itype, low, high)
            if rollup == "sum":
                factor = _SUMMED.get(period_kind, 12)
                lo, hi = lo * factor if lo < 0 else lo, hi * factor if hi > 0 else hi
            out[key] = Domain(integral=itype == "count", low=lo, high=hi)
        else:
            out[key] = NUMBER
    level_texts = tuple(sorted(levels)) if levels else None
    from engine.models import TEAM_STAGES

    out.update({
        "team": Domain(numeric=False, always_defined=True),
        "team_stage": Domain(numeric=False, texts=TEAM_STAGES),
        "region": Domain(numeric=False, always_defined=True),
        "level": Domain(numeric=False, always_defined=True, texts=level_texts),
        "level_authority": Domain(always_defined=True),
        "team_revenue": Domain(always_defined=True),
        "team_quota": Domain(always_defined=True),
        "team_attainment": NUMBER,
        "per_capita_output": NUMBER,
        # a member who belonged part of the period counts for that share of it
        "team_members": Domain(low=Decimal(0), always_defined=True),
        "active_days": Domain(integral=True, low=Decimal(1), high=Decimal(366),
                              always_defined=True),
        "period_days": Domain(integral=True, low=Decimal(28), high=Decimal(366),
                              always_defined=True),
        "active_share": Domain(low=Decimal(0), high=Decimal(1), always_defined=True),
        "previous_rating": TEXT,
        "pips_overlapping": Domain(integral=True, low=Decimal(0), always_defined=True),
        "rating": TEXT,
    })
    return out
