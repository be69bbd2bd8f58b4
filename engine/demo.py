"""The demo organisation: six teams, sixty employees, a year of results, one user per role.

Everything is made by one seeded random generator, so two loads give the same data. The
baseline is plausible noise; on top of it a few employees and months are set by hand so
that every policy of POLICIES.md fires somewhere in 2026, including the exact boundaries
(see ``SCENARIOS``). The data goes through the real import path, as CSV text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.imports import import_employees, import_results
from engine.models import Rule, User
from engine.users import create_user

SEED = 20260101
YEAR = 2026
DOMAIN = "demo.laurel"

# (name, region, stage, mean monthly attainment of the team)
TEAMS: list[tuple[str, str, str, Decimal]] = [
    ("Beijing Pioneers", "North", "startup", Decimal("0.97")),
    ("Chengdu Pioneers", "West", "startup", Decimal("1.05")),
    ("Shanghai Growth", "East", "growth", Decimal("1.06")),
    ("Wuhan Growth", "Central", "growth", Decimal("0.97")),
    ("Guangzhou Key Accounts", "South", "mature", Decimal("1.09")),
    ("Hangzhou Key Accounts", "East", "mature", Decimal("0.99")),
]
# Position 0 of each team is its manager; the others report to that manager.
LEVEL_PLAN = ["M1", "S1", "S1", "S1", "S2", "S2", "S2", "S3", "S3", "M1"]
BASE_QUOTA = {"S1": 50000, "S2": 70000, "S3": 90000, "M1": 110000}
AUTHORITY = {"S1": Decimal("0.05"), "S2": Decimal("0.08"), "S3": Decimal("0.10"),
             "M1": Decimal("0.15")}
EXISTING_SHARE = {"startup": (0.10, 0.30), "growth": (0.22, 0.46), "mature": (0.50, 0.75)}
NEW_CUSTOMERS = {"startup": (2, 6), "growth": (1, 4), "mature": (1, 2)}

MANAGER_TEAM = "Shanghai Growth"  # the team of the demo sales manager
LATE_HIRE = "E0060"  # joins on 2026-07-01: no results before July
REP = "E0014"  # the demo salesperson (a sales_rep user)

SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu",
            "Xu", "Sun", "Hu", "Zhu", "Gao", "Lin", "He", "Guo", "Ma", "Luo"]
GIVEN = ["Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yan", "Tao", "Ming", "Hui",
         "Qiang", "Xiu", "Ping", "Gang", "Hong", "Yu", "Lan", "Bo", "Ting", "Hao", "Xin"]

INPUT_METRICS = [
    "quota", "revenue_new", "revenue_existing", "signed_amount", "collected_amount",
    "new_customers", "target_customers", "churned_revenue", "customer_revenue_base",
    "closed_customers", "leads", "opportunities", "won_leads", "visits", "satisfaction", "nps",
    "self_score", "manager_score", "customer_score", "teamwork_score", "renewal_intent",
    "max_discount_pct", "false_ad_complaints",
]

# What the hand-set values below make happen (employee, month or quarter, effect).
SCENARIOS = [
    ("E0023", "every quarter", "rating A (attainment 1.15, evaluation 87.8): reserve "
     "supervisor from 2026-Q2, annual rating A"),
    ("E0014", "2026-Q1", "rating D (attainment 0.60): PIP from 2026-04-01; C in 2026-Q2 "
     "starts no second PIP"),
    ("E0045", "2026-Q2, 2026-Q3", "rating C twice (attainment 0.78): PIP from 2026-10-01"),
    ("E0002", "2026-01", "attainment exactly 0.80 (rate 4%)"),
    ("E0012", "2026-01", "attainment exactly 1.00 (rate 5%)"),
    ("E0032", "2026-01", "attainment exactly 1.20 (rate 6%)"),
    ("E0005, E0051", "2026-06", "tied monthly champions (revenue_total 260000.00)"),
    ("E0033", "2026-02", "lead_to_opportunity exactly 0.30 with 30 leads: no alert"),
    ("E0034", "2026-02", "lead_to_opportunity 0.25 with 40 leads: funnel alert"),
    ("E0008", "2026-05", "lead_to_opportunity 0.25 with exactly 20 leads: funnel alert"),
    ("E0009", "2026-05", "lead_to_opportunity 0.1667 with 12 leads: no alert"),
    ("E0003", "2026-03", "discount 0.07 above S1 authority 0.05: flag, payouts held"),
    ("E0006", "2026-03", "discount exactly 0.08, the S2 authority: no flag"),
    ("E0010", "2026-08", "discount exactly 0.15, the M1 authority: no flag"),
    ("E0048", "2026-09", "discount 0.12 above S3 authority 0.10: flag, payouts held"),
    ("E0026", "2026-04", "one false advertising complaint: flag, payouts held"),
    ("E0057", "2026-10", "two false advertising complaints: flag, payouts held"),
    ("E0038", "2026-04", "signed 150000, collected 60000 (0.40): collection gap"),
    ("E0039", "2026-07", "signed exactly 50000, collected 24000 (0.48): collection gap"),
    ("E0040", "2026-07", "signed 80000, collected exactly half: no flag"),
    ("E0041", "2026-07", "signed 40000, collected 8000: below 50000, no flag"),
    ("E0004 E0015 E0027 E0036 E0049", "2026-Q1", "satisfaction 99..95: service stars"),
    ("E0019, E0055", "2026-Q1", "satisfaction 94, tied at the 10% boundary: both stars"),
    ("E0024", "every month", "repurchase_rate exactly 0.40 in a growth team"),
    ("E0011, E0052, E0030", "2026-02, 2026-05, 2026-11", "satisfaction empty"),
    ("E0017", "2026-02", "quota empty: attainment undefined, a warning"),
    (LATE_HIRE, "2026-07", "hired in July: not in the population of 2026-Q1 and 2026-Q2"),
    # the demo-only policies (DEMO_RULES), in the locked first quarter
    ("E0048", "2026-02", "key-account accelerator 200.00 capped at 150.00 a month"),
    ("E0048", "2026-03", "key-account accelerator 116.00 cut to 115.00 by the annual cap of "
     "400.00 (135.00 and 150.00 paid in January and February)"),
    ("E0030", "2026-Q1", "collection bonus 874.02 capped at 800.00 a quarter (2026-Q2: "
     "767.85 cut to 700.00 by the annual cap of 1,500.00)"),
    ("E0052", "2026-Q1", "collection bonus 309.40 raised to the floor of 500.00"),
]

# Demo-only policies (not the library of rules/, whose outcomes they leave as they are):
# one per plan mechanic, each with its scenarios. (rule as YAML, its feature)
DEMO_RULES: list[tuple[str, str]] = [("""\
key: commission.demo_accelerator
name: Key-account accelerator (demo)
name_zh: 大客户超额加速提成（演示）
description: >-
  Demo only, not a policy of the library. On top of the tiered commission, the mature
  key-account teams earn marginal tiers on their revenue above quota: 1% of the slice from
  100% to 120% of quota, 2% of the slice above, at most 150.00 a month and 400.00 a year
  per employee.
