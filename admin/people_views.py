"""The people being paid, seen by the staff: inquiries, review cycles, one-to-ones and
the leadership analytics (category "People").

Thin, as the other pages: engine/inquiries.py, reviews.py, talks.py and analytics.py
decide; a view checks the role (READ/WRITE in engine/access.py; a sales manager sees their
own team), calls the engine, commits, and shows a refusal next to the field it names.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_admin import Admin, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from admin import i18n
from admin.auth import current_role
from admin.base import (
    LaurelBaseView,
    _db,
    _team_scope,
    attachment,
    field_error,
    may_write,
    uploads,
)
from admin.portal_views import me, refused, words
from engine import analytics, inquiries, plain, reviews, talks
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.messages import msg
from engine.models import (
    INQUIRY_STATUSES,
    OPEN_INQUIRY_STATUSES,
    TEAM_STAGES,
    Employee,
    InquiryMessage,
    Level,
    ReviewCycle,
    Team,
    User,
)

PAGE = 50


def _date(text: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat((text or "").strip())
    except ValueError:
        raise LaurelError(msg("field %(field)s: %(reason)s", field=field,
                              reason=msg("give a date (YYYY-MM-DD)"))) from None


class InquiriesView(LaurelBaseView):
    """The analysts' queue of salespeople's questions."""

    resource = "inquiries"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **words(), **kwargs)

    def _writer(self) -> None:
        if not may_write("inquiries"):
            abort(403)

    @expose("/")
    def index(self) -> Any:
        db = _db()
        status = request.args.get("status", "active")
        assignee = request.args.get("assignee", "").strip()
        found = inquiries.queue(db, status if status in (*INQUIRY_STATUSES, "active") else None,
                                me() if assignee == "me" else assignee or None)
        analysts = list(db.scalars(select(User.email).where(
            User.role.in_(inquiries.ANALYSTS), User.active).order_by(User.email)))
        named = [q for q in found[:PAGE] if q.rule_key]
        return self.render("laurel/people/inquiries.html", found=found[:PAGE],
                           rule_names=i18n.rule_names(db, {q.rule_key for q in named},
                                                      run_ids={q.run_id for q in named}),
                           total=len(found), status=status, assignee=assignee,
                           statuses=INQUIRY_STATUSES, analysts=analysts,
                           can_answer=may_write("inquiries"))

    @expose("/<int:inquiry_id>/")
    def inquiry(self, inquiry_id: int, status: int = 200, typed: dict[str, str] | None = None,
                errors: dict[str, str] | None = None) -> Any:
        db = _db()
        try:
            q = inquiries.get(db, inquiry_id, me())
        except (NotFound, PermissionDenied):
            abort(404)
        v = plain.voice(db, "zh" if i18n.is_chinese() else "en")
        name = plain.rule_name(q.rule_key, plain.definitions(db, q.run.rules), v) \
            if q.rule_key and q.rule_key != "adjustment" else ""
        analysts = list(db.scalars(select(User.email).where(
            User.role.in_(inquiries.ANALYSTS), User.active).order_by(User.email)))
        # an amount the engine would refuse is not offered: its field is disabled, the
        # reason beside it
        refusal = inquiries.adjustment_refusal(db, q) if q.status in OPEN_INQUIRY_STATUSES \
            else None
        return self.render("laurel/people/inquiry.html", q=q, line_name=name,
                           analysts=analysts, typed=typed or {}, errors=errors or {},
                           can_answer=may_write("inquiries"),
                           no_amount=field_error(refusal)[1] if refusal else None), status

    def _act(self, inquiry_id: int, fn: Any, keys: tuple[str, ...], done: str) -> Any:
        self._writer()
        db = _db()
        typed = {k: request.form.get(k, "") for k in keys}
        try:
            fn(db, typed)
            db.commit()
        except NotFound:
            db.rollback()
            abort(404)
        except LaurelError as exc:
            db.rollback()
            # the engine's words: the portal's (refused) are the salesperson's
            field, message = field_error(exc)
            return self.inquiry(inquiry_id, 400, typed,
                                {field if field in typed else keys[0]: message})
        flash(done, "success")
        return redirect(url_for(".inquiry", inquiry_id=inquiry_id))

    @expose("/<int:inquiry_id>/assign", methods=("POST",))
    def assign(self, inquiry_id: int) -> Any:
        return self._act(inquiry_id, lambda db, t: inquiries.assign(
            db, [inquiry_id], t["assignee"], me()), ("assignee",),
            _("Inquiry %(id)s assigned.", id=inquiry_id))

    @expose("/<int:inquiry_id>/reply", methods=("POST",))
    def reply(self, inquiry_id: int) -> Any:
        return self._act(inquiry_id, lambda db, t: inquiries.add_message(
            db, inquiry_id, me(), t["text"], uploads()), ("text",), _("Reply sent."))

    @expose("/<int:inquiry_id>/resolve", methods=("POST",))
    def resolve(self, inquiry_id: int) -> Any:
        return self._act(inquiry_id, lambda db, t: inquiries.resolve(
            db, inquiry_id, me(), t["answer"], t["amount"]), ("answer", "amount"),
            _("Inquiry %(id)s is resolved.", id=inquiry_id))

    @expose("/<int:inquiry_id>/reject", methods=("POST",))
    def reject(self, inquiry_id: int) -> Any:
        return self._act(inquiry_id, lambda db, t: inquiries.reject(
            db, inquiry_id, me(), t["reason"]), ("reason",),
            _("Inquiry %(id)s is rejected.", id=inquiry_id))

    @expose("/<int:inquiry_id>/file/<int:message_id>")
    def inquiry_file(self, inquiry_id: int, message_id: int) -> Any:
        try:
            inquiries.get(_db(), inquiry_id, me())
        except (NotFound, PermissionDenied):
            abort(404)
        msg = _db().get(InquiryMessage, message_id)
        if msg is None or msg.inquiry_id != inquiry_id or msg.content is None:
            abort(404)
        return attachment(msg.content, msg.filename, msg.content_type, f"file-{msg.id}")


class ReviewsView(LaurelBaseView):
    """Review cycles: HR opens and closes them, managers assess their team."""

    resource = "reviews"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **words(), **kwargs)

    def _cycle(self, cycle_id: int) -> ReviewCycle:
        cycle = _db().get(ReviewCycle, cycle_id)
        if cycle is None:
            abort(404)
        return cycle

    @expose("/")
    def index(self, status: int = 200, typed: dict[str, str] | None = None,
              errors: dict[str, str] | None = None) -> Any:
        db = _db()
        cycles = list(db.scalars(select(ReviewCycle).order_by(ReviewCycle.id.desc())))
        return self.render("laurel/people/reviews.html", cycles=cycles, typed=typed or {},
                           errors=errors or {}, is_hr=self._hr()), status

    @staticmethod
    def _hr() -> bool:
        return current_role() == "hr_admin"

    @expose("/open", methods=("POST",))
    def open(self) -> Any:
        if not self._hr():
            abort(403)
        db = _db()
        typed = {k: request.form.get(k, "") for k in ("period", "self_due", "manager_due")}
        # every field's problem at once, each beside its field
        errors: dict[str, str] = {}
        due: dict[str, dt.date] = {}
        for field in ("self_due", "manager_due"):
            try:
                due[field] = _date(typed[field], field)
            except LaurelError as exc:
                errors[field] = refused(exc)[1]
        try:
            reviews.quarter(typed["period"])
        except LaurelError as exc:
            errors["period"] = refused(exc)[1]
        if errors:
            return self.index(400, typed, errors)
        try:
            cycle = reviews.open_cycle(db, typed["period"], due["self_due"],
                                       due["manager_due"], me())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            field, message = refused(exc)
            return self.index(400, typed, {field if field in typed else "period": message})
        flash(_("The review cycle of %(period)s is open.", period=cycle.period.code), "success")
        return redirect(url_for(".cycle", cycle_id=cycle.id))

    @expose("/<int:cycle_id>/")
    def cycle(self, cycle_id: int, status: int = 200, error: str | None = None,
              typed: dict[str, str] | None = None) -> Any:
        db = _db()
        cycle = self._cycle(cycle_id)
        team_id = _team_scope()
        progress = reviews.progress(db, cycle, team_id)
        if team_id is not None:  # a manager does not assess themselves
            progress.rows = [r for r in progress.rows
                             if (r["employee"].email or "").lower() != me().lower()]
        return self.render("laurel/people/cycle.html", cycle=cycle, progress=progress,
                           is_hr=self._hr(), manager=team_id is not None
                           and may_write("reviews"), error=error, typed=typed or {},
                           missing={k: len(progress.missing(k))
                                    for k in ("self", "manager", "customer")}), status

    @expose("/<int:cycle_id>/enter", methods=("POST",))
    def enter(self, cycle_id: int) -> Any:
        if not may_write("reviews"):
            abort(403)
        db = _db()
        self._cycle(cycle_id)
        typed = {k: request.form.get(k, "") for k in ("employee", "score", "comments")}
        try:
            reviews.enter(db, cycle_id, me(), typed["employee"], "manager", typed["score"],
                          typed["comments"])
            db.commit()
        except NotFound:
            db.rollback()
            abort(404)
        except LaurelError as exc:
            db.rollback()
            return self.cycle(cycle_id, 400, refused(exc)[1], typed)
        flash(_("Assessment of %(code)s saved.", code=typed["employee"]), "success")
        return redirect(url_for(".cycle", cycle_id=cycle_id))

    @expose("/<int:cycle_id>/customers", methods=("POST",))
    def customers(self, cycle_id: int) -> Any:
        if not self._hr():
            abort(403)
        db = _db()
        self._cycle(cycle_id)
        files = uploads()
        try:
            if not files:
                raise LaurelError(_("Choose a file."))
            name, _type, data = files[0]
            n = reviews.import_customer_scores(db, cycle_id, name, data, me())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            return self.cycle(cycle_id, 400, i18n.say(exc))
        flash(_("%(n)s customer scores imported.", n=n), "success")
        return redirect(url_for(".cycle", cycle_id=cycle_id))

    @expose("/<int:cycle_id>/close", methods=("POST",))
    def close(self, cycle_id: int) -> Any:
        if not self._hr():
            abort(403)
        db = _db()
        self._cycle(cycle_id)
        try:
            reviews.close_cycle(db, cycle_id, me())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            return self.cycle(cycle_id, 400, i18n.say(exc))
        flash(_("The review cycle is closed: its scores are the quarter's results."),
              "success")
        return redirect(url_for(".cycle", cycle_id=cycle_id))


class TalksView(LaurelBaseView):
    """One-to-ones: a manager records a feedback talk; HR reads them all."""

    resource = "talks"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **words(), **kwargs)

    def _employees(self) -> list[Employee]:
        stmt = select(Employee).order_by(Employee.code)
        team_id = _team_scope()
        if team_id is not None:
            stmt = stmt.where(Employee.team_id == team_id)
        return [e for e in _db().scalars(stmt)
                if (e.email or "").lower() != me().lower()]

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        db = _db()
        keys = ("employee", "held_on", "strengths", "gaps", "coach",
                *(f"action_{i}" for i in (1, 2, 3)), *(f"due_{i}" for i in (1, 2, 3)))
        typed = {k: request.form.get(k, "") for k in keys}
        errors: dict[str, str] = {}
        if request.method == "POST":
            if not may_write("talks"):
                abort(403)
            # every field's problem at once, each beside its field
            actions: list[dict[str, str]] = []
            for i in (1, 2, 3):
                try:
                    actions += talks.actions_from([(typed[f"action_{i}"], typed[f"due_{i}"])],
                                                  first=i)
                except LaurelError as exc:
                    field, message = refused(exc)
                    errors[field if field in typed else f"due_{i}"] = message
            try:
                held_on = _date(typed["held_on"], "held_on")
            except LaurelError as exc:
                errors["held_on"] = refused(exc)[1]
            if not errors:
                try:
                    talk = talks.record(db, me(), typed["employee"], held_on,
                                        typed["strengths"], typed["gaps"], actions,
                                        typed["coach"] or None)
                    db.commit()
                except (NotFound, PermissionDenied) as exc:
                    db.rollback()
                    errors["employee"] = i18n.say(exc)
                except LaurelError as exc:
                    db.rollback()
                    field, message = refused(exc)
                    errors[field if field in typed else "employee"] = message
                else:
                    flash(_("One-to-one recorded."), "success")
                    return redirect(url_for(".talk", talk_id=talk.id))
        found = talks.listing(db, _team_scope())
        return self.render("laurel/people/talks.html", found=found[:PAGE],
                           employees=self._employees(), typed=typed, errors=errors,
                           can_record=may_write("talks"),
                           today=dt.date.today().isoformat()), 400 if errors else 200

    @expose("/<int:talk_id>/")
    def talk(self, talk_id: int) -> Any:
        try:
            t = talks.get(_db(), talk_id, me())
        except (NotFound, PermissionDenied):
            abort(404)
        return self.render("laurel/people/talk.html", t=t)


def _pct(value: Decimal | None) -> float | None:
    # Floats only here, at the boundary to the chart library.
    return None if value is None else round(float(value) * 100, 1)


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class AnalyticsView(LaurelBaseView):
    """Leadership analytics across the periods of a year, with filters and CSV files."""

    resource = "analytics"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **words(), **kwargs)

    def _scope(self) -> tuple[int, analytics.Scope]:
        db = _db()
        years = analytics.years(db) or [dt.date.today().year]
        arg = request.args.get("year", "")
        year = int(arg) if arg.isdigit() and int(arg) in years else years[0]
        team_id = _team_scope()
        if team_id is None:
            team = request.args.get("team", "")
            team_id = int(team) if team.isdigit() else None
        stage = request.args.get("stage", "")
        return year, analytics.Scope(
            team_id=team_id, region=request.args.get("region", "").strip() or None,
            level=request.args.get("level", "").strip() or None,
            stage=stage if stage in TEAM_STAGES else None)

    @expose("/")
    def index(self) -> Any:
        db = _db()
        year, scope = self._scope()
        a = analytics.analytics(db, year, scope)
        teams = db.execute(select(Team.id, Team.name).order_by(Team.name)).all()
        if _team_scope() is not None:
            teams = [t for t in teams if t[0] == _team_scope()]
        regions = sorted({r for r in db.scalars(select(Team.region)) if r})
        return self.render(
            "laurel/people/analytics.html", a=a, charts=self._charts(a),
            years=analytics.years(db), teams=teams, regions=regions,
            levels=list(db.scalars(select(Level.code).order_by(Level.code))),
            stages=TEAM_STAGES, team_only=_team_scope() is not None,
            args={k: v for k, v in request.args.items() if k != "lang"})

    @staticmethod
    def _charts(a: analytics.Analytics) -> dict[str, Any]:
        months = [m["period"] for m in a.months]
        line = _pct(a.warning_line)
        return {
            "payout": {"type": "bar", "labels": months, "datasets": [
                {"label": str(_l("Payout")), "data": [_num(m["payout"]) for m in a.months]},
                {"label": str(_l("Held")), "data": [_num(m["held"]) for m in a.months]}]},
            "scatter": {"type": "scatter", "labels": [], "xPercent": True, "datasets": [
                {"label": str(_l("Employees: attainment (%) and payout")),
                 "data": [{"x": _pct(e["attainment"]), "y": _num(e["payout"])}
                          for e in a.employees if e["attainment"] is not None]}]},
            "attainment": {"type": "line", "percent": True, "labels": months, "datasets": [
                {"label": str(_l("Attainment (%)")), "fill": False,
                 "data": [_pct(m["attainment"]) for m in a.months]},
                {"label": str(_l("Cost of sales (%)")), "fill": False,
                 "data": [_pct(m["cost_of_sales"]) for m in a.months]}]},
            "teams": {"type": "line", "percent": True, "labels": months, "datasets": [
                {"label": name, "fill": False, "data": [_pct(m["attainment"]) for m in rows]}
                for name, rows in a.teams.items()]},
            "regions": {"type": "line", "labels": months, "datasets": [
                {"label": name or str(_l("(no region)")), "fill": False,
                 "data": [_num(m["revenue"]) for m in rows]}
                for name, rows in a.regions.items()]},
            "funnel": {"type": "bar", "percent": True,
                       "labels": [f["region"] or str(_l("(no region)")) for f in a.funnel],
                       "datasets": [
                           {"label": str(_l("Leads to opportunities (%)")),
                            "data": [_pct(f["lead_to_opportunity"]) for f in a.funnel]},
                           {"label": str(_l("Leads to deals (%)")),
                            "data": [_pct(f["lead_conversion"]) for f in a.funnel]},
                           {"label": str(_l("Warning line")), "type": "line", "fill": False,
                            "pointRadius": 0, "colour": "rgba(220, 53, 69, 0.9)",
                            "borderDash": [6, 4], "data": [line for _f in a.funnel]}]},
            "spread": {"type": "bar", "labels": [s["team"] for s in a.spread], "datasets": [
                {"label": str(_l("Lowest")), "data": [_num(s["lowest"]) for s in a.spread]},
                {"label": str(_l("Output per head")),
                 "data": [_num(s["per_head"]) for s in a.spread]},
                {"label": str(_l("Highest")), "data": [_num(s["highest"]) for s in a.spread]}]},
            "ytd": {"type": "line", "labels": [y["month"] for y in a.ytd], "datasets": [
                {"label": str(_l("This year")), "fill": False,
                 "data": [_num(y["revenue"]) for y in a.ytd]},
                {"label": str(_l("Last year")), "fill": False, "borderDash": [6, 4],
                 "data": [_num(y["last_revenue"]) for y in a.ytd]}]},
        }

    @expose("/<chart>.csv")
    def csv(self, chart: str) -> Any:
        if chart not in analytics.CHARTS:
            abort(404)
        year, scope = self._scope()
        data = analytics.csv_bytes(analytics.analytics(_db(), year, scope), chart)
        return Response(data, mimetype="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="laurel-{chart}-{year}.csv"'})


def add_views(admin: Admin) -> None:
    people = _l("People")
    admin.add_view(InquiriesView(_l("Inquiries"), _l("Period end"), endpoint="inquiries",
                                 url="/admin/inquiries"))
    admin.add_view(ReviewsView(_l("Review cycles"), people, endpoint="reviews",
                               url="/admin/reviews"))
    admin.add_view(TalksView(_l("One-to-ones"), people, endpoint="talks", url="/admin/talks"))
    admin.add_view(AnalyticsView(_l("Leadership analytics"), people, endpoint="analytics",
                                 url="/admin/analytics"))
