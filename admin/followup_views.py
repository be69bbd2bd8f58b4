"""PIPs and promotion candidates in the back office (category "People").

As with flags, the engine (engine/followup.py) decides what may happen; a view checks the
role first (READ/WRITE "pips" and "candidates" in engine/access.py), calls the engine and
commits, and shows a refusal next to the field it names, with what was typed kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import Admin, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from admin.auth import current_role
from admin.base import LaurelBaseView, _db, _team_scope, may_read, may_write
from admin.compliance_views import email, field_message, helpers, page_arg
from engine import followup, portal
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.messages import msg
from engine.models import (
    CANDIDATE_STATUSES,
    PIP_STATUSES,
    AuditLog,
    Candidate,
    Employee,
    Pip,
    Run,
    Team,
)

PAGE = 50
PIP_STATUS_NAMES: dict[str, Any] = {
    "proposed": _l("proposed"), "active": _l("active"), "discarded": _l("discarded"),
    "closed": _l("closed early"), "passed": _l("passed"), "extended": _l("extended"),
    "role_change": _l("change of role"), "exit": _l("exit"),
}
PIP_DECISION_NAMES: dict[str, Any] = {
    "passed": _l("Passed"), "extended": _l("Extended, with a new end"),
    "role_change": _l("Change of role"), "exit": _l("Exit"),
}
CANDIDATE_STATUS_NAMES: dict[str, Any] = {
    "eligible": _l("eligible"), "nominated": _l("nominated"), "accepted": _l("accepted"),
    "declined": _l("declined"),
}
BADGES = {"proposed": "secondary", "active": "info", "extended": "info", "closed": "dark",
          "passed": "success", "role_change": "warning", "exit": "danger",
          "discarded": "light", "eligible": "info", "nominated": "primary",
          "accepted": "success", "declined": "secondary"}
# What each role may move a candidate to, from each status (the engine checks it again).
CANDIDATE_MOVES = {
    "sales_manager": {"eligible": ("nominated",)},
    "hr_admin": {"eligible": ("nominated", "declined"), "nominated": ("accepted", "declined")},
}
OPEN_PIP = ("active", "extended")


def _helpers() -> dict[str, Any]:
    out = helpers()
    out.update(pip_status=lambda s: PIP_STATUS_NAMES.get(s, s) if s else "",
               candidate_status=lambda s: CANDIDATE_STATUS_NAMES.get(s, s) if s else "",
               badge=lambda s: BADGES.get(s or "", "light"))
    return out


def _date(value: str, field: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise LaurelError(msg("PIP, field %(field)s: %(reason)s", field=field, reason=msg(
            "%(value)s is not a date (YYYY-MM-DD)", value=value))) from None


def _teams() -> list[tuple[int, str]]:
    rows = _db().execute(select(Team.id, Team.name).order_by(Team.name)).all()
    team_id = _team_scope()
    return [(t, n) for t, n in rows if team_id is None or t == team_id]


class PipsView(LaurelBaseView):
    """PIP records: the list, each PIP's months against its target, HR's decisions."""

    resource = "pips"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **_helpers(), **kwargs)

    @expose("/")
    def index(self) -> Any:
        db = _db()
        status = request.args.get("status", "").strip()
        team = request.args.get("team", "").strip()
        stmt = (select(Pip).join(Employee, Employee.id == Pip.employee_id)
                .options(joinedload(Pip.employee).joinedload(Employee.team),
                         joinedload(Pip.run).defer(Run.figures).defer(Run.rules)
                         .joinedload(Run.period)))
        if status in PIP_STATUSES:
            stmt = stmt.where(Pip.status == status)
        else:
            stmt = stmt.where(Pip.status != "discarded")
        team_id = _team_scope()
        if team_id is not None:
            stmt = stmt.where(Employee.team_id == team_id)
        elif team.isdigit():
            stmt = stmt.where(Employee.team_id == int(team))
        rows = db.scalars(stmt.order_by(Pip.start.desc(), Pip.id.desc())).unique().all()
        page = page_arg()
        return self.render(
            "laurel/followup/pips.html", pips=rows[(page - 1) * PAGE:page * PAGE],
            total=len(rows), page=page, pages=max(1, (len(rows) + PAGE - 1) // PAGE),
            statuses=PIP_STATUSES, teams=_teams(), chosen_status=status, chosen_team=team,
            team_only=team_id is not None)

    def _pip(self, pip_id: int) -> Pip:
        pip = _db().get(Pip, pip_id)
        team_id = _team_scope()
        if pip is None or (team_id is not None and pip.employee.team_id != team_id):
            abort(404)
        return pip

    @expose("/<int:pip_id>/")
    def pip(self, pip_id: int) -> Any:
        return self._page(pip_id)

    def _page(self, pip_id: int, status: int = 200, typed: dict[str, str] | None = None,
              errors: dict[str, str] | None = None) -> Any:
        db = _db()
        pip = self._pip(pip_id)
        months = followup.progress(db, pip)
        target = followup.target_of(pip)
        chart = {
            "type": "bar", "percent": True,
            "labels": [m["month"] for m in months],
            # Floats only here, at the boundary to the chart library.
            "datasets": [
                {"label": str(_l("Attainment (%)")),
                 "data": [None if m["actual"] is None else round(float(m["actual"]) * 100, 1)
                          for m in months]},
                {"label": str(_l("Target")), "type": "line", "fill": False,
                 "colour": "rgba(220, 53, 69, 0.9)", "pointRadius": 0,
                 "data": [round(float(m["target"]) * 100, 1) for m in months]},
            ],
        } if months and months[0]["metric"] == "attainment" else None
        trail = db.scalars(select(AuditLog).where(AuditLog.entity == "pip",
                                                  AuditLog.entity_id == str(pip.id))
                           .order_by(AuditLog.id)).all()
        today = dt.date.today()
        return self.render(
            "laurel/followup/pip.html", pip=pip, months=months, target=target, chart=chart,
            checkins=portal.checkins(_db(), pip), can_see_talks=may_read("talks"),
            trail=trail, can_decide=may_write("pips") and pip.status in OPEN_PIP,
            decisions=PIP_DECISION_NAMES, typed=typed or {}, errors=errors or {},
            today=today.isoformat(),
            # closed early only before its end; from its last day on, it gets a decision
            can_close=today < pip.end,
            close_max=(pip.end - dt.timedelta(days=1)).isoformat()), status

    def _require_hr(self) -> None:
        if not may_write("pips"):
            abort(403)

    @expose("/<int:pip_id>/decide", methods=("POST",))
    def decide(self, pip_id: int) -> Any:
        self._require_hr()
        db = _db()
        self._pip(pip_id)
        typed = {k: request.form.get(k, "") for k in ("decision", "reason", "new_end")}
        try:
            new_end = _date(typed["new_end"], "new_end")
            pip = followup.decide_pip(db, pip_id, typed["decision"], typed["reason"], email(),
                                      new_end=new_end)
            decided = pip.status
            db.commit()
        except LaurelError as exc:
            db.rollback()
            field, message = field_message(exc)
            return self._page(pip_id, 400, typed,
                              {field if field in typed else "decide": message})
        flash(_("PIP %(id)s: %(status)s.", id=pip_id, status=PIP_STATUS_NAMES[decided]),
              "success")
        return redirect(url_for(".pip", pip_id=pip_id))

    @expose("/<int:pip_id>/close", methods=("POST",))
    def close(self, pip_id: int) -> Any:
        self._require_hr()
        db = _db()
        self._pip(pip_id)
        typed = {"close_reason": request.form.get("reason", ""),
                 "close_on": request.form.get("on", "")}
        try:
            on = _date(typed["close_on"], "on")
            followup.close_pip(db, pip_id, typed["close_reason"], email(), on=on)
            db.commit()
        except LaurelError as exc:
            db.rollback()
            field, message = field_message(exc)
            key = {"reason": "close_reason", "on": "close_on"}.get(field or "", "close")
            return self._page(pip_id, 400, typed, {key: message})
        flash(_("PIP %(id)s is closed early.", id=pip_id), "success")
        return redirect(url_for(".pip", pip_id=pip_id))


class CandidatesView(LaurelBaseView):
    """Candidates for the Reserve Supervisor Program: managers nominate, HR decides."""

    resource = "candidates"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **_helpers(), **kwargs)

    @expose("/")
    def index(self) -> Any:
        return self._list()

    def _list(self, status: int = 200, typed: dict[str, Any] | None = None,
              errors: dict[str, str] | None = None) -> Any:
        db = _db()
        chosen = request.args.get("status", "").strip()
        team = request.args.get("team", "").strip()
        team_id = _team_scope()
        rows = followup.candidates(db, team_id=team_id if team_id is not None else (
            int(team) if team.isdigit() else None))
        if team_id is not None and team_id < 0:
            rows = []
        if chosen in CANDIDATE_STATUSES:
            rows = [c for c in rows if c.status == chosen]
        ids = [c.id for c in rows]
        if ids:
            rows = db.scalars(select(Candidate).where(Candidate.id.in_(ids))
                              .options(joinedload(Candidate.employee).joinedload(Employee.team),
                                       joinedload(Candidate.run).defer(Run.figures)
                                       .defer(Run.rules).joinedload(Run.period))
                              .order_by(Candidate.id.desc())).unique().all()
        moves = CANDIDATE_MOVES.get(current_role() or "", {}) if may_write("candidates") else {}
        page = page_arg()
        return self.render(
            "laurel/followup/candidates.html", candidates=rows[(page - 1) * PAGE:page * PAGE],
            total=len(rows), page=page, pages=max(1, (len(rows) + PAGE - 1) // PAGE),
            statuses=CANDIDATE_STATUSES, teams=_teams(), chosen_status=chosen,
            chosen_team=team, team_only=team_id is not None, moves=moves,
            typed=typed or {}, errors=errors or {}), status

    @expose("/<int:candidate_id>/move", methods=("POST",))
    def move(self, candidate_id: int) -> Any:
        if not may_write("candidates"):
            abort(403)
        db = _db()
        cand = db.get(Candidate, candidate_id)
        team_id = _team_scope()
        if cand is None or (team_id is not None and cand.employee.team_id != team_id):
            abort(404)
        typed = {"id": candidate_id, "status": request.form.get("status", ""),
                 "reason": request.form.get("reason", "")}
        try:
            followup.move_candidate(db, candidate_id, typed["status"], typed["reason"],
                                    email())
            code = cand.employee.code
            db.commit()
        except NotFound:
            db.rollback()
            abort(404)
        except LaurelError as exc:
            db.rollback()
            field, message = field_message(exc)
            http = 403 if isinstance(exc, PermissionDenied) else 400
            return self._list(http, typed, {field if field == "reason" else "status": message})
        flash(_("%(code)s is %(status)s.", code=code,
                status=CANDIDATE_STATUS_NAMES[typed["status"]]), "success")
        return redirect(url_for(".index"))


def add_views(admin: Admin) -> None:
    """Add the PIP and promotion-candidate pages (category "People")."""
    people = _l("People")
    admin.add_view(PipsView(_l("PIPs"), people, endpoint="pips", url="/admin/pips"))
    admin.add_view(CandidatesView(_l("Promotion candidates"), people, endpoint="candidates",
                                  url="/admin/candidates"))
