"""Enrichment: each employee's facts for a period, everything a condition reads.

Input metrics (rolled up for a quarter or year), derived metrics in exact decimals, team
figures, population figures, history (previous rating, overlapping PIPs), the level's
discount authority and the team's stage. The engine never aggregates across employees:
by the time a fact reaches it, every figure is a plain field.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import periods, pips
from engine.conditions import population_fields
from engine.exact import exact, quotient, total
from engine.metrics import load_catalog
from engine.models import LIVE_RUN, Employee, Level, Outcome, Period, Run, Team
from engine.rollup import period_figures


@dataclass
class EmployeeFacts:
    employee_id: int
    code: str
    name: str
    values: dict[str, Any]


def previous_ratings(session: Session, period: Period) -> dict[int, str]:
    """The rating of the previous period of the same kind, from its latest live run."""
    prev = periods.get(session, periods.previous(period.code))
    if prev is None:
        return {}
    run_id = session.scalar(
        select(Run.id).where(Run.period_id == prev.id, Run.status.in_(LIVE_RUN))
        .order_by(Run.id.desc()).limit(1))
    if run_id is None:
        return {}
    out: dict[int, str] = {}
    for emp, value in session.execute(
            select(Outcome.employee_id, Outcome.value)
            .where(Outcome.run_id == run_id, Outcome.kind == "rating")
            .order_by(Outcome.id)):
        out.setdefault(emp, value)
    return out




def build_facts(session: Session, period: Period, population_metrics: Iterable[str] = (),
                figures: dict[int, dict[str, Decimal]] | None = None) -> list[EmployeeFacts]:
    """Return the facts of every employee in the period's population, by employee code.

    ``figures`` are the period's input figures (rollup.period_figures) when the caller
    has loaded them already.
    """
    if figures is None:
        figures = period_figures(session, period.code)
    if not figures:
        return []
    catalog = load_catalog(session)
    rows = session.execute(
        select(Employee.id, Employee.code, Employee.name, Team.id, Team.name, Team.stage,
               Team.region, Level.code, Level.discount_authority)
        .join(Team, Team.id == Employee.team_id).join(Level, Level.id == Employee.level_id)
        .where(Employee.id.in_(list(figures)))
    ).all()
    ratings = previous_ratings(session, period)
    spans = pips.spans(session, exclude_period_id=period.id)
    facts: list[EmployeeFacts] = []
    by_team: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for emp_id, code, name, team_id, team, stage, region, level, authority in rows:
        values = catalog.derive(dict(figures[emp_id]))
        values.update(team=team, team_stage=stage, region=region, level=level,
                      level_authority=authority)
        values["previous_rating"] = ratings.get(emp_id)
        values["pips_overlapping"] = Decimal(sum(
            1 for start, end in spans.get(emp_id, ())
            if start <= period.end and end >= period.start))
        by_team[team_id].append(values)
        facts.append(EmployeeFacts(emp_id, code, name, values))
    for members in by_team.values():
        revenue = total(m["revenue_total"] for m in members
                        if m.get("revenue_total") is not None)
        quota = total(m["quota"] for m in members if m.get("quota") is not None)
        count = Decimal(len(members))
        for m in members:
            m.update(team_revenue=revenue, team_quota=quota, team_members=count,
                     team_attainment=quotient(revenue, quota),
                     per_capita_output=quotient(revenue, count))
    for metric in population_metrics:
        # ranked by exact value: two attainments that agree to 34 digits still differ
        ranked = sorted((f.values[metric] for f in facts if f.values.get(metric) is not None),
                        key=exact)
        keys = [exact(v) for v in ranked]
        n = len(ranked)
        higher_f, n_f, share_f = population_fields(metric)
        for f in facts:
            value = f.values.get(metric)
            if value is None:
                continue
            higher = n - bisect_right(keys, exact(value))
            f.values[higher_f] = Decimal(higher)
            f.values[n_f] = Decimal(n)
            f.values[share_f] = quotient(Decimal(higher), Decimal(n))
            f.values[f"{metric}__max"] = ranked[-1]
    facts.sort(key=lambda f: f.code)
    return facts