description_zh: >-
  仅用于演示，不属于政策库。成熟期大客户团队在阶梯提成之外，对超出指标的收入分段计提：指标的
  100% 至 120% 部分按 1%，120% 以上部分按 2%；每人每月至多 150.00，每年至多 400.00。
kind: commission
period_kind: month
scope: {team_stage: [mature]}
action:
  type: tiers
  metric: attainment
  base: revenue_total
  mode: marginal
  tiers:
    - {from: 1.00, to: 1.20, rate: 0.01}
    - {from: 1.20, to: null, rate: 0.02}
  cap: 150.00
  annual_cap: 400.00
""", """\
Feature: Key-account accelerator (commission.demo_accelerator)
  Marginal tiers on the revenue above quota, capped at 150.00 a month and 400.00 a year
  per employee.

  Background:
    Given the team "Keys" at stage "mature"
    And employee "K1" at level "S2" in team "Keys"

  Scenario Outline: Each slice above quota at its own rate, capped
    Given the results for "2026-01":
      | employee | quota  | revenue_new |
      | K1       | 100000 | <revenue>   |
    When the compensation run for "2026-01" is made
    Then "K1" receives a "commission.demo_accelerator" commission of <commission> payable

    Examples:
      | case                       | revenue | commission |
      | exactly at quota           | 100000  | 0.00       |
      | 110% of quota              | 110000  | 100.00     |
      | 114.99% of quota           | 114990  | 149.90     |
      | 115%: exactly the cap      | 115000  | 150.00     |
      | 125% of quota: capped      | 125000  | 150.00     |

  Scenario: Below quota the accelerator does not apply
    Given the results for "2026-01":
      | employee | quota  | revenue_new |
      | K1       | 100000 | 99999.99    |
    When the compensation run for "2026-01" is made
    Then "K1" receives no "commission.demo_accelerator" commission

  Scenario: The annual cap takes off what the approved months paid
    Given the results:
      | period  | employee | quota  | revenue_new |
      | 2026-01 | K1       | 100000 | 250000      |
      | 2026-02 | K1       | 100000 | 250000      |
      | 2026-03 | K1       | 100000 | 250000      |
    And the compensation run for "2026-01" was made and approved
    And the compensation run for "2026-02" was made and approved
    When the compensation run for "2026-03" is made
    # 150.00 twice: 100.00 of the 400.00 is left
    Then "K1" receives a "commission.demo_accelerator" commission of 100.00 payable
