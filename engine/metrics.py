"""The metric catalog, derived-metric formulas (sandboxed) and their evaluation.

A missing value is *undefined* (``None``), never zero. Formulas are evaluated by simpleeval
with operators that propagate undefined: ``a + b`` is undefined when either is, ``a / b``
is undefined when ``b`` is undefined or zero. Two helper functions cover the other rules
of POLICIES.md: ``defined_sum(a, b, ...)`` (undefined only when all are undefined, an
undefined term counts as 0) and ``positive(x)`` (undefined unless ``x > 0``).

A derived value is exact: computed in decimals where they are exact, else as a fraction
and kept as an ``engine.exact.Quotient`` (2/3 compares as 2/3, not as 0.666...67).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import Any

from simpleeval import SimpleEval
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import FormulaError, LaurelError
from engine.exact import exact, from_fraction, is_exact_decimal, ratio_quotient
from engine.messages import msg
from engine.models import METRIC_TYPES, ROLLUPS, Metric

Value = Decimal | Fraction | None

# (key, English label, Chinese label, type, roll-up, formula)
CATALOG: list[tuple[str, str, str, str, str, str | None]] = [
    ("quota", "Quota", "销售指标", "money", "sum", None),
    ("revenue_new", "Revenue from new customers", "新客户收入", "money", "sum", None),
    ("revenue_existing", "Revenue from existing customers", "老客户复购收入", "money", "sum",
     None),
    ("signed_amount", "Signed amount", "签约金额", "money", "sum", None),
    ("collected_amount", "Collected amount", "回款金额", "money", "sum", None),
    ("new_customers", "New effective customers", "新增有效客户数", "count", "sum", None),
    ("target_customers", "Target customer base", "目标客户基数", "count", "sum", None),
    ("churned_revenue", "Revenue of lost customers", "流失客户收入", "money", "sum", None),
    ("customer_revenue_base", "Revenue of all customers", "客户总收入", "money", "sum", None),
    ("closed_customers", "Customers with a closed deal", "成交客户数", "count", "sum", None),
    ("leads", "Leads", "线索数", "count", "sum", None),
    ("opportunities", "Opportunities", "商机数", "count", "sum", None),
    ("won_leads", "Won leads", "成交线索数", "count", "sum", None),
    ("visits", "Customer visits", "客户拜访次数", "count", "sum", None),
    ("satisfaction", "Customer satisfaction", "客户满意度", "score", "mean", None),
    ("nps", "Net promoter score", "净推荐值", "score", "mean", None),
    ("self_score", "Self-assessment", "自评分", "score", "mean", None),
    ("manager_score", "Manager assessment", "上级评分", "score", "mean", None),
    ("customer_score", "Customer assessment", "客户评分", "score", "mean", None),
    ("teamwork_score", "Teamwork score", "团队协作评分", "score", "mean", None),
    ("renewal_intent", "Renewal intent", "续约意向评分", "score", "mean", None),
    ("max_discount_pct", "Largest discount granted", "最大折扣率", "ratio", "max", None),
    ("false_ad_complaints", "False advertising complaints", "虚假宣传投诉数", "count", "sum",
     None),
    ("revenue_total", "Total revenue", "总收入", "money", "sum",
     "defined_sum(revenue_new, revenue_existing)"),
    ("attainment", "Attainment", "指标达成率", "ratio", "mean", "revenue_total / positive(quota)"),
    ("collection_ratio", "Collection ratio", "回款率", "ratio", "mean",
     "collected_amount / signed_amount"),
    ("customer_growth_rate", "Customer growth rate", "客户增长率", "ratio", "mean",
     "new_customers / target_customers"),
    ("churn_rate", "Churn rate", "客户流失率", "ratio", "mean",
     "churned_revenue / customer_revenue_base"),
    ("avg_deal_size", "Average deal size", "平均客单价", "money", "mean",
     "revenue_total / closed_customers"),
    ("lead_conversion", "Lead conversion", "线索转化率", "ratio", "mean", "won_leads / leads"),
    ("lead_to_opportunity", "Lead to opportunity", "线索转商机率", "ratio", "mean",
     "opportunities / leads"),
    ("repurchase_rate", "Repurchase rate", "复购率", "ratio", "mean",
     "revenue_existing / revenue_total"),
    ("evaluation_score", "Evaluation score", "综合评价分", "score", "mean",
     "0.2 * self_score + 0.5 * manager_score + 0.3 * customer_score"),
    ("annual_score", "Annual score", "年度评分", "score", "mean",
     "0.8 * evaluation_score + 0.2 * renewal_intent"),
]

# The ranges POLICIES.md gives the catalog's scores and its discount ratio; other input
# metrics take their type's range (HR may set a metric's own in the back office).
BOUNDS = {key: ("0", "100") for key in (
    "satisfaction", "self_score", "manager_score", "customer_score", "teamwork_score",
    "renewal_intent")}
BOUNDS["nps"] = ("-100", "100")
BOUNDS["max_discount_pct"] = ("0", "1")

# The accepted range of each metric type, bounds included: imported values and the numbers
# of a rule (thresholds, amounts) alike (README, Files). Imported values have at most
# DECIMALS decimals; the numbers of a rule at most RULE_DECIMALS.
DECIMALS = 6
RULE_DECIMALS = 12
MAX_FORMULA = 500
_MONEY_MAX = Decimal("999999999999999999.999999")
TYPE_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "money": (-_MONEY_MAX, _MONEY_MAX),
    "count": (Decimal(0), Decimal("999999999999999")),
    "score": (Decimal(-100), Decimal(100)),
    "ratio": (Decimal(-1000000), Decimal(1000000)),
}
TYPE_RANGE_WORDS = {
    "money": msg("a money value is less than 10^18 in absolute value (at most 18 digits "
                 "before the decimal mark)"),
    "count": msg("a count is a whole number from 0 to 999,999,999,999,999"),
    "score": msg("a score is from -100 to 100"),
    "ratio": msg("a ratio is from -1,000,000 to 1,000,000 (0.05 is 5%)"),
}


def decimals(d: Decimal) -> int:
    """How many decimals a number needs (trailing zeros do not count): 1.50 needs 1."""
    _, digits, exponent = d.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0 or not any(digits):
        return 0
    zeros = 0
    for digit in reversed(digits):
        if digit != 0 or zeros >= -exponent:
            break
        zeros += 1
    return -exponent - zeros


def metric_range(mtype: str, low: Decimal | None = None, high: Decimal | None = None
                 ) -> tuple[Decimal, Decimal]:
    """The accepted range of a metric: its own bounds within its type's range."""
    tlow, thigh = TYPE_RANGES.get(mtype, TYPE_RANGES["ratio"])
    return (tlow if low is None else max(tlow, low), thigh if high is None else min(thigh, high))


