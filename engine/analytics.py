"""Leadership analytics: the organisation across the periods of a year, not one at a time.

For the employees a filter keeps (team, region, level, team stage), month by month of the
year, each month in the team they belonged to then (dated assignments: a transfer moves
its figures from the month it takes effect; engine.assignments): revenue, quota and
attainment; the payout (payable amounts and adjustments of each period's latest live run,
the run that describes it) and the cost of sales (payout / revenue); the same per team
and per region; the funnel (lead -> opportunity -> won) per region over the year with the
warning line of the published funnel alert; the spread of output per head per team and
the top sellers; the year to date against the year before; each employee's attainment
against their payout. Figures come from the imported results (rolled up and derived as a
run reads them: engine.rollup, engine.metrics) and the stored outcomes; nothing is
stored. ``table`` gives each chart's rows for a CSV file.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import assignments
from engine.dashboard import _div, warning_line
from engine.messages import msg
from engine.metrics import load_catalog
from engine.models import LIVE_RUN, Adjustment, Employee, Level, Outcome, Period, Run, Team
from engine.rollup import period_figures

ZERO = Decimal(0)
TOP = 10


@dataclass(frozen=True)
class Scope:
    """Which employees count: all of these that are set."""

    team_id: int | None = None
    region: str | None = None
    level: str | None = None
    stage: str | None = None


def people(session: Session) -> dict[int, dict[str, Any]]:
    """Every employee as they stand today: {id: {code, name, team_id, level_id}}."""
    return {i: {"code": c, "name": n, "team_id": tid, "level_id": lid}
            for i, c, n, tid, lid in session.execute(
                select(Employee.id, Employee.code, Employee.name, Employee.team_id,
                       Employee.level_id))}


def placements(session: Session, codes: list[str], who: dict[int, dict[str, Any]],
               scope: Scope) -> dict[str, dict[int, dict[str, Any]]]:
    """Per period: the employees in scope then, each with the team they counted in.

    An employee counts in the team, region, stage and level in force on the last day they
    were employed in the period (as the period's run places them); one not employed on
    any day of it is in no team then. The scope applies period by period: an employee who
    moved to a team counts for it from their first period there, not before.
    """
    teams = {i: {"team": n, "region": r or "", "stage": st} for i, n, r, st in
             session.execute(select(Team.id, Team.name, Team.region, Team.stage))}
    levels = dict(session.execute(select(Level.id, Level.code)).all())
    days = assignments.presences_in(session, codes)
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for code in codes:
        placed = out[code] = {}
        for emp, p in who.items():
            presence = days[code].get(emp)
            if presence is None:
                team_id, level_id = p["team_id"], p["level_id"]
            elif presence.active_days == 0:
                continue
            else:
                team_id, level_id = presence.team_id, presence.level_id
            team = teams[team_id]
            if ((scope.team_id is not None and team_id != scope.team_id)
                    or (scope.region and team["region"] != scope.region)
                    or (scope.level and levels[level_id] != scope.level)
                    or (scope.stage and team["stage"] != scope.stage)):
                continue
            placed[emp] = team
    return out


def months_of(year: int) -> list[str]:
    return [f"{year}-{m:02d}" for m in range(1, 13)]


def payouts(session: Session, codes: list[str], ids: set[int]
            ) -> dict[str, dict[int, dict[str, Decimal]]]:
    """{period: {employee: {"payable", "held", "forfeited"}}} of each period's latest live
    run, every period that has one a key (its employees in scope, perhaps none);
    adjustments count as payable. A period without a live run is not a key: it has paid
    nothing yet, which is not paying 0."""
    latest = dict(session.execute(
        select(Period.code, func.max(Run.id)).join(Run, Run.period_id == Period.id)
        .where(Period.code.in_(codes), Run.status.in_(LIVE_RUN))
        .group_by(Period.code)).all())
    out: dict[str, dict[int, dict[str, Decimal]]] = {code: {} for code in latest}
    if not latest or not ids:
        return out
    period_of = {run_id: code for code, run_id in latest.items()}

    def add(run_id: int, emp: int, status: str, amount: Decimal) -> None:
        if emp not in ids:
            return
        sums = out[period_of[run_id]].setdefault(
            emp, {"payable": ZERO, "held": ZERO, "forfeited": ZERO})
        sums[status] = sums.get(status, ZERO) + Decimal(amount)

    for run_id, emp, status, amount in session.execute(
            select(Outcome.run_id, Outcome.employee_id, Outcome.status, func.sum(Outcome.amount))
            .where(Outcome.run_id.in_(list(period_of)), Outcome.amount.is_not(None))
            .group_by(Outcome.run_id, Outcome.employee_id, Outcome.status)):
        if status in ("payable", "held", "forfeited"):
            add(run_id, emp, status, amount)
    for run_id, emp, amount in session.execute(
            select(Adjustment.run_id, Adjustment.employee_id, func.sum(Adjustment.amount))
            .where(Adjustment.run_id.in_(list(period_of)))
            .group_by(Adjustment.run_id, Adjustment.employee_id)):
        add(run_id, emp, "payable", amount)
    return out


@dataclass
class Analytics:
    year: int
    scope: Scope
    months: list[dict[str, Any]] = field(default_factory=list)
    teams: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    regions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    funnel: list[dict[str, Any]] = field(default_factory=list)
    spread: list[dict[str, Any]] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)
    ytd: list[dict[str, Any]] = field(default_factory=list)
    employees: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    warning_line: Decimal = Decimal("0.30")


def _month_figures(session: Session, codes: list[str], ids: set[int]
                   ) -> dict[str, dict[int, dict[str, Any]]]:
    """Each month's derived figures of the employees in scope that have results then."""
    catalog = load_catalog(session)
    existing = set(session.scalars(select(Period.code).where(Period.code.in_(codes))))
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for code in codes:
        if code not in existing:
            out[code] = {}
            continue
        figures = period_figures(session, code)
        out[code] = {emp: catalog.derive(dict(values)) for emp, values in figures.items()
                     if emp in ids}
    return out


def _sum(rows: list[dict[str, Any]], key: str) -> Decimal:
    return sum((r[key] for r in rows if r.get(key) is not None), ZERO)


def _row(code: str, facts: dict[int, dict[str, Any]],
         pay: dict[int, dict[str, Decimal]] | None,
         members: set[int] | None = None) -> dict[str, Any]:
    """A period's figures; its payout, held amounts and cost of sales None where no live
    run has paid it (``pay`` None: the months ahead, shown as gaps, not as 0)."""
    rows = [f for emp, f in facts.items() if members is None or emp in members]
    revenue, quota = _sum(rows, "revenue_total"), _sum(rows, "quota")
    payout = held = None
    if pay is not None:
        paid = [p for emp, p in pay.items() if members is None or emp in members]
        payout = sum((p["payable"] for p in paid), ZERO)
        held = sum((p["held"] for p in paid), ZERO)
    return {"period": code, "headcount": len(rows), "revenue": revenue, "quota": quota,
            "attainment": _div(revenue, quota), "payout": payout, "held": held,
            "cost_of_sales": None if payout is None else _div(payout, revenue)}


def analytics(session: Session, year: int, scope: Scope = Scope()) -> Analytics:
    """Every figure of the leadership page for the year and the employees in scope, each
    month in the team they belonged to then (placements)."""
    out = Analytics(year, scope)
    out.warning_line, least = warning_line(session)
    who = people(session)
    months, last_year = months_of(year), months_of(year - 1)
    quarters = [f"{year}-Q{q}" for q in range(1, 5)]
    codes = months + last_year + quarters + [str(year)]
    placed = placements(session, codes, who, scope)
    ids = {emp for code in codes for emp in placed[code]}
    figures = _month_figures(session, months + last_year, ids)
    facts = {c: {e: f for e, f in figures[c].items() if e in placed[c]} for c in figures}
    paid = payouts(session, codes, ids)
    pay = {c: {e: p for e, p in paid[c].items() if e in placed[c]} if c in paid else None
           for c in codes}
    for code in months:
        out.months.append(_row(code, facts[code], pay[code]))
    # per team and per region, month by month: who was in it that month
    groups: dict[str, dict[str, dict[str, set[int]]]] = {"team": {}, "region": {}}
    for code in months:
        for emp, team in placed[code].items():
            for kind in groups:
                groups[kind].setdefault(team[kind], defaultdict(set))[code].add(emp)
    for name, members in sorted(groups["team"].items()):
        out.teams[name] = [_row(c, facts[c], pay[c], members[c]) for c in months]
    for name, members in sorted(groups["region"].items()):
        out.regions[name] = [_row(c, facts[c], pay[c], members[c]) for c in months]
    # the funnel per region over the year
    for region, members in sorted(groups["region"].items()):
        rows = [f for c in months for emp, f in facts[c].items() if emp in members[c]]
        leads, opps, won = (_sum(rows, k) for k in ("leads", "opportunities", "won_leads"))
        ratio = _div(opps, leads)
        out.funnel.append({"region": region, "leads": leads, "opportunities": opps,
                           "won_leads": won, "lead_to_opportunity": ratio,
                           "lead_conversion": _div(won, leads),
                           "below_line": ratio is not None and ratio < out.warning_line
                           and leads >= least})
    # output per head per team (each month's revenue to the team of that month), and the
    # top sellers, over the year to date
    revenue_of: dict[int, Decimal] = defaultdict(lambda: ZERO)
    quota_of: dict[int, Decimal] = defaultdict(lambda: ZERO)
    in_team: dict[str, dict[int, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    team_of: dict[int, str] = {}  # the team of the employee's latest month with results
    for code in months:
        for emp, f in facts[code].items():
            team = placed[code][emp]["team"]
            team_of[emp] = team
            revenue = f.get("revenue_total")
            in_team[team][emp] += ZERO if revenue is None else revenue
            if revenue is not None:
                revenue_of[emp] += revenue
            if f.get("quota") is not None:
                quota_of[emp] += f["quota"]
    for team, revenues in sorted(in_team.items()):
        values = sorted(revenues.values())
        total = sum(values, ZERO)
        out.spread.append({"team": team, "headcount": len(values), "revenue": total,
                           "per_head": _div(total, Decimal(len(values))),
                           "lowest": values[0], "median": _median(values),
                           "highest": values[-1],
                           "spread": _div(values[-1] - values[0], _median(values))})
    ranked = sorted(team_of, key=lambda e: (-revenue_of[e], who[e]["code"]))
    out.top = [{"code": who[e]["code"], "name": who[e]["name"], "team": team_of[e],
                "revenue": revenue_of[e], "attainment": _div(revenue_of[e], quota_of[e])}
               for e in ranked[:TOP]]
    # the year to date against the year before, month by month
    # (a sum stays None until a month has a figure to add: last year without results is
    # not a year of 0, nor a year without runs one that paid 0)
    cum: dict[str, Decimal | None] = dict.fromkeys(
        ("revenue", "payout", "last_revenue", "last_payout"))
    for this, now, last in zip(months, out.months, last_year, strict=True):
        before = _row(last, facts[last], pay[last])
        shown: dict[str, Decimal | None] = {}
        # a month without results or run (one ahead) adds nothing and is a gap, not the
        # sum so far again
        for key, value, present in (("revenue", now["revenue"], bool(facts[this])),
                                    ("payout", now["payout"], now["payout"] is not None),
                                    ("last_revenue", before["revenue"], bool(facts[last])),
                                    ("last_payout", before["payout"],
                                     before["payout"] is not None)):
            if present:
                cum[key] = (cum[key] or ZERO) + value
            shown[key] = cum[key] if present else None
        out.ytd.append({"month": this[5:], **shown,
                        "growth": None if shown["revenue"] is None or not shown["last_revenue"]
                        else _div(shown["revenue"] - shown["last_revenue"],
                                  shown["last_revenue"])})
    # each employee: attainment and every payout of the year in scope (months, quarters,
    # the year)
    year_codes = months + quarters + [str(year)]
    for emp in ranked:
        total = sum(((pay[c] or {}).get(emp, {}).get("payable", ZERO) for c in year_codes),
                    ZERO)
        out.employees.append({"code": who[emp]["code"], "name": who[emp]["name"],
                              "team": team_of[emp], "revenue": revenue_of[emp],
                              "attainment": _div(revenue_of[emp], quota_of[emp]),
                              "payout": total})
    revenue = sum((m["revenue"] for m in out.months), ZERO)
    payout = sum((e["payout"] for e in out.employees), ZERO)
    # the cost of sales of the months paid so far: the revenue of months no run has paid
    # yet is not set against a payout that does not hold them
    paid_revenue = sum((m["revenue"] for m in out.months if m["payout"] is not None), ZERO)
    out.totals = {"revenue": revenue, "quota": sum((m["quota"] for m in out.months), ZERO),
                  "payout": payout, "cost_of_sales": _div(payout, paid_revenue),
                  "headcount": len(team_of)}
    out.totals["attainment"] = _div(revenue, out.totals["quota"])
    return out


def _median(values: list[Decimal]) -> Decimal:
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


# --- each chart as a table (CSV) ---------------------------------------------------------------

CHARTS = ("payout", "teams", "regions", "funnel", "spread", "top", "ytd", "employees")


def table(a: Analytics, chart: str) -> tuple[list[str], list[list[Any]]]:
    """The rows behind one chart: (header, rows); amounts and ratios as exact decimals."""
    if chart == "payout":
        keys = ["period", "headcount", "revenue", "quota", "attainment", "payout", "held",
                "cost_of_sales"]
        return keys, [[m[k] for k in keys] for m in a.months]
    if chart in ("teams", "regions"):
        keys = ["period", "headcount", "revenue", "quota", "attainment", "payout",
                "cost_of_sales"]
        groups = a.teams if chart == "teams" else a.regions
        return [chart[:-1], *keys], [[name, *(m[k] for k in keys)]
                                     for name, rows in groups.items() for m in rows]
    if chart == "funnel":
        keys = ["region", "leads", "opportunities", "won_leads", "lead_to_opportunity",
                "lead_conversion", "below_line"]
        return keys + ["warning_line"], [[f[k] for k in keys] + [a.warning_line]
                                         for f in a.funnel]
    if chart == "spread":
        keys = ["team", "headcount", "revenue", "per_head", "lowest", "median", "highest",
                "spread"]
        return keys, [[s[k] for k in keys] for s in a.spread]
    if chart == "top":
        keys = ["code", "name", "team", "revenue", "attainment"]
        return keys, [[t[k] for k in keys] for t in a.top]
    if chart == "ytd":
        keys = ["month", "revenue", "last_revenue", "growth", "payout", "last_payout"]
        return keys, [[y[k] for k in keys] for y in a.ytd]
    if chart == "employees":
        keys = ["code", "name", "team", "revenue", "attainment", "payout"]
        return keys, [[e[k] for k in keys] for e in a.employees]
    from engine.errors import LaurelError

    raise LaurelError(msg("unknown chart %(chart)s: one of %(value)s", chart=repr(chart),
                          value=', '.join(CHARTS)))


def csv_bytes(a: Analytics, chart: str) -> bytes:
    """One chart's rows as CSV (UTF-8, a header of column keys)."""
    import csv
    import io

    from engine.cells import csv_row
    from engine.metrics import to_plain

    header, rows = table(a, chart)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:  # a yes-or-no column (below_line) as true or false, not Python's True
        writer.writerow(csv_row("" if v is None else str(v).lower() if isinstance(v, bool)
                                else str(to_plain(v)) if isinstance(v, Decimal) else v
                                for v in row))
    return buf.getvalue().encode("utf-8")


def years(session: Session) -> list[int]:
    """The years that have periods, newest first."""
    codes = session.scalars(select(Period.code).where(Period.kind == "year"))
    return sorted({int(c) for c in codes}, reverse=True)
