"""Period codes, derived-metric formulas and their undefined semantics (POLICIES.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from engine import metrics, periods
from engine.errors import FormulaError, PeriodError
from engine.metrics import CATALOG, Formula, evaluate, order_formulas, parse_formula
from engine.models import Metric

D = Decimal

# --- periods ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "kind", "start", "end"), [
    ("2026-01", "month", dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
    ("2028-02", "month", dt.date(2028, 2, 1), dt.date(2028, 2, 29)),
    ("2026-12", "month", dt.date(2026, 12, 1), dt.date(2026, 12, 31)),
    ("2026-Q1", "quarter", dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
    ("2026-Q4", "quarter", dt.date(2026, 10, 1), dt.date(2026, 12, 31)),
    ("2026", "year", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
])
def test_parse(code: str, kind: str, start: dt.date, end: dt.date) -> None:
    assert periods.parse(code) == (kind, start, end)


@pytest.mark.parametrize("code", ["2026-13", "2026-00", "2026-1", "2026-Q5", "2026-Q0",
                                  "2026Q1", "26-01", "2026-01-01", "", "abcd", "2026-q1"])
def test_parse_rejects_malformed_codes(code: str) -> None:
    with pytest.raises(PeriodError, match="not a period code"):
        periods.parse(code)
    assert not periods.is_valid(code)


@pytest.mark.parametrize(("code", "previous"), [
    ("2026-Q1", "2025-Q4"), ("2026-Q3", "2026-Q2"), ("2026-01", "2025-12"),
    ("2026-07", "2026-06"), ("2026", "2025"),
])
def test_previous(code: str, previous: str) -> None:
    assert periods.previous(code) == previous


def test_children_and_parents() -> None:
    assert periods.children("2026-Q1") == ["2026-01", "2026-02", "2026-03"]
    assert periods.children("2026-Q4") == ["2026-10", "2026-11", "2026-12"]
    assert periods.children("2026") == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert periods.children("2026-05") == []
    assert periods.parents("2026-05") == ["2026-Q2", "2026"]
    assert periods.parents("2026-12") == ["2026-Q4", "2026"]
    assert periods.parents("2026-Q3") == ["2026"]
    assert periods.parents("2026") == []


def test_add_months_clamps_to_month_end() -> None:
    assert periods.add_months(dt.date(2026, 4, 1), 3) == dt.date(2026, 7, 1)
    assert periods.add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert periods.add_months(dt.date(2026, 11, 15), 2) == dt.date(2027, 1, 15)


def test_get_or_create_and_require(session) -> None:
    with pytest.raises(PeriodError, match="2026-Q2 does not exist"):
        periods.require(session, "2026-Q2")
    created = periods.get_or_create(session, "2026-Q2")
    assert (created.kind, created.start, created.end, created.status) == (
        "quarter", dt.date(2026, 4, 1), dt.date(2026, 6, 30), "open")
    assert periods.get_or_create(session, "2026-Q2").id == created.id
    assert periods.require(session, "2026-Q2").id == created.id


# --- derived metrics ----------------------------------------------------------------------

FORMULAS = {key: parse_formula(key, f) for key, *_, f in CATALOG if f}


def derive(**values: str | None) -> dict[str, Decimal | None]:
    """Derive every catalog metric from the given inputs (strings become decimals)."""
    inputs = {k: None if v is None else D(v) for k, v in values.items()}
    out = dict(inputs)
    for formula in order_formulas(FORMULAS.values()):
        out[formula.metric] = evaluate(formula, out)
    return out


@pytest.mark.parametrize(("new", "existing", "total"), [
    ("100", "50", "150"), ("100", None, "100"), (None, "50", "50"), (None, None, None),
    ("0", None, "0"),
])
def test_revenue_total_counts_one_undefined_side_as_zero(new, existing, total) -> None:
    got = derive(revenue_new=new, revenue_existing=existing)["revenue_total"]
    assert got == (None if total is None else D(total))


@pytest.mark.parametrize(("quota", "attainment"), [
    ("100000", D("0.8")), ("0", None), ("-5", None), (None, None), ("0.000001", D("80000000000")),
])
def test_attainment_needs_a_positive_quota(quota, attainment) -> None:
    assert derive(revenue_new="80000", quota=quota)["attainment"] == attainment


def test_attainment_undefined_without_revenue() -> None:
    assert derive(quota="100")["attainment"] is None


def test_exact_decimal_results() -> None:
    got = derive(self_score="80", manager_score="70", customer_score="91")
    # 0.2*80 + 0.5*70 + 0.3*91 = 16 + 35 + 27.3; binary floats would give 78.30000000000001
    assert got["evaluation_score"] == D("78.3")
    assert str(got["evaluation_score"].normalize()) == "78.3"
    got = derive(revenue_new="1234.50", quota="1000")
    assert got["attainment"] == D("1.2345")
    got = derive(revenue_new="1", quota="3")
    assert got["attainment"].quantize(D("1e-20")) == D("0.33333333333333333333")


def test_catalog_derive_agrees_with_evaluate(session) -> None:
    inputs = {"revenue_new": D("1234.50"), "revenue_existing": D("765.5"), "quota": D("3000"),
              "self_score": D("80"), "manager_score": D("70"), "customer_score": D("91"),
              "renewal_intent": D("66"), "leads": D("0"), "opportunities": D("4"),
              "closed_customers": D("7"), "signed_amount": D("50000"),
              "collected_amount": D("24999.99")}
    expected = derive(**{k: str(v) for k, v in inputs.items()})
    got = metrics.load_catalog(session).derive(dict(inputs))
    assert got == expected
    assert got["lead_to_opportunity"] is None
    assert got["collection_ratio"] < D("0.5")


@pytest.mark.parametrize("missing", ["self_score", "manager_score", "customer_score"])
def test_evaluation_score_undefined_when_any_part_is(missing: str) -> None:
    values = {"self_score": "80", "manager_score": "70", "customer_score": "91"}
    values[missing] = None
    assert derive(**values)["evaluation_score"] is None


@pytest.mark.parametrize(("key", "num", "den", "inputs"), [
    ("collection_ratio", "collected_amount", "signed_amount", {}),
    ("customer_growth_rate", "new_customers", "target_customers", {}),
    ("churn_rate", "churned_revenue", "customer_revenue_base", {}),
    ("lead_conversion", "won_leads", "leads", {}),
    ("lead_to_opportunity", "opportunities", "leads", {}),
])
def test_ratios_undefined_on_zero_or_undefined_denominator(key, num, den, inputs) -> None:
    assert derive(**{num: "3", den: "10"})[key] == D("0.3")
    assert derive(**{num: "3", den: "0"})[key] is None
    assert derive(**{num: "3"})[key] is None
    assert derive(**{den: "10"})[key] is None


def test_lead_to_opportunity_exactly_thirty_percent() -> None:
    assert derive(opportunities="9", leads="30")["lead_to_opportunity"] == D("0.30")


def test_avg_deal_size_and_repurchase_rate() -> None:
    got = derive(revenue_new="600", revenue_existing="400", closed_customers="4")
    assert got["avg_deal_size"] == D("250")
    assert got["repurchase_rate"] == D("0.4")
    got = derive(revenue_new="0", revenue_existing="0", closed_customers="0")
    assert got["avg_deal_size"] is None
    assert got["repurchase_rate"] is None
    assert derive(closed_customers="2")["avg_deal_size"] is None


def test_annual_score_reads_evaluation_score() -> None:
    got = derive(self_score="90", manager_score="88", customer_score="86", renewal_intent="90")
    assert got["evaluation_score"] == D("87.8")
    assert got["annual_score"] == D("88.24")
    assert derive(renewal_intent="90")["annual_score"] is None


def test_defined_sum_and_positive() -> None:
    assert metrics.defined_sum(None, None) is None
    assert metrics.defined_sum(D(1), None, D(2)) == D(3)
    assert metrics.positive(D(0)) is None
    assert metrics.positive(D("-1")) is None
    assert metrics.positive(None) is None
    assert metrics.positive(D("0.5")) == D("0.5")


def test_unary_minus_and_constants_propagate_undefined() -> None:
    f = parse_formula("x", "-a + 2")
    assert evaluate(f, {"a": D(5)}) == D(-3)
    assert evaluate(f, {"a": None}) is None
    assert evaluate(f, {}) is None


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "__import__('os')",
    "__import__('os').system('true')",
    "quota.real",
    "quota.__class__",
    "(lambda: 1)()",
    "[quota]",
    "quota if leads else 0",
    "quota ** 2",
    "quota < 1",
    "open('x')",
    "defined_sum(quota, x=1)",
    "'text'",
    "quota +",
])
def test_formula_rejects_anything_but_arithmetic(text: str) -> None:
    with pytest.raises(FormulaError) as err:
        parse_formula("bad_metric", text)
    assert "metric bad_metric, field formula" in str(err.value)


def test_validate_formula_against_the_catalog(session) -> None:
    ok = metrics.validate_formula(session, "market_penetration", "new_customers / leads")
    assert ok.names == frozenset({"new_customers", "leads"})
    with pytest.raises(FormulaError, match="unknown metric no_such_metric"):
        metrics.validate_formula(session, "x", "quota / no_such_metric")
    with pytest.raises(FormulaError, match="its own metric"):
        metrics.validate_formula(session, "x", "x + 1")


def test_cycles_are_rejected() -> None:
    a = parse_formula("a", "b + 1")
    b = parse_formula("b", "c * 2")
    c = parse_formula("c", "a - quota")
    with pytest.raises(FormulaError, match="cycle: a -> b -> c -> a"):
        order_formulas([a, b, c])
    assert [f.metric for f in order_formulas([a, b])] == ["b", "a"]


def test_load_catalog_rejects_unknown_and_cyclic_metrics(session) -> None:
    session.add(Metric(key="loop_a", label_en="A", type="ratio", formula="loop_b / 2"))
    session.add(Metric(key="loop_b", label_en="B", type="ratio", formula="loop_a * 2"))
    session.flush()
    with pytest.raises(FormulaError, match="cycle"):
        metrics.load_catalog(session)
    for m in session.scalars(select(Metric).where(Metric.key.in_(["loop_a", "loop_b"]))):
        session.delete(m)
    session.add(Metric(key="ghost", label_en="G", type="ratio", formula="nothing / leads"))
    session.flush()
    with pytest.raises(FormulaError, match="unknown metric nothing"):
        metrics.load_catalog(session)


def test_catalog_of_the_seeded_database(session) -> None:
    catalog = metrics.load_catalog(session)
    assert set(catalog.inputs) == {k for k, *_, f in CATALOG if not f}
    assert {f.metric for f in catalog.derived} == {k for k, *_, f in CATALOG if f}
    order = [f.metric for f in catalog.derived]
    assert order.index("revenue_total") < order.index("attainment")
    assert order.index("evaluation_score") < order.index("annual_score")
    got = catalog.derive({"revenue_new": D("50"), "quota": D("100")})
    assert got["attainment"] == D("0.5")
    # revenue_existing undefined: the ratio reads an undefined numerator, so it is undefined
    assert got["repurchase_rate"] is None


def test_new_metric_is_usable_at_once(session) -> None:
    session.add(Metric(key="market_penetration", label_en="Market penetration", type="ratio",
                       rollup="mean", formula="new_customers / target_customers"))
    session.flush()
    got = metrics.load_catalog(session).derive({"new_customers": D(3),
                                                "target_customers": D(12)})
    assert got["market_penetration"] == D("0.25")


def test_seed_reference_data_is_idempotent(session) -> None:
    from engine.models import Level

    metrics.seed_reference_data(session)
    metrics.seed_reference_data(session)
    assert session.scalar(select(Level.discount_authority).where(Level.code == "S2")) == D(
        "0.08")
    assert len(list(session.scalars(select(Metric.key)))) == len(CATALOG)


def test_formula_type_is_hashable_and_cached() -> None:
    assert parse_formula("k", "a + b") is parse_formula("k", "a + b")
    assert isinstance(parse_formula("k", "a + b"), Formula)


def test_formula_types_refuse_sums_of_unlike_quantities(session):
    from engine.errors import FormulaError
    from engine.metrics import validate_formula

    with pytest.raises(FormulaError, match="mixes count and money"):
        validate_formula(session, "odd", "revenue_new + leads")
    with pytest.raises(FormulaError, match="mixes"):
        validate_formula(session, "odd", "defined_sum(quota, satisfaction)")
    # scaling and ratios are fine
    validate_formula(session, "ok1", "0.5 * revenue_new - revenue_existing / 2")
    validate_formula(session, "ok2", "won_leads / leads * satisfaction")


def test_formula_cycles_through_the_catalog_are_refused(session):
    from engine.errors import FormulaError
    from engine.metrics import validate_formula
    from engine.models import Metric

    session.add(Metric(key="m_a", label_en="A", type="money", rollup="sum",
                       formula="m_b + revenue_new"))
    session.add(Metric(key="m_b", label_en="B", type="money", rollup="sum", formula=None))
    session.flush()
    with pytest.raises(FormulaError, match="cycle"):
        validate_formula(session, "m_b", "m_a * 2")