def range_problem(value: Decimal, mtype: str, low: Decimal | None = None,
                  high: Decimal | None = None, percent: bool = False) -> str | None:
    """Why a value is outside a metric's accepted range, or None when it is inside.

    The range in words people read ("is outside 0 to 100", not "0..100"); a ratio's as a
    fraction with its meaning ("0 to 1 (a ratio: 0.07 is 7%)"), or in percent where the
    value was typed as a percentage (``percent``: the estimate's fields)."""
    lo, hi = metric_range(mtype, low, high)
    if lo <= value <= hi:
        return None
    if low is None and high is None:
        return msg("is outside the accepted range: %(words)s",
                   words=TYPE_RANGE_WORDS[mtype])
    if mtype == "ratio" and percent:
        return msg("is outside %(low)s%% to %(high)s%%", low=to_plain(lo * 100),
                   high=to_plain(hi * 100))
    if mtype == "ratio":
        return msg("is outside %(low)s to %(high)s (a ratio: 0.07 is 7%%)",
                   low=to_plain(lo), high=to_plain(hi))
    return msg("is outside %(low)s to %(high)s", low=to_plain(lo), high=to_plain(hi))


LEVELS = [("S1", "Sales 1", "0.05"), ("S2", "Sales 2", "0.08"), ("S3", "Sales 3", "0.10"),
          ("M1", "Manager 1", "0.15")]


def _undef2(fn: Callable[[Decimal, Decimal], Decimal]) -> Callable[[Value, Value], Value]:
    def op(a: Value, b: Value) -> Value:
        if a is None or b is None:
            return None
        return fn(a, b)

    return op


def _div(a: Value, b: Value) -> Value:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _neg(a: Value) -> Value:
    return None if a is None else -a


