"""The salesperson's portal: their own pay, statements, questions, estimate and reviews.

A ``sales_rep`` logs in to /admin/me and sees nothing else (READ "portal" in
engine/access.py). Every page asks engine/portal.py (and inquiries, reviews, talks,
estimate) with the logged-in user: whatever is not theirs is answered 404, as if it did
not exist. The pages use Bootstrap's grid, so they read on a phone as on a desk; a
statement prints (or saves as PDF) through its print view with the same lines.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import Admin, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from admin import i18n
from admin.auth import current_principal
from admin.base import LaurelBaseView, _db, acting_email, attachment, field_error, uploads
from engine import estimate, inquiries, plain, portal, reviews, talks
from engine.errors import LaurelError, NotFound, PermissionDenied
from engine.models import InquiryMessage, ReviewCycle, ReviewEntry, User

_FIELD_WORDS: dict[str, Any] = {
    "text": _l("Write your question."),
    "score": _l("A score from 0 to 100."),
}
INQUIRY_STATUS_NAMES: dict[str, Any] = {
    "open": _l("waiting for an analyst"), "in_review": _l("being looked at"),
    "resolved": _l("answered"), "rejected": _l("rejected"),
}
INQUIRY_BADGES = {"open": "warning", "in_review": "info", "resolved": "success",
                  "rejected": "secondary"}
PAY_STATUS_NAMES: dict[str, Any] = {"payable": _l("paid"), "held": _l("held"),
                                    "forfeited": _l("forfeited")}
PAY_BADGES = {"payable": "success", "held": "warning", "forfeited": "secondary"}


def lang() -> str:
    return "zh" if i18n.is_chinese() else "en"


me = acting_email  # who acts: the logged-in salesperson or analyst


def words() -> dict[str, Any]:
    """What the portal's and the analysts' inquiry pages share."""
    return {"money": i18n.money, "percent": i18n.percent,
            "inquiry_status": lambda s: INQUIRY_STATUS_NAMES.get(s, s),
            "inquiry_badge": lambda s: INQUIRY_BADGES.get(s, "light"),
            "pay_status": lambda s: PAY_STATUS_NAMES.get(s, s) if s else "",
            "pay_badge": lambda s: PAY_BADGES.get(s or "", "light"),
            "term": i18n.term, "when": i18n.when}


def refused(exc: LaurelError) -> tuple[str | None, str]:
    """The field an engine refusal names, and what to say next to it."""
    field, message = field_error(exc)
    if field in _FIELD_WORDS and ("write" in message or "not a number" in message
                                  or "range" in message or "outside" in message):
        return field, str(_FIELD_WORDS[field])
    return field, message


class PortalView(LaurelBaseView):
    """My pay: what a salesperson sees of their own."""

    resource = "portal"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **words(), **kwargs)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(_db(), *args)
        except (NotFound, PermissionDenied):
            abort(404)

    @expose("/")
    def index(self) -> Any:
        db = _db()
        ov = self._call(portal.overview, me())
        user = db.get(User, current_principal().id)  # type: ignore[union-attr]
        return self.render(
            "laurel/portal/index.html", ov=ov,
            names=self._names(ov), inquiries=inquiries.of_employee(db, ov.employee.id),
            reviews_due=reviews.waiting(db, user),
            unacknowledged=[t for t in ov.talks if t.acknowledged_at is None])

    def _names(self, ov: portal.Overview) -> dict[str, str]:
        """Each pay component's name in the reader's language."""
        db = _db()
        v = plain.voice(db, lang())
        out: dict[str, str] = {}
        for run in ov.runs:
            defs = plain.definitions(db, run.rules)
            for key in defs:
                out.setdefault(key, plain.rule_name(key, defs, v))
        out["adjustment"] = _("Manual adjustments")
        return out

    # --- statements ------------------------------------------------------------------

    def _statement(self, run_id: int) -> tuple[Any, Any]:
        employee, run = self._call(portal.own_run, me(), run_id)
        return run, plain.statement(_db(), run, employee.code, lang())

    @expose("/statement/<int:run_id>")
    def statement(self, run_id: int, status: int = 200, typed: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None) -> Any:
        run, st = self._statement(run_id)
        return self.render("laurel/portal/statement.html", run=run, st=st,
                           typed=typed or {}, errors=errors or {}), status

    @expose("/statement/<int:run_id>/print")
    def print_view(self, run_id: int) -> Any:
        run, st = self._statement(run_id)
        return self.render("laurel/portal/print.html", run=run, st=st,
                           today=i18n.day(dt.date.today()))

    @expose("/statement/<int:run_id>/ask", methods=("POST",))
    def ask(self, run_id: int) -> Any:
        db = _db()
        self._statement(run_id)  # theirs, or 404
        line = request.form.get("line", "")
        kind, _sep, ident = line.partition(":")
        outcome_id = int(ident) if kind == "outcome" and ident.isdigit() else None
        adjustment_id = int(ident) if kind == "adjustment" and ident.isdigit() else None
        text = request.form.get("text", "")
        try:
            q = inquiries.ask(db, me(), run_id, text, outcome_id, adjustment_id, uploads())
            db.commit()
        except NotFound:
            db.rollback()
            abort(404)
        except LaurelError as exc:
            db.rollback()
            field, message = refused(exc)
            return self.statement(run_id, 400, {"line": line, "text": text},
                                  {"text" if field in (None, "text") else field: message})
        flash(_("Your question was sent to the compensation analysts."), "success")
        return redirect(url_for(".inquiry", inquiry_id=q.id))

    # --- inquiries ---------------------------------------------------------------------

    def _inquiry(self, inquiry_id: int) -> Any:
        return self._call(inquiries.get, inquiry_id, me())

    @expose("/inquiry/<int:inquiry_id>")
    def inquiry(self, inquiry_id: int, status: int = 200, error: str | None = None,
                typed: str = "") -> Any:
        q = self._inquiry(inquiry_id)
        name = plain.rule_name(q.rule_key, plain.definitions(_db(), q.run.rules),
                               plain.voice(_db(), lang())) if q.rule_key else ""
        return self.render("laurel/portal/inquiry.html", q=q, line_name=name, error=error,
                           typed=typed), status

    @expose("/inquiry/<int:inquiry_id>/message", methods=("POST",))
    def message(self, inquiry_id: int) -> Any:
        db = _db()
        self._inquiry(inquiry_id)
        text = request.form.get("text", "")
        try:
            inquiries.add_message(db, inquiry_id, me(), text, uploads())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            return self.inquiry(inquiry_id, 400, refused(exc)[1], text)
        flash(_("Message sent."), "success")
        return redirect(url_for(".inquiry", inquiry_id=inquiry_id))

    @expose("/inquiry/<int:inquiry_id>/file/<int:message_id>")
    def inquiry_file(self, inquiry_id: int, message_id: int) -> Any:
        self._inquiry(inquiry_id)
        msg = _db().get(InquiryMessage, message_id)
        if msg is None or msg.inquiry_id != inquiry_id or msg.content is None:
            abort(404)
        return attachment(msg.content, msg.filename, msg.content_type, f"file-{msg.id}")

    # --- what if ------------------------------------------------------------------------

    @expose("/estimate", methods=("GET", "POST"))
    def estimator(self) -> Any:
        db = _db()
        employee = self._call(portal.rep, me())
        choices = estimate.open_periods(db)
        code = (request.values.get("period") or "").strip()
        period = next((p for p in choices if p.code == code), choices[0] if choices else None)
        metrics = estimate.inputs(db, period.kind) if period else []
        # typed figures come back in the address when the period changes (runs.js); a
        # sent form's own figures are what was typed then, whatever the address still says
        source = request.form if request.method == "POST" else request.args
        typed = {m.key: source.get(m.key, "") for m in metrics}
        result = error = None
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST" and period is not None:
            figures: dict[str, Any] = {}
            for key, text in typed.items():  # every field's problem at once, beside it
                try:
                    figures.update(estimate.read_figures(db, {key: text}))
                except LaurelError as exc:
                    errors[key] = refused(exc)[1]
            try:
                if not errors:
                    result = estimate.estimate(db, employee.id, period.code, figures, lang())
            except LaurelError as exc:
                field, message = refused(exc)
                if field in typed:
                    errors[field] = message
                else:
                    error = message
            if errors or error:
                status = 400
        from engine.rollup import period_figures

        stored = period_figures(db, period.code, employee.id).get(employee.id, {}) \
            if period else {}
        return self.render("laurel/portal/estimate.html", periods=choices, period=period,
                           metrics=metrics, typed=typed, stored=stored, result=result,
                           error=error, errors=errors,
                           label=lambda m: i18n.metric_label(m),
                           shown=lambda m, v: i18n.metric_value(v, m.type)), status

    # --- the review and one-to-ones ------------------------------------------------------

    @expose("/review/<int:cycle_id>", methods=("GET", "POST"))
    def review(self, cycle_id: int) -> Any:
        db = _db()
        employee = self._call(portal.rep, me())
        cycle = db.get(ReviewCycle, cycle_id)
        if cycle is None:
            abort(404)
        typed = {k: request.form.get(k, "") for k in ("score", "comments")}
        errors: dict[str, str] = {}
        if request.method == "POST":
            try:
                reviews.enter(db, cycle_id, me(), employee.code, "self", typed["score"],
                              typed["comments"])
                db.commit()
            except NotFound:
                db.rollback()
                abort(404)
            except LaurelError as exc:
                db.rollback()
                field, message = refused(exc)
                errors[field if field in typed else "score"] = message
            else:
                flash(_("Your self-assessment is saved."), "success")
                return redirect(url_for(".index"))
        entry = db.scalar(select(ReviewEntry).where(
            ReviewEntry.cycle_id == cycle.id, ReviewEntry.employee_id == employee.id,
            ReviewEntry.kind == "self"))
        if request.method == "GET" and entry is not None:
            typed = {"score": str(entry.score.normalize()), "comments": entry.comments}
        return self.render("laurel/portal/review.html", cycle=cycle, entry=entry,
                           typed=typed, errors=errors), 400 if errors else 200

    @expose("/talk/<int:talk_id>")
    def talk(self, talk_id: int) -> Any:
        self._call(portal.rep, me())
        t = self._call(talks.get, talk_id, me())
        return self.render("laurel/portal/talk.html", t=t)

    @expose("/talk/<int:talk_id>/acknowledge", methods=("POST",))
    def acknowledge(self, talk_id: int) -> Any:
        db = _db()
        self._call(portal.rep, me())
        try:
            talks.acknowledge(db, talk_id, me())
            db.commit()
        except (NotFound, PermissionDenied):
            db.rollback()
            abort(404)
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
        else:
            flash(_("You acknowledged the one-to-one."), "success")
        return redirect(url_for(".talk", talk_id=talk_id))


def add_views(admin: Admin) -> None:
    admin.add_view(PortalView(_l("My pay"), endpoint="portal", url="/admin/me"))