"""), ("""\
key: bonus.demo_collection
name: Collection bonus (demo)
name_zh: 回款奖金（演示）
description: >-
  Demo only, not a policy of the library. A quarter whose cash collected is at least 85%
  of the contract value signed earns 0.2% of the cash collected: at least 500.00 and at
  most 800.00 a quarter, at most 1,500.00 a year per employee.
description_zh: >-
  仅用于演示，不属于政策库。季度回款额达到签约额 85% 及以上的，按回款额的 0.2% 发放奖金：每季度
  至少 500.00、至多 800.00，每人每年至多 1,500.00。
kind: bonus
period_kind: quarter
when:
  - {fact: collection_ratio, op: ">=", value: 0.85}
action: {type: rate, rate: 0.002, base: collected_amount, floor: 500.00, cap: 800.00,
         annual_cap: 1500.00}
""", """\
Feature: Collection bonus (bonus.demo_collection)
  0.2% of the cash collected in a quarter whose collection ratio is at least 85%: at least
  500.00 and at most 800.00 a quarter, at most 1,500.00 a year per employee.

  Background:
    Given employee "C1" at level "S2" in team "North"

  Scenario Outline: The floor and the cap of a quarter
    Given the results for "2026-Q1":
      | employee | signed_amount | collected_amount |
      | C1       | <signed>      | <collected>      |
    When the compensation run for "2026-Q1" is made
    Then "C1" receives a "bonus.demo_collection" bonus of <bonus> payable

    Examples:
      | case                    | signed | collected | bonus  |
      | below the floor         | 100000 | 90000     | 500.00 |
      | between floor and cap   | 300000 | 300000    | 600.00 |
      | above the cap           | 500000 | 450000    | 800.00 |

  Scenario: Below 85% collected there is no bonus
    Given the results for "2026-Q1":
      | employee | signed_amount | collected_amount |
      | C1       | 100000        | 84999.99         |
    When the compensation run for "2026-Q1" is made
    Then "C1" receives no "bonus.demo_collection" bonus

  Scenario: The second quarter gets what is left of the annual cap
    Given the results:
      | period  | employee | signed_amount | collected_amount |
      | 2026-Q1 | C1       | 500000        | 450000           |
      | 2026-Q2 | C1       | 500000        | 450000           |
    And the compensation run for "2026-Q1" was made and locked
    When the compensation run for "2026-Q2" is made
    Then "C1" receives a "bonus.demo_collection" bonus of 700.00 payable