def defined_sum(*terms: Value) -> Value:
    """Sum the defined terms; undefined only when every term is undefined."""
    defined = [t for t in terms if t is not None]
    return sum(defined[1:], defined[0]) if defined else None


def positive(x: Value) -> Value:
    """Return x when it is defined and > 0, else undefined."""
    return x if x is not None and x > 0 else None


FUNCTIONS = {"defined_sum": defined_sum, "positive": positive}
OPERATORS = {
    ast.Add: _undef2(operator.add),
    ast.Sub: _undef2(operator.sub),
    ast.Mult: _undef2(operator.mul),
    ast.Div: _div,
    ast.USub: _neg,
    ast.UAdd: lambda a: a,
}


@dataclass(frozen=True)
class Formula:
    """A parsed derived-metric formula and the metric keys it reads."""

    metric: str
    text: str
    tree: ast.AST
    names: frozenset[str]

    @property
    def fn(self) -> Callable[[Mapping[str, Value]], Value]:
        """The formula as a Python closure over the checked tree (fast, still no eval)."""
        return _closure(self.tree.body)

    @property
    def exact_fn(self) -> Callable[[Mapping[str, Value]], Value]:
        """The same closure over exact fractions (for a result no decimal holds)."""
        return _closure(self.tree.body, exact=True)


_BINARY = {ast.Add: OPERATORS[ast.Add], ast.Sub: OPERATORS[ast.Sub],
           ast.Mult: OPERATORS[ast.Mult], ast.Div: _div}


def _as_fraction(value: Value) -> Fraction | None:
    if value is None:
        return None
    v = exact(value)
    return v if isinstance(v, Fraction) else Fraction(v)


def _closure(node: ast.AST, exact: bool = False) -> Callable[[Mapping[str, Value]], Value]:
    """Turn a checked formula tree into nested closures; only the allowed nodes exist.

    ``exact``: every value is read as a Fraction, so that no operation rounds.
    """
    if isinstance(node, ast.Constant):
        const = Fraction(node.value) if exact else node.value
        return lambda values: const
    if isinstance(node, ast.Name):
        name = node.id
        if exact:
            return lambda values: _as_fraction(values.get(name))
        return lambda values: values.get(name)
    if isinstance(node, ast.UnaryOp):
        inner = _closure(node.operand, exact)
        if isinstance(node.op, ast.USub):
            return lambda values: _neg(inner(values))
        return inner
    if isinstance(node, ast.BinOp):
        left, right = _closure(node.left, exact), _closure(node.right, exact)
        op = _BINARY[type(node.op)]
        return lambda values: op(left(values), right(values))
    if isinstance(node, ast.Call):
        func = FUNCTIONS[node.func.id]
        args = [_closure(a, exact) for a in node.args]
        return lambda values: func(*(a(values) for a in args))
    raise FormulaError("?", msg("%(name)s is not allowed in a formula", name=type(node).__name__))


def _check_tree(metric: str, tree: ast.AST) -> frozenset[str]:
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Call,
               ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise FormulaError(metric, msg("%(name)s is not allowed in a formula",
                                           name=type(node).__name__))
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise FormulaError(metric, msg("only numbers may appear as constants, not %(value)s",
                                           value=repr(node.value)))
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise FormulaError(metric, msg("the only functions are defined_sum and positive"))
            if node.keywords:
                raise FormulaError(metric, msg("functions take no keyword arguments"))
        elif isinstance(node, ast.Name):
            names.add(node.id)
    names -= set(FUNCTIONS)
    return frozenset(names)


