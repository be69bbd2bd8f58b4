"""The manager dashboard: its figures equal the results they are drawn from; its pages."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal, localcontext

import pytest
from flask import Flask
from sqlalchemy import select

from engine import compliance, dashboard, db, runs
from engine.models import STAFF_ROLES as ROLES
from engine.models import Employee, FlagCase, Team, User
from engine.users import create_user

try:  # tests/ may or may not be a package
    from tests import test_admin_support as support
    from tests.test_runs import load, organisation
except ImportError:
    import test_admin_support as support  # type: ignore[no-redef]
    from test_runs import load, organisation  # type: ignore[no-redef]

login = support.login
text_of = support.text_of
pytest_plugins = [support.__name__]


def imported(seed: int = 7) -> tuple[dict[str, tuple[str, str]], list[dict[str, str]]]:
    """The CSV the test loads: each employee's (team, region), and the result rows."""
    emps, results = organisation(seed)
    people = {r["code"]: (r["team"], r["region"]) for r in csv.DictReader(io.StringIO(emps))}
    return people, list(csv.DictReader(io.StringIO(results)))


def summed(rows: list[dict[str, str]], months: set[str], codes: set[str], metric: str
           ) -> Decimal:
    return sum((Decimal(r[metric]) for r in rows if r["period"] in months
                and r["employee_code"] in codes and r[metric] != ""), Decimal(0))


def ratio(a: Decimal, b: Decimal) -> Decimal:
    """a / b with the engine's precision for derived figures (34 digits)."""
    with localcontext() as ctx:
        ctx.prec = 34
        return a / b


def test_team_funnel_and_attainment_equal_the_imported_results(session) -> None:
    load(session)
    people, rows = imported()
    north = {c for c, (team, _r) in people.items() if team == "North"}
    team_id = session.scalar(select(Team.id).where(Team.name == "North"))
    for code, months in (("2026-01", {"2026-01"}),
                         ("2026-Q1", {"2026-01", "2026-02", "2026-03"})):
        fig = dashboard.team_figures(session, team_id, code)
        leads = summed(rows, months, north, "leads")
        opportunities = summed(rows, months, north, "opportunities")
        assert fig.funnel.leads == leads and leads > 0
        assert fig.funnel.opportunities == opportunities
        assert fig.funnel.won_leads == summed(rows, months, north, "won_leads")
        assert fig.funnel.lead_to_opportunity == ratio(opportunities, leads)
        assert fig.funnel.below_line == (opportunities / leads < Decimal("0.30"))
        assert {m["code"] for m in fig.members} == north
        for m in fig.members:
            quota = summed(rows, months, {m["code"]}, "quota")
            revenue = summed(rows, months, {m["code"]}, "revenue_new") + summed(
                rows, months, {m["code"]}, "revenue_existing")
            assert m["attainment"] == ratio(revenue, quota)
        assert fig.revenue == sum(summed(rows, months, north, k)
                                  for k in ("revenue_new", "revenue_existing"))
        assert fig.quota == summed(rows, months, north, "quota")


def test_ratings_alerts_and_flags_equal_the_run_outcomes(session) -> None:
    load(session)
    month = runs.start_run(session, "2026-01").run
    quarter = runs.start_run(session, "2026-Q1").run
    session.commit()
    team_id = session.scalar(select(Team.id).where(Team.name == "East"))
    east = set(session.scalars(select(Employee.id).where(Employee.team_id == team_id)))
    ratings = Counter(o.value for o in quarter.outcomes
                      if o.kind == "rating" and o.employee_id in east)
    for code in ("2026-01", "2026-Q1"):  # a month shows its quarter's ratings
        fig = dashboard.team_figures(session, team_id, code)
        assert {k: v for k, v in fig.ratings.items() if v} == dict(ratings)
        assert fig.rating_run["id"] == quarter.id
    fig = dashboard.team_figures(session, team_id, "2026-01")
    alerts = sorted(o.employee.code for o in month.outcomes
                    if o.kind == "alert" and o.employee_id in east)
    assert sorted(a["code"] for a in fig.alerts) == alerts and alerts
    flags = {c.id for c in session.scalars(select(FlagCase).where(
        FlagCase.run_id == month.id, FlagCase.employee_id.in_(east)))}
    assert {f["id"] for f in fig.flags} == flags and flags
    # a decided flag is no longer open
    create_user(session, "co@x.com", "password-123", "compliance_officer")
    first = min(flags)
    compliance.assign(session, [first], "co@x.com", "co@x.com")
    compliance.decide(session, first, "dismissed", "fine", "co@x.com")
    session.commit()
    assert {f["id"] for f in dashboard.team_figures(session, team_id, "2026-01").flags} \
        == flags - {first}


def test_company_view_by_region_adds_up(session) -> None:
    load(session)
    people, rows = imported()
    fig = dashboard.company_figures(session, "2026-02")
    # A region is the team's (the employees file names it on every row; the team keeps one).
    region_of = dict(session.execute(select(Team.name, Team.region)).all())
    by_region: dict[str, set[str]] = defaultdict(set)
    for code, (team, _region) in people.items():
        by_region[region_of[team]].add(code)
    assert [r.name for r in fig["regions"]] == sorted(by_region)
    for region in fig["regions"]:
        codes = by_region[region.name]
        assert region.funnel.leads == summed(rows, {"2026-02"}, codes, "leads")
        assert region.funnel.won_leads == summed(rows, {"2026-02"}, codes, "won_leads")
        assert region.quota == summed(rows, {"2026-02"}, codes, "quota")
    assert fig["total"].funnel.leads == summed(rows, {"2026-02"}, set(people), "leads")
    assert fig["warning_line"] == Decimal("0.30")