""")]

CENT = Decimal("0.01")


def _money(value: Decimal | float | int) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def logins() -> list[tuple[str, str, str]]:
    """Return the demo users as (email, password, role)."""
    return [
        (f"hr@{DOMAIN}", "laurel-demo-1", "hr_admin"),
        (f"analyst@{DOMAIN}", "laurel-demo-2", "comp_analyst"),
        (f"analyst2@{DOMAIN}", "laurel-demo-3", "comp_analyst"),
        (f"compliance@{DOMAIN}", "laurel-demo-4", "compliance_officer"),
        (f"manager@{DOMAIN}", "laurel-demo-5", "sales_manager"),
        (f"auditor@{DOMAIN}", "laurel-demo-6", "auditor"),
        # a salesperson on the portal: E0014, rated D in 2026-Q1, on a PIP from April
        (f"{REP.lower()}@{DOMAIN}", "laurel-demo-7", "sales_rep"),
    ]


def is_loaded(session: Session) -> bool:
    """Tell whether the demo was loaded already (its HR user exists)."""
    email = logins()[0][0]
    return session.scalar(select(func.count()).select_from(User).where(
        func.lower(User.email) == email)) > 0


class DemoLogins(list[tuple[str, str, str]]):
    """The demo logins; ``already_loaded`` tells that nothing was changed this time."""

    already_loaded: bool = False


# --- the organisation -------------------------------------------------------------------


def employees(rng: random.Random) -> list[dict[str, str]]:
    """Return the employee rows (the columns of the employees file)."""
    rows = []
    used: set[str] = set()
    for t, (team, region, stage, _) in enumerate(TEAMS):
        manager_code = f"E{t * 10 + 1:04d}"
        for pos, level in enumerate(LEVEL_PLAN):
            code = f"E{t * 10 + pos + 1:04d}"
            while True:
                name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
                if name not in used:
                    used.add(name)
                    break
            email = (f"manager@{DOMAIN}" if team == MANAGER_TEAM and pos == 0
                     else f"{code.lower()}@{DOMAIN}")
            hire = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(0, 8 * 365))
            if code == LATE_HIRE:
                hire = dt.date(YEAR, 7, 1)
            rows.append({
                "code": code, "name": name, "email": email, "team": team, "region": region,
                "level": level, "manager_code": "" if pos == 0 else manager_code,
                "hire_date": hire.isoformat(), "team_stage": stage,
            })
    return rows


# --- the results --------------------------------------------------------------------------


def _baseline(rng: random.Random, emp: dict[str, str], stage: str, team_mean: Decimal,
              bias: Decimal, quota: int) -> dict[str, Decimal | str]:
    level = emp["level"]
    att = team_mean + bias + Decimal(str(round(rng.uniform(-0.08, 0.08), 3)))
    total = _money(quota * att)
    share = Decimal(str(round(rng.uniform(*EXISTING_SHARE[stage]), 3)))
    existing = _money(total * share)
    signed = _money(total * Decimal(str(round(rng.uniform(1.0, 1.3), 3))))
    collected = _money(signed * Decimal(str(round(rng.uniform(0.6, 1.0), 3))))
    base = _money(total * Decimal(str(round(rng.uniform(1.0, 1.15), 3))))
    churned = _money(base * Decimal(str(round(rng.uniform(0.01, 0.08), 3))))
    new_customers = rng.randint(*NEW_CUSTOMERS[stage])
    leads = rng.randint(20, 60)
    opportunities = -(-leads * rng.randint(32, 60) // 100)  # ceiling: the ratio stays >= 0.32
    return {
        "quota": Decimal(quota),
        "revenue_new": total - existing,
        "revenue_existing": existing,
        "signed_amount": signed,
        "collected_amount": collected,
        "new_customers": Decimal(new_customers),
        "target_customers": Decimal(rng.randint(20, 40)),
        "churned_revenue": churned,
        "customer_revenue_base": base,
        "closed_customers": Decimal(new_customers + rng.randint(2, 8)),
        "leads": Decimal(leads),
        "opportunities": Decimal(opportunities),
        "won_leads": Decimal(round(opportunities * rng.uniform(0.2, 0.5))),
        "visits": Decimal(rng.randint(8, 30)),
        "satisfaction": Decimal(rng.randint(65, 88)),
        "nps": Decimal(rng.randint(-10, 60)),
        "self_score": Decimal(rng.randint(65, 95)),
        "manager_score": Decimal(rng.randint(60, 90)),
        "customer_score": Decimal(rng.randint(62, 92)),
        "teamwork_score": Decimal(rng.randint(60, 95)),
        "renewal_intent": Decimal(rng.randint(55, 95)),
        "max_discount_pct": AUTHORITY[level] - Decimal(rng.randint(1, 3)) / 100,
        "false_ad_complaints": Decimal(0),
    }


def _revenue(row: dict[str, Decimal | str], total: Decimal, share: Decimal) -> None:
    """Set revenue_total (split by the existing share) keeping the split exact."""
    existing = _money(total * share)
    row["revenue_existing"] = existing
    row["revenue_new"] = total - existing


def _attainment(att: str) -> Callable[[dict[str, Decimal | str]], None]:
    def apply(row: dict[str, Decimal | str]) -> None:
        quota = Decimal(row["quota"])
        share = Decimal(row["revenue_existing"]) / (
            Decimal(row["revenue_existing"]) + Decimal(row["revenue_new"]))
        _revenue(row, _money(quota * Decimal(att)), share.quantize(CENT))

    return apply


def _set(**values: str | int) -> Callable[[dict[str, Decimal | str]], None]:
    def apply(row: dict[str, Decimal | str]) -> None:
        for key, value in values.items():
            row[key] = "" if value == "" else Decimal(str(value))

    return apply


def _months(quarter: int) -> list[int]:
    return [3 * (quarter - 1) + i for i in (1, 2, 3)]


def _overrides() -> dict[tuple[str, int], list[Callable[[dict[str, Decimal | str]], None]]]:
    """Return the hand-set changes by (employee, month), applied over the baseline."""
    out: dict[tuple[str, int], list[Callable[[dict[str, Decimal | str]], None]]] = {}

    def at(code: str, months: list[int] | int, fn: Callable[..., None]) -> None:
        for m in [months] if isinstance(months, int) else months:
            out.setdefault((code, m), []).append(fn)

    every = list(range(1, 13))
    # The star: A every quarter (attainment 1.15, evaluation 0.2*90+0.5*88+0.3*86 = 87.8).
    at("E0023", every, _attainment("1.15"))
    at("E0023", every, _set(self_score=90, manager_score=88, customer_score=86,
                            renewal_intent=90))
    # D in Q1, C in Q2 (the PIP of Q1 still runs), then back to the baseline.
    at("E0014", _months(1), _attainment("0.60"))
    at("E0014", _months(2), _attainment("0.75"))
    # B in Q1, then C and C: a PIP from the 2026-Q3 run.
    at("E0045", _months(2) + _months(3), _attainment("0.78"))
    # The commission tier boundaries, exactly.
    at("E0002", 1, _attainment("0.80"))
    at("E0012", 1, _attainment("1.00"))
    at("E0032", 1, _attainment("1.20"))
    # Two champions of June, tied.
    for code in ("E0005", "E0051"):
        at(code, 6, _set(quota=230000, revenue_new=160000, revenue_existing=100000))
    # The funnel: exactly 0.30 (no alert), below it, exactly 20 leads, too few leads.
    at("E0033", 2, _set(leads=30, opportunities=9, won_leads=4))
    at("E0034", 2, _set(leads=40, opportunities=10, won_leads=4))
    at("E0008", 5, _set(leads=20, opportunities=5, won_leads=2))
    at("E0009", 5, _set(leads=12, opportunities=2, won_leads=1))
    # Discounts: beyond authority, and exactly at it.
    at("E0003", 3, _set(max_discount_pct="0.07"))
    at("E0006", 3, _set(max_discount_pct="0.08"))
    at("E0010", 8, _set(max_discount_pct="0.15"))
    at("E0048", 9, _set(max_discount_pct="0.12"))
    # False advertising.
    at("E0026", 4, _set(false_ad_complaints=1))
    at("E0057", 10, _set(false_ad_complaints=2))
    # Collection: a gap, a gap at exactly 50000 signed, exactly half collected, too small.
    at("E0038", 4, _set(signed_amount=150000, collected_amount=60000))
    at("E0039", 7, _set(signed_amount=50000, collected_amount=24000))
    at("E0040", 7, _set(signed_amount=80000, collected_amount=40000))
    at("E0041", 7, _set(signed_amount=40000, collected_amount=8000))
    # Service stars of Q1: five clear, then two tied at the 10% boundary (59 rated: fewer
    # than 5.9 strictly higher means at most 5, so both 94s qualify).
    for code, score in [("E0004", 99), ("E0015", 98), ("E0027", 97), ("E0036", 96),
                        ("E0049", 95), ("E0019", 94), ("E0055", 94)]:
        at(code, _months(1), _set(satisfaction=score))
    # Repurchase exactly 0.40 in a growth team (whole-yuan revenue keeps the split exact).
    for m in every:
        at("E0024", m, _set(quota=70000, revenue_new=42000 + 600 * m,
                            revenue_existing=28000 + 400 * m))
    # Missing values.
    at("E0011", 2, _set(satisfaction=""))
    at("E0052", 5, _set(satisfaction=""))
    at("E0030", 11, _set(satisfaction=""))
    at("E0017", 2, _set(quota=""))
    return out


def results(rng: random.Random, emps: list[dict[str, str]]) -> list[dict[str, str]]:
    """Return the monthly result rows (period, employee_code and every input metric)."""
    stage_of = {t[0]: t[2] for t in TEAMS}
    mean_of = {t[0]: t[3] for t in TEAMS}
    overrides = _overrides()
    rows = []
    plans = []
    for emp in emps:
        bias = Decimal(str(round(rng.uniform(-0.03, 0.05), 3)))
        quota = BASE_QUOTA[emp["level"]] + 5000 * rng.randint(0, 2)
        plans.append((emp, bias, quota))
    for month in range(1, 13):
        for emp, bias, quota in plans:
            team = emp["team"]
            row = _baseline(rng, emp, stage_of[team], mean_of[team], bias, quota)
            if emp["code"] == LATE_HIRE and month < 7:
                continue
            for fn in overrides.get((emp["code"], month), []):
                fn(row)
            out = {"period": f"{YEAR}-{month:02d}", "employee_code": emp["code"]}
            out.update({k: "" if row[k] == "" else str(row[k]) for k in INPUT_METRICS})
            rows.append(out)
    return rows


def _csv(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def demo_files(seed: int = SEED) -> tuple[bytes, bytes]:
    """Return the employees and results files of the demo, as CSV bytes."""
    rng = random.Random(seed)
    emps = employees(rng)
    res = results(rng, emps)
    emp_cols = ["code", "name", "email", "team", "region", "level", "manager_code",
                "hire_date", "team_stage"]
    return _csv(emps, emp_cols), _csv(res, ["period", "employee_code", *INPUT_METRICS])


def load_demo(session: Session) -> DemoLogins:
    """Load the demo organisation, its 2026 results, one user per role and some history.

    The first quarter is run, approved and locked (its months and the quarter), and April
    is run and waits for approval, so that every role finds work in the back office: flags
    to review, a run to approve, statements to read. Loading twice changes nothing the
    second time: the logins come back with ``already_loaded`` set.
    """
    out = DemoLogins(logins())
    if is_loaded(session):
        out.already_loaded = True
        return out
    employees_csv, results_csv = demo_files()
    import_employees(session, "demo-employees.csv", data=employees_csv)
    import_results(session, "demo-results.csv", data=results_csv)
    for email, password, role in out:
        if session.scalar(select(User.id).where(func.lower(User.email) == email)) is None:
            create_user(session, email, password, role,
                        name="" if role == "sales_rep" else _display(email, role),
                        team=MANAGER_TEAM if role == "sales_manager" else None)
    session.flush()
    load_demo_rules(session)
    run_history(session)
    return out


def load_demo_rules(session: Session) -> list[str]:
    """Publish the demo-only policies (DEMO_RULES) with their scenarios, validated as any
    rule is; a key the database has already is left alone. Returns the keys published."""
    from engine.rulebook import read_yaml, save_rule
    from engine.specs import checked

    have = set(session.scalars(select(Rule.key).distinct()))
    out = []
    for text, feature in DEMO_RULES:
        doc = read_yaml(text, "demo rule")
        if doc["key"] in have:
            continue
        save_rule(session, doc, f"demo rule {doc['key']}", publish=True,
                  scenarios=checked(feature, f"{doc['key']}.feature"))
        out.append(doc["key"])
    return out


HISTORY_LOCKED = ("2026-01", "2026-02", "2026-03", "2026-Q1")
HISTORY_OPEN = ("2026-04",)


def run_history(session: Session) -> None:
    """Run the demo's first periods: Q1 locked by two analysts, April calculated."""
    from engine import lifecycle, runs

    for code in HISTORY_LOCKED + HISTORY_OPEN:
        run = runs.start_run(session, code, actor=f"analyst@{DOMAIN}").run
        if code in HISTORY_LOCKED:
            lifecycle.approve(session, run.id, f"analyst2@{DOMAIN}")
            lifecycle.lock(session, run.id, f"analyst2@{DOMAIN}",
                           open_flags_reason="demo history: flags reviewed after the lock")
    session.flush()


def _display(email: str, role: str) -> str:
    return f"Demo {role.replace('_', ' ')} ({email.split('@')[0]})"