@lru_cache(maxsize=512)
def parse_formula(metric: str, text: str) -> Formula:
    """Parse a formula once; raise FormulaError if it is not a plain arithmetic expression.

    A formula is at most MAX_FORMULA characters; each number in it is finite, has at most
    RULE_DECIMALS decimals and lies within the money range.
    """
    source = text.strip()
    if len(source) > MAX_FORMULA:
        raise FormulaError(metric, msg("is longer than %(max_formula)s characters",
                                       max_formula=MAX_FORMULA))
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise FormulaError(metric, msg("does not parse: %(value)s", value=exc.msg)) from None
    except (ValueError, RecursionError, MemoryError):
        raise FormulaError(metric,
                           msg("does not parse: too deeply nested or a number too long")) from None
    names = _check_tree(metric, tree)
    # Number literals become exact decimals as typed: 0.2 is 2/10, not a binary float.
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
                and not isinstance(node.value, bool):
            typed = ast.get_source_segment(source, node) or repr(node.value)
            try:
                value = Decimal(typed.replace("_", ""))
            except ArithmeticError:
                value = Decimal(repr(node.value))
            low, high = TYPE_RANGES["money"]
            if not value.is_finite() or not low <= value <= high \
                    or decimals(value) > RULE_DECIMALS:
                raise FormulaError(metric, msg("the number %(typed)s is out of range: a number "
                                               "in a formula is less than 10^18 in absolute "
                                               "value, with at most %(rule_decimals)s decimals",
                                               typed=typed[:40], rule_decimals=RULE_DECIMALS))
            node.value = value
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) \
                and isinstance(node.right, ast.Constant) and node.right.value == 0:
            raise FormulaError(metric, msg("divides by zero: the metric would never be defined"))
    return Formula(metric, text, tree, names)


class _Evaluator(SimpleEval):
    def __init__(self) -> None:
        super().__init__(operators=OPERATORS, functions=FUNCTIONS)
        self.nodes[ast.Constant] = lambda node: node.value


_EVAL = _Evaluator()


def evaluate(formula: Formula, values: Mapping[str, Value]) -> Value:
    """Evaluate a parsed formula over exact decimals; undefined propagates."""
    _EVAL.names = {n: values.get(n) for n in formula.names}
    with localcontext() as ctx:
        ctx.prec = 34
        result = _EVAL._eval(formula.tree.body)
        return None if result is None else +Decimal(result)


