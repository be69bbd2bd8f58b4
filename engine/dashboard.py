"""The figures of the manager dashboard: a team's period, and the company by region.

Every figure is drawn from what the engine already holds: the period's facts
(engine.facts.build_facts: imported results rolled up and derived), the outcomes of the
period's latest live run (ratings, alerts) and the flag cases of live runs. Nothing here is
stored; a caller draws the figures as charts or tables.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import periods
from engine.facts import EmployeeFacts, build_facts
from engine.messages import msg
from engine.models import LIVE_RUN, Employee, FlagCase, Outcome, Period, Run, Team

# The shipped funnel warning line (alert.funnel): used when no published rule says otherwise.
WARNING_LINE = Decimal("0.30")
WARNING_MIN_LEADS = Decimal("20")
RATINGS = ("A", "B", "C", "D")
OPEN_FLAGS = ("open", "in_review")


@dataclass
class Funnel:
    """Leads -> opportunities -> won, summed over employees where each is defined."""

    leads: Decimal = Decimal(0)
    opportunities: Decimal = Decimal(0)
    won_leads: Decimal = Decimal(0)
    warning_line: Decimal = WARNING_LINE

    @property
    def lead_to_opportunity(self) -> Decimal | None:
        return _div(self.opportunities, self.leads)

    @property
    def lead_conversion(self) -> Decimal | None:
        return _div(self.won_leads, self.leads)

    @property
    def below_line(self) -> bool:
        ratio = self.lead_to_opportunity
        return ratio is not None and ratio < self.warning_line

    def add(self, values: dict[str, Any]) -> None:
        for key in ("leads", "opportunities", "won_leads"):
            if values.get(key) is not None:
                setattr(self, key, getattr(self, key) + values[key])


@dataclass
class Figures:
    """One team's (or region's, or the company's) figures for a period."""

    period: str
    name: str
    funnel: Funnel
    members: list[dict[str, Any]] = field(default_factory=list)
    revenue: Decimal = Decimal(0)
    quota: Decimal = Decimal(0)
    ratings: dict[str, int] = field(default_factory=dict)
    rating_run: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)

    @property
    def attainment(self) -> Decimal | None:
        return _div(self.revenue, self.quota)