# --- the pages ----------------------------------------------------------------------------


@pytest.fixture()
def app(db_url: str) -> Iterator[Flask]:
    with db.session_scope(db_url, actor="tester@example.com") as s:
        load(s)
        runs.start_run(s, "2026-01")
        runs.start_run(s, "2026-Q1")
        north = s.scalar(select(Team.id).where(Team.name == "North"))
        for role, email in support.ROLE_EMAILS.items():
            s.add(User(email=email, name=email.split("@")[0], role=role, active=True,
                       password_hash=support.FAST_HASH,
                       team_id=north if role == "sales_manager" else None))
    yield support.web_app(support.CONFIG)


def test_every_role_sees_the_dashboard_in_both_languages(app, db_url) -> None:
    with db.make_sessionmaker(db_url)() as s:
        teams = dict(s.execute(select(Team.name, Team.id)).all())
    for role in ROLES:
        client = app.test_client()
        login(client, role)
        for lang, word in (("en", "Funnel: leads, opportunities, won"),
                           ("zh", "漏斗：线索、商机、成交")):
            page = client.get(f"/admin/team-dashboard/?team={teams['East']}&period=2026-01"
                              f"&lang={lang}")
            assert page.status_code == 200, (role, lang)
            html = page.get_data(as_text=True)
            assert word in text_of(page)
            assert "vendor/chartjs/chart.umd.min.js" in html and "chart-data-funnel" in html
            # a sales manager lands on their own team whatever the address asks for
            team = "North" if role == "sales_manager" else "East"
            assert f"{team} · 2026-01" in text_of(page).replace("&middot;", "·")
            company = client.get(f"/admin/team-dashboard/company?period=2026-Q1&lang={lang}")
            assert company.status_code == (403 if role == "sales_manager" else 200), role


def test_the_pages_show_the_engine_figures(app, db_url) -> None:
    client = app.test_client()
    login(client, "sales_manager")
    # Its own session, closed: an open transaction would block PostgreSQL's next reset.
    with db.make_sessionmaker(db_url)() as s:
        north = s.scalar(select(Team.id).where(Team.name == "North"))
        fig = dashboard.team_figures(s, north, "2026-Q1")
        total = dashboard.company_figures(s, "2026-01")["total"]
    text = text_of(client.get("/admin/team-dashboard/?period=2026-Q1"))
    f = fig.funnel
    assert f"Leads {f.leads:,.0f} Opportunities {f.opportunities:,.0f} Won " \
           f"{f.won_leads:,.0f}" in text
    assert "warning line" in text
    for grade, n in fig.ratings.items():
        assert f"{grade} {n}" in text
    login(client, "auditor")
    company = text_of(client.get("/admin/team-dashboard/company?period=2026-01"))
    assert f"Company {total.funnel.leads:,.0f} {total.funnel.opportunities:,.0f}" in company


def test_the_dashboard_of_an_empty_organisation_says_so(db_url: str) -> None:
    with db.session_scope(db_url) as s:
        s.add(User(email="hr@example.com", name="hr", role="hr_admin", active=True,
                   password_hash=support.FAST_HASH))
    client = support.web_app(support.CONFIG).test_client()
    login(client, "hr_admin")
    for path in ("/admin/team-dashboard/", "/admin/team-dashboard/company"):
        page = client.get(path)
        assert page.status_code == 200 and "No figures yet" in text_of(page)
    assert client.get("/admin/team-dashboard/?team=99").status_code == 404


def test_the_alerts_and_open_flags_name_their_rules_in_the_readers_language(app,
                                                                          db_url) -> None:
    """A team's alerts and open flags read a rule's name in the page's language, the key
    beside it in small (they showed the key alone)."""
    with db.make_sessionmaker(db_url)() as s:
        teams = dict(s.execute(select(Team.name, Team.id)).all())
        figures = {n: dashboard.team_figures(s, t, "2026-01") for n, t in teams.items()}
        team, fig = next((n, f) for n, f in figures.items() if f.alerts and f.flags)
        keys = {x["rule_key"] for x in [*fig.alerts, *fig.flags]}
        stored = {lang: support.rule_names_stored(s, keys, lang) for lang in ("en", "zh")}
    client = app.test_client()
    login(client, "auditor")
    for lang, names in stored.items():
        html = client.get(f"/admin/team-dashboard/?team={teams[team]}&period=2026-01"
                          f"&lang={lang}").get_data(as_text=True)
        for table, listed in (('id="alerts"', fig.alerts), ('id="open-flags"', fig.flags)):
            part = html[html.index(table):html.index("</table>", html.index(table))]
            shown = support.read_as_shown(part)
            for key in {x["rule_key"] for x in listed}:
                assert names[key] in shown and key not in shown, (lang, table, key)
                assert f"<code>{key}</code>" in part, (lang, table, key)