def order_formulas(formulas: Iterable[Formula]) -> list[Formula]:
    """Order derived metrics so that each comes after the derived metrics it reads."""
    by_key = {f.metric: f for f in formulas}
    done: list[Formula] = []
    state: dict[str, int] = {}

    def visit(key: str, chain: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise FormulaError(key, "formulas refer to each other in a cycle: "
                               + " -> ".join(chain + [key]))
        state[key] = 1
        for name in sorted(by_key[key].names):
            if name in by_key:
                visit(name, chain + [key])
        state[key] = 2
        done.append(by_key[key])

    for key in sorted(by_key):
        visit(key, [])
    return done


@dataclass
class Catalog:
    """The metric catalog as the engine reads it."""

    metrics: dict[str, Metric]
    derived: list[Formula]

    def __post_init__(self) -> None:
        # (metric, closure, exact closure, names read, (numerator, denominator) of a ratio)
        self._steps = [(f.metric, f.fn, f.exact_fn, tuple(f.names), ratio_parts(f.text))
                       for f in self.derived]
        self._needed: dict[frozenset[str], list[tuple[Any, ...]]] = {}

    @property
    def inputs(self) -> dict[str, Metric]:
        return {k: m for k, m in self.metrics.items() if not m.formula}

    def steps_for(self, wanted: Iterable[str]) -> list[tuple[Any, ...]]:
        """The steps of derive that the ``wanted`` metrics need, in order (cached)."""
        key = frozenset(wanted)
        cache = self._needed
        if key not in cache:
            needed = set(key)
            for metric, _, _, names, _ in reversed(self._steps):
                if metric in needed:
                    needed.update(names)
            cache[key] = [s for s in self._steps if s[0] in needed]
        return cache[key]

    def inputs_for(self, wanted: Iterable[str]) -> set[str]:
        """The input metrics the ``wanted`` metrics are worked out from (those of them
        that are inputs included)."""
        names = set(wanted)
        for _, _, _, reads, _ in self.steps_for(names):
            names.update(reads)
        return {n for n in names if n in self.metrics and not self.metrics[n].formula}

    def derive(self, values: dict[str, Value], only: Iterable[str] | None = None
               ) -> dict[str, Value]:
        """Return input values plus every derived metric (those ``only`` needs, when
        given), in dependency order, exact.

        Decimals where every input is one and no operation rounds; else the formula is
        worked again in fractions and the result kept as a Quotient.
        """
        out = dict(values)
        get = out.get
        steps = self._steps if only is None else self.steps_for(only)
        with localcontext() as ctx:
            ctx.prec = 34
            for key, fn, exact_fn, names, ratio in steps:
                for n in names:
                    v = get(n)
                    if v is not None and type(v) is not Decimal and not is_exact_decimal(v):
                        break  # a Quotient (or not a decimal): worked in fractions
                else:
                    ctx.clear_flags()
                    value = fn(out)
                    if value is None or not ctx.flags[Inexact]:
                        out[key] = value
                        continue
                    if ratio is not None:  # a / b of two decimals: rounded once already
                        out[key] = ratio_quotient(value, out[ratio[0]], out[ratio[1]])
                        continue
                value = exact_fn(out)
                out[key] = None if value is None else from_fraction(value)
        return out


def load_catalog(session: Session) -> Catalog:
    metrics = {m.key: m for m in session.scalars(select(Metric).order_by(Metric.id))}
    formulas = [parse_formula(m.key, m.formula) for m in metrics.values() if m.formula]
    for f in formulas:
        unknown = sorted(n for n in f.names if n not in metrics)
        if unknown:
            raise FormulaError(f.metric, msg("unknown metric %(value)s", value=', '.join(unknown)))
    return Catalog(metrics, order_formulas(formulas))


def validate_formula(session: Session, key: str, text: str) -> Formula:
    """Check a formula against the catalog (as used when HR saves a metric)."""
    formula = parse_formula(key, text)
    known = set(session.scalars(select(Metric.key))) | {key}
    unknown = sorted(n for n in formula.names if n not in known)
    if unknown:
        raise FormulaError(key, msg("unknown metric %(value)s", value=', '.join(unknown)))
    if key in formula.names:
        raise FormulaError(key, msg("a formula cannot refer to its own metric"))
    types = dict(session.execute(select(Metric.key, Metric.type)).all())
    check_types(formula, types)
    derived = {m.key: m.formula for m in session.scalars(select(Metric).where(
        Metric.formula.is_not(None))) if m.key != key}
    order_formulas([parse_formula(k, f) for k, f in derived.items()] + [formula])
    return formula


def metric_bound_problem(value: Decimal, mtype: str) -> str | None:
    """Why a metric's own lowest or highest accepted value is refused, or None."""
    if decimals(value) > DECIMALS:
        return f"at most {DECIMALS} decimals"
    return range_problem(value, mtype)


_METRIC_KEY = re.compile(r"[a-z][a-z0-9_]{0,59}")


def save_metric(session: Session, key: str, values: Mapping[str, Any]) -> tuple[Metric, bool]:
    """Create the metric with this key or change it (HR): the back office's checks, as one
    call the API makes. ``values``: label_en, label_zh, type, rollup, formula, description,
    min_value, max_value; one not given keeps what the metric has (a new one needs
    label_en and type). Return the metric and whether it was created."""
    def refuse(field: str, reason: str) -> LaurelError:
        return LaurelError(f"metric {key}, field {field}: {reason}")

    if not _METRIC_KEY.fullmatch(key):
        raise refuse("key", "lowercase letters, digits and _, starting with a letter, at most "
                     "60 characters")
    metric = session.scalar(select(Metric).where(Metric.key == key))
    created = metric is None
    merged: dict[str, Any] = {} if created else {
        k: getattr(metric, k) for k in ("label_en", "label_zh", "type", "rollup", "formula",
                                        "description", "min_value", "max_value")}
    merged.update(values)
    for field, most in (("label_en", 200), ("label_zh", 200)):
        if len(merged.get(field) or "") > most:
            raise refuse(field, f"at most {most} characters")
    if not (merged.get("label_en") or "").strip():
        raise refuse("label_en", "an English label is needed")
    if merged.get("type") not in METRIC_TYPES:
        raise refuse("type", f"one of {', '.join(METRIC_TYPES)}")
    if (merged.get("rollup") or "sum") not in ROLLUPS:
        raise refuse("rollup", f"one of {', '.join(ROLLUPS)}")
    formula = (merged.get("formula") or "").strip() or None
    if formula:
        validate_formula(session, key, formula)
    bounds = {}
    for field in ("min_value", "max_value"):
        raw = merged.get(field)
        if raw is None or raw == "":
            bounds[field] = None
            continue
        try:
            bound = Decimal(str(raw))
        except ArithmeticError:
            raise refuse(field, f"{raw!r} is not a number") from None
        if not bound.is_finite():
            raise refuse(field, f"{raw!r} is not a number")
        problem = metric_bound_problem(bound, merged["type"])
        if problem:
            raise refuse(field, problem)
        bounds[field] = bound
    if None not in bounds.values() and bounds["min_value"] > bounds["max_value"]:
        raise refuse("max_value", "the highest accepted value is below the lowest")
    if metric is None:
        metric = Metric(key=key)
        session.add(metric)
    metric.label_en, metric.label_zh = merged["label_en"].strip(), merged.get("label_zh") or ""
    metric.type, metric.rollup = merged["type"], merged.get("rollup") or "sum"
    metric.formula, metric.description = formula, merged.get("description") or ""
    metric.min_value, metric.max_value = bounds["min_value"], bounds["max_value"]
    session.flush()
    session.refresh(metric)  # the bounds as the database keeps them (its scale)
    return metric, created


def check_types(formula: Formula, types: Mapping[str, str]) -> str | None:
    """Refuse sums of unlike quantities (money + count); return the result's type if known.

    Adding or subtracting needs terms of one type; a number scales a term and keeps its
    type; a product or quotient of two metrics is a new quantity (a ratio, an average).
    """

    def walk(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant):
            return None
        if isinstance(node, ast.Name):
            return types.get(node.id)
        if isinstance(node, ast.UnaryOp):
            return walk(node.operand)
        if isinstance(node, ast.Call):
            kinds = [walk(a) for a in node.args]
            if node.func.id == "defined_sum":
                return _same(kinds, "defined_sum")
            return kinds[0] if kinds else None
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Add | ast.Sub):
                return _same([left, right], "+" if isinstance(node.op, ast.Add) else "-")
            if isinstance(node.op, ast.Mult):
                if isinstance(node.left, ast.Constant):
                    return right
                if isinstance(node.right, ast.Constant):
                    return left
                return None
            if isinstance(node.right, ast.Constant):
                return left
            return None
        return None

    def _same(kinds: list[str | None], what: str) -> str | None:
        known = {k for k in kinds if k is not None}
        if len(known) > 1:
            raise FormulaError(formula.metric, msg("%(what)s mixes %(value)s: terms of a sum "
                                                   "must be of one type", what=what,
                                                   value=' and '.join(sorted(known))))
        return known.pop() if known else None

    return walk(formula.tree.body)


