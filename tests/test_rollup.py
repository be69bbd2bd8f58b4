"""Quarter and year figures rolled up from the periods below (POLICIES.md, Input metrics)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.exact import exact
from engine.imports import import_employees, import_results
from engine.metrics import load_catalog
from engine.models import Employee
from engine.rollup import combine, period_figures

D = Decimal

EMPLOYEES = """code,name,team,level
E1,Ann,North,S1
E2,Bo,North,S2
E3,Cai,North,S3
"""


def results(session: Session, text: str) -> None:
    import_results(session, "results.csv", data=text.encode())


@pytest.fixture()
def ids(session: Session) -> dict[str, int]:
    import_employees(session, "employees.csv", data=EMPLOYEES.encode())
    return dict(session.execute(select(Employee.code, Employee.id)).all())


def test_quarter_from_months_by_sum_mean_and_max(session: Session, ids) -> None:
    results(session, """period,employee_code,quota,revenue_new,satisfaction,max_discount_pct
2026-01,E1,100,90.50,80,0.03
2026-02,E1,100,110.25,91,0.06
2026-03,E1,120,100,85,0.04
""")
    q1 = period_figures(session, "2026-Q1")
    figures = dict(q1[ids["E1"]])
    # a mean of three months is kept exact: compared as 256/3, shown with 34 digits
    assert exact(figures.pop("satisfaction")) == Fraction(256, 3)
    assert figures == {"quota": D("320"), "revenue_new": D("300.75"),
                       "max_discount_pct": D("0.06")}


def test_a_month_missing_is_simply_absent(session: Session, ids) -> None:
    results(session, """period,employee_code,quota,revenue_new,satisfaction
2026-04,E1,100,80,70
2026-06,E1,100,120,90
""")
    q2 = period_figures(session, "2026-Q2")[ids["E1"]]
    assert q2["quota"] == D(200)
    assert q2["revenue_new"] == D(200)
    assert q2["satisfaction"] == D(80)


def test_mean_counts_defined_months_only(session: Session, ids) -> None:
    results(session, """period,employee_code,satisfaction,manager_score,quota
2026-01,E1,60,,100
2026-02,E1,,90,100
2026-03,E1,90,,100
""")
    q1 = period_figures(session, "2026-Q1")[ids["E1"]]
    assert q1["satisfaction"] == D(75)  # (60 + 90) / 2, not / 3
    assert q1["manager_score"] == D(90)
    assert "customer_score" not in q1  # never given: undefined, not zero


def test_imported_quarter_value_wins_metric_by_metric(session: Session, ids) -> None:
    results(session, """period,employee_code,quota,revenue_new,satisfaction
2026-01,E1,100,50,80
2026-02,E1,100,60,90
2026-03,E1,100,70,70
2026-Q1,E1,,1000,
""")
    q1 = period_figures(session, "2026-Q1")[ids["E1"]]
    assert q1["revenue_new"] == D(1000)  # imported on the quarter row
    assert q1["quota"] == D(300)  # rolled up: the quarter row left it empty
    assert q1["satisfaction"] == D(80)


def test_quarter_row_alone_makes_the_employee_part_of_the_quarter(session: Session, ids
                                                                   ) -> None:
    results(session, "period,employee_code,quota\n2026-Q3,E2,500\n")
    assert period_figures(session, "2026-Q3") == {ids["E2"]: {"quota": D(500)}}
    assert period_figures(session, "2026-07") == {}


def test_year_from_quarters_mean_of_quarter_figures(session: Session, ids) -> None:
    # Q1 rolls up from two months (mean 85), Q2 is imported (70): the year's mean is
    # (85 + 70) / 2 = 77.5, not the mean of the three rows (80 + 90 + 70) / 3.
    results(session, """period,employee_code,satisfaction,quota,revenue_new,max_discount_pct
2026-01,E1,80,100,100,0.02
2026-02,E1,90,100,150,0.05
2026-Q2,E1,70,300,250,0.04
2026-10,E1,,200,210,
""")
    year = period_figures(session, "2026")[ids["E1"]]
    assert year["satisfaction"] == D("77.5")
    assert year["quota"] == D(700)
    assert year["revenue_new"] == D(710)
    assert year["max_discount_pct"] == D("0.05")


def test_imported_year_value_wins(session: Session, ids) -> None:
    results(session, """period,employee_code,renewal_intent,quota
2026-01,E1,60,100
2026,E1,90,
""")
    year = period_figures(session, "2026")[ids["E1"]]
    assert year == {"renewal_intent": D(90), "quota": D(100)}


def test_employee_with_nothing_for_the_period_is_absent(session: Session, ids) -> None:
    results(session, """period,employee_code,quota,revenue_new
2026-01,E1,100,90
2026-04,E2,100,90
""")
    assert set(period_figures(session, "2026-Q1")) == {ids["E1"]}
    assert set(period_figures(session, "2026-Q2")) == {ids["E2"]}
    assert set(period_figures(session, "2026")) == {ids["E1"], ids["E2"]}
    assert ids["E3"] not in period_figures(session, "2026")
    assert period_figures(session, "2026-Q4") == {}
    assert period_figures(session, "2027") == {}


def test_month_figures_are_the_imported_values(session: Session, ids) -> None:
    results(session, """period,employee_code,quota,revenue_new,leads
2026-05,E1,100,90.5,
2026-05,E2,,,12
""")
    may = period_figures(session, "2026-05")
    assert may == {ids["E1"]: {"quota": D(100), "revenue_new": D("90.5")},
                   ids["E2"]: {"leads": D(12)}}


def test_derived_metrics_come_from_the_rolled_up_inputs(session: Session, ids) -> None:
    # Quarter attainment is sum(revenue) / sum(quota), not the mean of monthly attainments.
    results(session, """period,employee_code,quota,revenue_new
2026-01,E1,100,150
2026-02,E1,300,150
""")
    q1 = load_catalog(session).derive(period_figures(session, "2026-Q1")[ids["E1"]])
    assert q1["attainment"] == D("0.75")


def test_combine() -> None:
    assert combine("sum", []) is None
    assert combine("mean", []) is None
    assert combine("max", [D(1), D(3), D(2)]) == D(3)
    assert combine("sum", [D("0.1"), D("0.2")]) == D("0.3")
    assert combine("mean", [D(1), D(2)]) == D("1.5")