def _div(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None or b == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 34
        return +(a / b)


def warning_line(session: Session) -> tuple[Decimal, Decimal]:
    """The funnel warning line and its minimum of leads, from the published alert.funnel."""
    from engine.rulebook import published_rules

    line, least = WARNING_LINE, WARNING_MIN_LEADS
    for rule in published_rules(session, "month"):
        if rule.key != "alert.funnel":
            continue
        for cond in (rule.definition or {}).get("when") or []:
            if not isinstance(cond, dict) or cond.get("value") is None:
                continue
            if cond.get("fact") == "lead_to_opportunity" and cond.get("op") in ("<", "<="):
                line = Decimal(str(cond["value"]))
            elif cond.get("fact") == "leads" and cond.get("op") in (">=", ">"):
                least = Decimal(str(cond["value"]))
    return line, least


def latest_live_run(session: Session, period: Period) -> Run | None:
    """The period's latest run that is calculated, approved or locked."""
    return session.scalar(select(Run).where(Run.period_id == period.id,
                                            Run.status.in_(LIVE_RUN))
                          .order_by(Run.id.desc()).limit(1))


def rating_run(session: Session, period: Period) -> Run | None:
    """The run whose ratings describe the period: its own, else its quarter's (a month).

    A month has no rating of its own (ratings are quarterly or annual): it shows the
    rating of the quarter it belongs to, from that quarter's latest live run.
    """
    codes = [period.code]
    if period.kind == "month":
        codes += periods.parents(period.code)[:1]
    for code in codes:
        per = period if code == period.code else periods.get(session, code)
        if per is None:
            continue
        run = latest_live_run(session, per)
        if run is not None and session.scalar(select(Outcome.id).where(
                Outcome.run_id == run.id, Outcome.kind == "rating").limit(1)) is not None:
            return run
    return None


def _member(ef: EmployeeFacts) -> dict[str, Any]:
    v = ef.values
    return {"employee_id": ef.employee_id, "code": ef.code, "name": ef.name,
            "team": v.get("team"), "region": v.get("region"),
            "revenue_total": v.get("revenue_total"), "quota": v.get("quota"),
            "attainment": v.get("attainment"), "leads": v.get("leads"),
            "opportunities": v.get("opportunities"), "won_leads": v.get("won_leads"),
            "lead_to_opportunity": v.get("lead_to_opportunity")}


def _ratings(session: Session, run: Run | None, employee_ids: set[int]) -> dict[str, int]:
    counts: Counter[str] = Counter({r: 0 for r in RATINGS})
    if run is None:
        return dict(counts)
    seen: set[int] = set()
    for emp, value in session.execute(
            select(Outcome.employee_id, Outcome.value)
            .where(Outcome.run_id == run.id, Outcome.kind == "rating").order_by(Outcome.id)):
        if emp in employee_ids and emp not in seen and value:
            seen.add(emp)
            counts[value] += 1
    return dict(counts)


def _alerts(session: Session, run: Run | None, employee_ids: set[int]) -> list[dict[str, Any]]:
    if run is None or not employee_ids:
        return []
    rows = session.execute(
        select(Outcome, Employee.code, Employee.name)
        .join(Employee, Employee.id == Outcome.employee_id)
        .where(Outcome.run_id == run.id, Outcome.kind == "alert")
        .order_by(Employee.code, Outcome.rule_key)).all()
    # the ids filter here, not in the query: one bound parameter an employee breaks
    # PostgreSQL past 65,535 employees (the company's figures take them all)
    return [{"run_id": run.id, "code": code, "name": name, "rule_key": o.rule_key,
             "value": o.value, "explanation": o.explanation or {}} for o, code, name in rows
            if o.employee_id in employee_ids]


def _flags(session: Session, period: Period, employee_ids: set[int]) -> list[dict[str, Any]]:
    if not employee_ids:
        return []
    rows = session.execute(
        select(FlagCase, Employee.code, Employee.name)
        .join(Run, Run.id == FlagCase.run_id)
        .join(Employee, Employee.id == FlagCase.employee_id)
        .where(Run.period_id == period.id, Run.status.in_(LIVE_RUN),
               FlagCase.status.in_(OPEN_FLAGS))
        .order_by(FlagCase.id.desc())).all()
    return [{"id": c.id, "run_id": c.run_id, "code": code, "name": name,
             "rule_key": c.rule_key, "severity": c.severity, "status": c.status,
             "assignee": c.assignee, "holds": c.holds} for c, code, name in rows
            if c.employee_id in employee_ids]


def _figures(session: Session, period: Period, name: str, facts: list[EmployeeFacts],
             line: Decimal, with_lists: bool = True) -> Figures:
    funnel = Funnel(warning_line=line)
    fig = Figures(period.code, name, funnel)
    for ef in facts:
        funnel.add(ef.values)
        if ef.values.get("revenue_total") is not None:
            fig.revenue += ef.values["revenue_total"]
        if ef.values.get("quota") is not None:
            fig.quota += ef.values["quota"]
        fig.members.append(_member(ef))
    ids = {ef.employee_id for ef in facts}
    rated = rating_run(session, period)
    fig.ratings = _ratings(session, rated, ids)
    if rated is not None:
        fig.rating_run = {"id": rated.id, "period": rated.period.code, "status": rated.status}
    live = latest_live_run(session, period)
    fig.alerts = _alerts(session, live, ids)
    fig.flags = _flags(session, period, ids)
    if not with_lists:
        fig.members = []
    return fig


def team_figures(session: Session, team_id: int, period_code: str) -> Figures:
    """A team's funnel, each member's attainment, ratings, alerts and open flags.

    The members are the team's employees with figures for the period (its population).
    """
    period = periods.require(session, period_code)
    team = session.get(Team, team_id)
    if team is None:
        from engine.errors import NotFound

        raise NotFound(msg("team %(team_id)s does not exist", team_id=team_id))
    line, _least = warning_line(session)
    facts = [ef for ef in build_facts(session, period)
             if ef.values.get("team") == team.name]
    return _figures(session, period, team.name, facts, line)


def company_figures(session: Session, period_code: str) -> dict[str, Any]:
    """The same figures by region, and for the whole company."""
    period = periods.require(session, period_code)
    line, _least = warning_line(session)
    facts = build_facts(session, period)
    by_region: dict[str, list[EmployeeFacts]] = {}
    for ef in facts:
        by_region.setdefault(ef.values.get("region") or "", []).append(ef)
    regions = [_figures(session, period, region, members, line, with_lists=False)
               for region, members in sorted(by_region.items())]
    total = _figures(session, period, "", facts, line, with_lists=False)
    return {"period": period.code, "regions": regions, "total": total,
            "warning_line": line}


def period_codes(session: Session) -> list[str]:
    """The periods that have figures or runs, newest first (months before their quarter)."""
    return list(session.scalars(select(Period.code).order_by(Period.start.desc(),
                                                             Period.end)))