def seed_reference_data(session: Session) -> None:
    """Create the levels and the whole metric catalog where they are missing."""
    from engine.models import Level

    have_levels = set(session.scalars(select(Level.code)))
    for code, name, authority in LEVELS:
        if code not in have_levels:
            session.add(Level(code=code, name=name, discount_authority=Decimal(authority)))
    have = set(session.scalars(select(Metric.key)))
    for key, en, zh, mtype, rollup, formula in CATALOG:
        if key not in have:
            low, high = BOUNDS.get(key, (None, None))
            session.add(Metric(key=key, label_en=en, label_zh=zh, type=mtype, rollup=rollup,
                               formula=formula,
                               min_value=None if low is None else Decimal(low),
                               max_value=None if high is None else Decimal(high)))
    session.flush()


# all the digits a value holds (a quotient's 34 included)
PLAIN = Context(prec=60)  # the other settings as decimal's defaults


def to_plain(value: Any) -> Any:
    """Render a Decimal without exponent or trailing noise for explanations."""
    if isinstance(value, Decimal):
        return format(value.normalize(PLAIN), "f")
    return value


def plain_text(value: Any) -> str:
    """str(to_plain(value)), a plain Decimal (most values) the quickest."""
    if type(value) is Decimal:
        return format(value.normalize(PLAIN), "f")
    return str(to_plain(value))


def ratio_parts(formula: str | None) -> tuple[str, str] | None:
    """(numerator, denominator) of a formula "a / b" or "a / positive(b)", else None."""
    if not formula:
        return None
    try:
        node = ast.parse(formula, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
            and isinstance(node.left, ast.Name)):
        return None
    right = node.right
    if isinstance(right, ast.Call) and isinstance(right.func, ast.Name) \
            and right.func.id == "positive" and len(right.args) == 1:
        right = right.args[0]
    return (node.left.id, right.id) if isinstance(right, ast.Name) else None
