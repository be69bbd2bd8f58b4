"""The manager dashboard: a team's period, and the company by region (figures: engine.dashboard).

A sales manager lands on their own team and sees nothing else; others choose a team and
a period, or look at the company by region.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import abort, request
from flask_admin import Admin, expose
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from admin import i18n
from admin.base import LaurelBaseView, _db, _team_scope, may_read
from admin.compliance_views import helpers
from engine import dashboard
from engine.errors import LaurelError
from engine.models import Team


def _pct(value: Decimal | None) -> float | None:
    # Floats only here, at the boundary to the chart library.
    return None if value is None else round(float(value) * 100, 1)


def funnel_chart(fig: dashboard.Figures) -> dict[str, Any]:
    f = fig.funnel
    line = float(f.leads * f.warning_line)
    return {"type": "bar", "perBar": True,
            "labels": [str(_l("Leads")), str(_l("Opportunities")), str(_l("Won"))],
            "datasets": [
                {"label": str(_l("Count")), "data": [float(f.leads), float(f.opportunities),
                                                     float(f.won_leads)]},
                {"label": str(_l("Warning line (%(p)s of leads)",
                                 p=f"{_pct(f.warning_line):g}%")),
                 "type": "line", "data": [line, line, line], "pointRadius": 0,
                 "colour": "rgba(220, 53, 69, 0.9)", "borderDash": [6, 4], "fill": False}]}


def ratings_chart(fig: dashboard.Figures) -> dict[str, Any]:
    return {"type": "bar", "perBar": True, "labels": list(fig.ratings),
            "datasets": [{"label": str(_l("Employees")), "data": list(fig.ratings.values())}]}


class TeamDashboardView(LaurelBaseView):
    resource = "dashboard"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **helpers(), **kwargs)

    def _period(self, codes: list[str]) -> str:
        chosen = request.args.get("period", "").strip()
        return chosen if chosen in codes else (codes[0] if codes else "")

    @expose("/")
    def index(self) -> Any:
        db = _db()
        team_id = _team_scope()
        teams = db.execute(select(Team.id, Team.name).order_by(Team.name)).all()
        if team_id is not None:
            teams = [t for t in teams if t[0] == team_id]
            chosen = team_id
        else:
            arg = request.args.get("team", "")
            chosen = int(arg) if arg.isdigit() else (teams[0][0] if teams else None)
            if chosen is not None and chosen not in {t for t, _n in teams}:
                abort(404)
        codes = dashboard.period_codes(db)
        period = self._period(codes)
        fig = error = None
        if chosen is not None and period:
            try:
                fig = dashboard.team_figures(db, chosen, period)
            except LaurelError as exc:
                error = i18n.say(exc)
        charts = rule_names = None
        if fig is not None:
            # the alerts' and flags' rules by their names, as the runs that raised them used
            listed = [*fig.alerts, *fig.flags]
            rule_names = i18n.rule_names(db, {x["rule_key"] for x in listed},
                                         run_ids={x["run_id"] for x in listed})
            charts = {
                "funnel": funnel_chart(fig),
                "attainment": {
                    "type": "bar", "percent": True,
                    "labels": [m["code"] for m in fig.members],
                    "datasets": [
                        {"label": str(_l("Attainment (%)")),
                         "data": [_pct(m["attainment"]) for m in fig.members]},
                        {"label": "100%", "type": "line", "pointRadius": 0, "fill": False,
                         "colour": "rgba(40, 167, 69, 0.9)", "borderDash": [6, 4],
                         "data": [100 for _m in fig.members]}]},
                "ratings": ratings_chart(fig),
            }
        return self.render("laurel/dashboard/team.html", fig=fig, charts=charts, teams=teams,
                           chosen_team=chosen, periods=codes, period=period, error=error,
                           team_only=team_id is not None, rule_names=rule_names,
                           may_see_flags=may_read("compliance"))

    @expose("/company")
    def company(self) -> Any:
        if _team_scope() is not None:
            abort(403)  # a sales manager sees their own team only
        db = _db()
        codes = dashboard.period_codes(db)
        period = self._period(codes)
        data = dashboard.company_figures(db, period) if period else None
        charts = None
        if data:
            regions = data["regions"]
            names = [r.name or str(_l("(no region)")) for r in regions]
            line = _pct(data["warning_line"])
            charts = {
                "conversion": {
                    "type": "bar", "percent": True, "labels": names,
                    "datasets": [
                        {"label": str(_l("Leads to opportunities (%)")),
                         "data": [_pct(r.funnel.lead_to_opportunity) for r in regions]},
                        {"label": str(_l("Warning line")), "type": "line", "pointRadius": 0,
                         "colour": "rgba(220, 53, 69, 0.9)", "borderDash": [6, 4],
                         "fill": False, "data": [line for _r in regions]}]},
                "attainment": {
                    "type": "bar", "percent": True, "labels": names,
                    "datasets": [{"label": str(_l("Attainment (%)")),
                                  "data": [_pct(r.attainment) for r in regions]}]},
                "ratings": {
                    "type": "bar", "labels": names,
                    "datasets": [{"label": grade, "data": [r.ratings.get(grade, 0)
                                                           for r in regions]}
                                 for grade in dashboard.RATINGS]},
                "funnel": funnel_chart(data["total"]),
            }
        return self.render("laurel/dashboard/company.html", data=data, charts=charts,
                           periods=codes, period=period)


def add_views(admin: Admin) -> None:
    """Add the team dashboard (category "People")."""
    admin.add_view(TeamDashboardView(_l("Team dashboard"), _l("People"), endpoint="teamdash",
                                     url="/admin/team-dashboard"))
