"""The period end in the back office: runs, their lifecycle, statements and the export.

Thin on purpose: every figure comes from engine/ (runs, jobs, lifecycle, statements). A
view checks the role (``RUNS`` in engine/access.py), calls the engine, commits, and when the
engine refuses shows its message on the page it came from, with status 400 and what was
typed kept. A run is evaluated by a worker process (engine.jobs), never in the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask import Response, abort, flash, jsonify, redirect, request, stream_with_context, url_for
from flask_admin import Admin, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import joinedload

from admin import i18n
from admin.auth import current_role
from admin.base import (
    LaurelBaseView,
    _db,
    _team_scope,
    acting_email,
    field_error,
    may_read,
    read_page,
)
from engine import access, jobs, lifecycle, runs, statements
from engine.errors import LaurelError, NotFound, RunInProgress, RunStale
from engine.models import RUN_STATUSES, Adjustment, Employee, Outcome, Period, Run, RunJob, Team

PAGE = 50
EMPLOYEE_PAGE = 100
# The adjustment's search box lists a run's employees up to this many; past it (and
# always, in any run) an employee is typed by code or name.
CHOICES = 1000
ZERO = Decimal("0.00")

KIND_NAMES: dict[str, Any] = {
    "commission": _l("commission"), "bonus": _l("bonus"), "award": _l("award"),
    "rating": _l("rating"), "eligibility": _l("eligibility"), "pip": _l("PIP"),
    "flag": _l("flag"), "alert": _l("alert"), "warning": _l("warning"),
    "adjustment": _l("adjustment"),
}
STATUS_NAMES: dict[str, Any] = {
    # runs
    "calculated": _l("calculated"), "approved": _l("approved"), "locked": _l("locked"),
    "discarded": _l("discarded"), "failed": _l("failed"), "cancelled": _l("cancelled"),
    # jobs
    "queued": _l("queued"), "running": _l("running"), "done": _l("done"),
    # outcome amounts
    "payable": _l("payable"), "held": _l("held"), "forfeited": _l("forfeited"),
    # periods
    "open": _l("open"),
}
CHANGE_NAMES: dict[str, Any] = {"added": _l("added"), "removed": _l("removed"),
                                "changed": _l("changed")}
DIFF_LABELS: dict[str, Any] = {
    "employee_code": _l("Employee code"), "employee_name": _l("Employee name"),
    "rule_key": _l("Rule"), "kind": _l("Kind"), "change": _l("Change"),
    "before_amount": _l("Amount before"), "before_value": _l("Value before"),
    "before_status": _l("Status before"), "after_amount": _l("Amount after"),
    "after_value": _l("Value after"), "after_status": _l("Status after"),
    "delta": _l("Difference"),
}
# The payroll file's headers and sheets in the reader's language (engine.lifecycle.LABELS).
EXPORT_LABELS: dict[str, Any] = {
    "run_id": _l("Run"), "period": _l("Period"), "employee_code": _l("Employee code"),
    "employee_name": _l("Employee name"), "rule_key": _l("Rule"), "kind": _l("Kind"),
    "amount": _l("Amount"), "currency": _l("Currency"), "status": _l("Status"),
    "pay_code": _l("Pay code"), "note": _l("Note"), "rule_keys": _l("Rules"),
    "payable": _l("Payable"), "held": _l("Held"), "forfeited": _l("Forfeited"),
    "sheet_payable": _l("Payable"), "sheet_held": _l("Held and forfeited"),
    "sheet_summary": _l("Summary"), "total": _l("TOTAL"),
    "draft": _l("DRAFT: run {run} is not approved; do not pay from this file"),
    "stale": _l("DRAFT: run {run} is stale (its period's results changed after it read "
                "them); do not pay from this file"),
}
# How a period's results changed (engine.periods.results_changed).
CHANGE_HOW: dict[str, Any] = {"import": _l("import"), "edit": _l("edit")}
STATUS_BADGES = {"calculated": "info", "approved": "primary", "locked": "success",
                 "discarded": "secondary", "failed": "danger", "queued": "secondary",
                 "running": "info", "done": "success", "held": "warning",
                 "forfeited": "secondary", "payable": "success"}


NEXT_RUN: dict[str, Any] = {"month": _l("the next monthly run"),
                            "quarter": _l("the next quarterly run"),
                            "year": _l("the next annual run")}


def release_words(story: dict[str, Any] | None) -> str:
    """Where a hold released after the lock is paid (engine.compliance.release_of)."""
    if not story:
        return ""
    if story.get("run_id"):
        return _("released after the lock: to be paid in run %(id)s (%(period)s)",
                 id=story["run_id"], period=story["period"])
    return _("released after the lock: to be paid in %(next)s",
             next=NEXT_RUN.get(story["kind"], story["kind"]))


def rule_versions(run: Run, names: dict[str, str]) -> list[dict[str, Any]]:
    """The rule versions a run used, as people read them: name in the page's language
    (``names``: run_rule_names) and version (the run keeps their content hashes; the page
    does not show them)."""
    used = [x for x in run.rules or [] if isinstance(x, dict) and x.get("key")]
    out = [{"key": x["key"], "version": x.get("version"), "name": names[x["key"]]}
           for x in used]
    return sorted(out, key=lambda r: r["name"].lower())


def run_rule_names(db: Any, run: Run, *keys: Any) -> dict[str, str]:
    """The names, in the page's language, of the rules a run used and of the other keys
    its page shows (its outcomes' lines, its checklist's), in one query."""
    used = {x["key"] for x in run.rules or [] if isinstance(x, dict) and x.get("key")}
    return i18n.rule_names(db, used.union(*keys), run.rules)


def may(action: str, role: str | None = None) -> bool:
    return access.may_run(action, role or current_role())


def _require(action: str) -> None:
    if not may(action):
        abort(403)


_email = acting_email


def _int_arg(name: str, default: int = 1) -> int:
    try:
        return max(default, int(request.args.get(name, default)))
    except (TypeError, ValueError):
        return default


def money_totals(runs: list[Run], team_id: int | None = None, by_employee: bool = False,
                 employees: list[int] | None = None) -> dict[Any, dict[str, Decimal]]:
    """Stored amounts summed by run (or employee) and status, adjustments as payable.

    The same sums as a statement's totals (engine.statements.totals_of). A whole run's
    are stored with it (Run.summary, kept up to date by adjustments and hold decisions);
    others are read in two grouped queries, so that a list of runs or employees does not
    load every outcome.
    """
    out: dict[Any, dict[str, Decimal]] = {}
    if not by_employee and team_id is None and employees is None:
        out = {r.id: {s: Decimal(v) for s, v in r.summary["totals"]["by_status"].items()}
               for r in runs if r.summary is not None}
    run_ids = [r.id for r in runs if r.id not in out]
    if not run_ids:
        return out
    db = _db()
    owner = Outcome.employee_id if by_employee else Outcome.run_id
    stmt = (select(owner, Outcome.status, func.sum(Outcome.amount))
            .where(Outcome.run_id.in_(run_ids), Outcome.amount.is_not(None),
                   Outcome.status.in_(statements.MONEY_STATUSES))
            .group_by(owner, Outcome.status))
    adj_owner = Adjustment.employee_id if by_employee else Adjustment.run_id
    adj = (select(adj_owner, func.sum(Adjustment.amount)).where(Adjustment.run_id.in_(run_ids))
           .group_by(adj_owner))
    if team_id is not None:
        team = select(Employee.id).where(Employee.team_id == team_id)
        stmt = stmt.where(Outcome.employee_id.in_(team))
        adj = adj.where(Adjustment.employee_id.in_(team))
    if employees is not None:  # the employees of one page of a run
        stmt = stmt.where(Outcome.employee_id.in_(employees))
        adj = adj.where(Adjustment.employee_id.in_(employees))
    for key, status, amount in db.execute(stmt):
        sums = out.setdefault(key, {s: ZERO for s in statements.MONEY_STATUSES})
        sums[status] += Decimal(amount)
    for key, amount in db.execute(adj):
        sums = out.setdefault(key, {s: ZERO for s in statements.MONEY_STATUSES})
        sums["payable"] += Decimal(amount)
    return out


def _helpers() -> dict[str, Any]:
    return {"money": i18n.money, "percent": i18n.percent, "may": may,
            "kind_name": lambda k: KIND_NAMES.get(k, k),
            "status_name": lambda s: STATUS_NAMES.get(s, s) if s else "",
            "change_name": lambda c: CHANGE_NAMES.get(c, c),
            "badge": lambda s: STATUS_BADGES.get(s or "", "light"),
            "when": i18n.when,
            "release_words": release_words}


def _download(data: bytes | Iterable[bytes], name: str, fmt: str) -> Response:
    # Flask adds "; charset=utf-8" to a text type itself
    mimetype = {"csv": "text/csv", "json": "application/json"}.get(
        fmt, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(data, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


def _job_state(job: RunJob) -> dict[str, Any]:
    percent = int(job.done * 100 / job.total) if job.total else 0
    if job.status == "done":
        percent = 100
    db = _db()
    idle = jobs.stalled(db, job)
    work = jobs.work_of(db, job)
    return {"id": job.id, "period": job.period_code, "status": job.status,
            "status_label": str(STATUS_NAMES.get(job.status, job.status)),
            "done": job.done, "total": job.total, "percent": percent, "run_id": job.run_id,
            "run_url": url_for(".run", run_id=job.run_id) if job.run_id else None,
            "error": job.error, "finished": job.status not in jobs.ACTIVE,
            "stalled": None if idle is None else str(_(
                "No worker has taken this run's work for %(minutes)d minutes. It fails "
                "after %(limit)d minutes: start a worker (laurel worker) or restart the "
                "back office.", minutes=int(idle // 60), limit=int(jobs.GIVE_UP // 60))),
            "chunks": work["chunks"], "chunks_done": work["done"],
            "chunks_redone": work["redone"], "workers": work["workers"],
            "seconds_left": work["seconds_left"]}


class RunsView(LaurelBaseView):
    """Runs of the period end: start, follow, review, approve, lock, adjust, export."""

    resource = "runs"
    extra_css: list[str] = []

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **_helpers(), **kwargs)

    # --- the list and the start of a run ----------------------------------------------

    @expose("/")
    def index(self) -> Any:
        return self._list()

    def _list(self, error: str | None = None, chosen: str = "", status: int = 200) -> Any:
        db = _db()
        period = request.args.get("period", "").strip()
        state = request.args.get("status", "").strip()
        stmt = select(Run).join(Period, Period.id == Run.period_id)
        if period:
            stmt = stmt.where(Period.code == period)
        if state in RUN_STATUSES:
            stmt = stmt.where(Run.status == state)
        total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        page = _int_arg("page")
        rows = db.scalars(stmt.options(joinedload(Run.period)).order_by(Run.id.desc())
                          .limit(PAGE).offset((page - 1) * PAGE)).all()
        team_id = _team_scope()
        sums = money_totals(list(rows), team_id=team_id)
        all_periods = db.scalars(select(Period).order_by(Period.start.desc(), Period.kind)).all()
        recent_jobs = []
        if may("overview"):
            recent_jobs = db.scalars(select(RunJob).order_by(RunJob.id.desc()).limit(5)).all()
            for job in recent_jobs:
                if job.status in jobs.ACTIVE:
                    jobs.watch(db, job)
        return self.render(
            "laurel/runs/list.html", runs=rows, sums=sums, total=total, page=page,
            pages=max(1, (total + PAGE - 1) // PAGE), periods=all_periods,
            # the next period to run first: months before their quarter and year
            open_periods=sorted((p for p in all_periods if p.status == "open"),
                                key=lambda p: (p.end, -p.start.toordinal())),
            chosen_period=period, chosen_status=state, statuses=RUN_STATUSES,
            error=error, start_period=chosen, recent_jobs=recent_jobs,
            team_only=team_id is not None), status

    @expose("/start", methods=("POST",))
    def start(self) -> Any:
        _require("start")
        code = request.form.get("period", "").strip()
        db = _db()
        try:
            if not code:
                raise LaurelError(_("Choose a period to run."))
            job = jobs.start(db, code, _email())
            db.commit()
            jobs.dispatch(job.id)
        except RunInProgress as exc:
            # A second click while the first run is evaluated follows the first one.
            db.rollback()
            flash(_("A run of period %(code)s is already in progress.", code=code), "info")
            return redirect(url_for(".job", job_id=exc.job_id))
        except LaurelError as exc:
            db.rollback()
            return self._list(error=i18n.say(exc), chosen=code, status=400)
        return redirect(url_for(".job", job_id=job.id))

    # --- a run job: live progress -------------------------------------------------------

    def _job(self, job_id: int) -> RunJob:
        _require("overview")
        db = _db()
        job = db.get(RunJob, job_id)
        if job is None:
            abort(404)
        return jobs.watch(db, job)

    @expose("/job/<int:job_id>")
    def job(self, job_id: int) -> Any:
        job = self._job(job_id)
        return self.render("laurel/runs/job.html", job=job, state=_job_state(job))

    @expose("/job/<int:job_id>/cancel", methods=("POST",))
    def job_cancel(self, job_id: int) -> Any:
        _require("start")
        db = _db()
        try:
            jobs.cancel(db, job_id, _email())
            db.commit()
            flash(_("The run was cancelled: nothing of it is kept."), "info")
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
        return redirect(url_for(".job", job_id=job_id))

    @expose("/job/<int:job_id>/progress")
    def job_progress(self, job_id: int) -> Any:
        response = jsonify(_job_state(self._job(job_id)))
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- one run ------------------------------------------------------------------------

    def _get_run(self, run_id: int) -> Run:
        run = _db().get(Run, run_id)
        if run is None:
            abort(404)
        return run

    @expose("/<int:run_id>/")
    def run(self, run_id: int) -> Any:
        adjust = {"employee": request.args.get("employee", "")}
        return self._run_page(run_id, adjust=adjust)

    def _run_page(self, run_id: int, status: int = 200, error: str | None = None,
                  adjust: dict[str, str] | None = None,
                  adjust_errors: dict[str, str] | None = None,
                  reopen: str = "", reopen_error: str | None = None) -> Any:
        db = _db()
        run = self._get_run(run_id)
        team_id = _team_scope()
        overview = statements.overview(db, run) if may("overview") else None
        # An employee is in the run with an outcome or an adjustment. The few with only an
        # adjustment are read first: without them the database walks employees by code
        # and stops at the page (a semi-join), whatever the run's size.
        with_outcome = Employee.id.in_(select(Outcome.employee_id)
                                       .where(Outcome.run_id == run.id))
        adjusted_only = list(db.scalars(
            select(Adjustment.employee_id).distinct().where(
                Adjustment.run_id == run.id, ~exists().where(
                    Outcome.run_id == run.id,
                    Outcome.employee_id == Adjustment.employee_id))))
        in_run = or_(with_outcome, Employee.id.in_(adjusted_only)) if adjusted_only \
            else with_outcome
        stmt = (select(Employee, Team.name).join(Team, Team.id == Employee.team_id)
                .where(in_run))
        if team_id is not None:
            stmt = stmt.where(Employee.team_id == team_id)
        query = request.args.get("q", "").strip()
        if query:
            like = f"%{query}%"
            stmt = stmt.where(Employee.code.ilike(like) | Employee.name.ilike(like))
        stored = (run.summary or {}).get("totals")
        if stored and not query and team_id is None:
            # the employees with outcomes are counted with the run
            count = stored["employees"] + len(adjusted_only)
        else:
            count = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        page = _int_arg("page")
        people = read_page(db, stmt, Employee.code, page, EMPLOYEE_PAGE, count)
        ids = [e.id for e, _team in people]
        sums = money_totals([run], team_id=team_id, by_employee=True, employees=ids)
        flags = dict(db.execute(
            select(Outcome.employee_id, func.count()).where(
                Outcome.run_id == run.id, Outcome.kind == "flag",
                Outcome.employee_id.in_(ids)).group_by(Outcome.employee_id)).all())
        # Runs of this period first, then the latest of the others: any two compare.
        others = []
        if may("overview") and run.status != "failed":
            stmt = (select(Run).options(joinedload(Run.period))
                    .where(Run.id != run.id, Run.status != "failed"))
            others = list(db.scalars(stmt.where(Run.period_id == run.period_id)
                                     .order_by(Run.id.desc())))
            others += db.scalars(stmt.where(Run.period_id != run.period_id)
                                 .order_by(Run.id.desc()).limit(40)).all()
        charts = self._charts(overview) if overview else None
        # The adjustment's search box offers the run's employees by code and name, when
        # they are few enough to list (all of the run's, whatever the list shows); else
        # they are typed.
        choices = []
        if may("adjust") and run.status in ("calculated", "approved"):
            everyone = count if not query and team_id is None else (
                stored["employees"] + len(adjusted_only) if stored else db.scalar(
                    select(func.count()).select_from(Employee).where(in_run)) or 0)
            if everyone <= CHOICES:
                choices = db.execute(select(Employee.code, Employee.name).where(
                    in_run).order_by(Employee.code).limit(CHOICES)).all()
        checklist = (lifecycle.checklist(db, run) if may("overview")
                     and run.status in ("calculated", "approved") else None)
        names = run_rule_names(db, run, overview["by_rule"] if overview else (),
                               checklist.rule_keys() if checklist else ())
        return self.render(
            "laurel/runs/run.html", run=run, overview=overview, people=people, sums=sums,
            rule_versions=rule_versions(run, names), rule_names=names,
            may_read_rules=may_read("rules"),
            stale=runs.staleness(db, run), change_how=lambda how: CHANGE_HOW.get(how, how),
            flags=flags, count=count, page=page,
            pages=max(1, (count + EMPLOYEE_PAGE - 1) // EMPLOYEE_PAGE), query=query,
            others=others, charts=charts, error=error, checklist=checklist,
            choices=choices,
            adjust=adjust or {}, adjust_errors=adjust_errors or {}, reopen=reopen,
            reopen_error=reopen_error, team_only=team_id is not None,
            editable=run.status in ("calculated", "approved")
            and run.period.status != "locked",
            refusal=lambda action: self._refusal(db, run, action)), status

    @staticmethod
    def _charts(overview: dict[str, Any]) -> dict[str, Any]:
        # Floats only here, at the boundary to the chart library.
        dist = overview["distribution"]
        teams = overview["team_attainment"]
        # In the form static/laurel/charts.js draws (as the dashboards' charts).
        return {
            "distribution": {
                "type": "bar", "yTitle": str(_l("Employees")),
                "labels": [f"{i18n.money(b['from'])} – {i18n.money(b['to'])}" for b in dist],
                "datasets": [{"label": str(_l("Employees")),
                              "data": [b["count"] for b in dist]}],
            },
            "attainment": {
                "type": "bar", "percent": True, "yTitle": str(_l("Attainment (%)")),
                "labels": list(teams),
                # an undefined attainment is a gap in the chart, not a zero
                "datasets": [{"label": str(_l("Attainment (%)")),
                              "colour": "rgba(40, 167, 69, 0.6)",
                              "data": [None if v is None else round(float(v) * 100, 1)
                                       for v in teams.values()]}],
            },
        }

    def _confirm_page(self, run_id: int, action: str, status: int = 200,
                      error: str | None = None, typed: dict[str, str] | None = None,
                      errors: dict[str, str] | None = None) -> Any:
        """The period-close checklist, and the button that approves or locks after it."""
        _require(action)
        db = _db()
        run = self._get_run(run_id)
        checklist = lifecycle.checklist(db, run)
        return self.render("laurel/runs/confirm.html", run=run, action=action,
                           checklist=checklist,
                           rule_names=run_rule_names(db, run, checklist.rule_keys()),
                           refusal=self._refusal(db, run, action), error=error,
                           typed=typed or {}, errors=errors or {}), status

    @staticmethod
    def _refusal(db: Any, run: Run, action: str) -> Any:
        """Why the engine would refuse the reader this step now (its button is disabled
        with the reason beside it), or None."""
        if action == "approve":
            return lifecycle.approval_refusal(db, run, _email())
        return lifecycle.lock_refusal(db, run)

    def _act(self, run_id: int, action: str, call: Any, done: str) -> Any:
        db = _db()
        self._get_run(run_id)
        typed = {k: request.form.get(k, "") for k in ("confirm", "with_open_flags",
                                                      "open_flags_reason")}
        if typed["confirm"] != "1":
            return self._confirm_page(run_id, action, 400, typed=typed, errors={
                "confirm": _("Tick the box to confirm that you have checked the list.")})
        try:
            call(db, _email(), typed)
            db.commit()
        except NotFound:
            db.rollback()
            abort(404)
        except RunStale:
            db.rollback()  # the page says why, in the reader's language
            return self._run_page(run_id, status=400, error=_(
                "Run %(id)s is stale: it cannot be approved or locked.", id=run_id))
        except LaurelError as exc:
            db.rollback()
            field, message = field_error(exc)
            if field == "open_flags_reason":
                return self._confirm_page(run_id, action, 400, typed=typed, errors={
                    field: _("Flags are still open: tick “Lock with open flags” and give "
                             "a reason, or decide them first.")})
            return self._run_page(run_id, status=400, error=i18n.say(exc))
        flash(done, "success")
        return redirect(url_for(".run", run_id=run_id))

    @expose("/<int:run_id>/approve", methods=("GET", "POST"))
    def approve(self, run_id: int) -> Any:
        _require("approve")
        if request.method == "GET":
            return self._confirm_page(run_id, "approve")
        return self._act(run_id, "approve",
                         lambda db, who, typed: lifecycle.approve(db, run_id, who),
                         _("Run %(id)s is approved.", id=run_id))

    @expose("/<int:run_id>/lock", methods=("GET", "POST"))
    def lock(self, run_id: int) -> Any:
        _require("lock")
        if request.method == "GET":
            return self._confirm_page(run_id, "lock")

        def call(db: Any, who: str, typed: dict[str, str]) -> Run:
            reason = typed["open_flags_reason"] if typed["with_open_flags"] == "1" else None
            return lifecycle.lock(db, run_id, who, open_flags_reason=reason)

        return self._act(run_id, "lock", call,
                         _("Run %(id)s and its period are locked.", id=run_id))

    @expose("/<int:run_id>/reopen", methods=("POST",))
    def reopen(self, run_id: int) -> Any:
        _require("reopen")
        db = _db()
        run = self._get_run(run_id)
        reason = request.form.get("reason", "")
        code = run.period.code
        try:
            lifecycle.reopen_period(db, code, _email(), reason)
            db.commit()
        except LaurelError as exc:
            db.rollback()
            field, message = field_error(exc)
            if field == "reason":
                return self._run_page(run_id, status=400, reopen=reason,
                                      reopen_error=message)
            return self._run_page(run_id, status=400, error=i18n.say(exc), reopen=reason)
        flash(_("Period %(code)s is open again.", code=code), "success")
        return redirect(url_for(".run", run_id=run_id))

    @expose("/<int:run_id>/adjust", methods=("POST",))
    def adjust(self, run_id: int) -> Any:
        _require("adjust")
        db = _db()
        run = self._get_run(run_id)
        typed = {k: request.form.get(k, "") for k in ("employee", "amount", "reason")}
        # every field's problem at once, each beside its field
        errors: dict[str, str] = {}
        checks = {"employee": lambda: lifecycle.employee_named(db, typed["employee"]),
                  "amount": lambda: lifecycle.adjustment_amount(db, run, typed["amount"]),
                  "reason": lambda: lifecycle.adjustment_reason(typed["reason"])}
        for field, check in checks.items():
            try:
                check()
            except LaurelError as exc:
                errors[field] = field_error(exc)[1]
        if errors:
            return self._run_page(run_id, status=400, adjust=typed, adjust_errors=errors)
        try:
            adj = lifecycle.add_adjustment(db, run_id, typed["employee"].strip(),
                                           typed["amount"], typed["reason"], _email())
            code, amount, currency = adj.employee.code, adj.amount, adj.currency
            db.commit()
        except NotFound:
            db.rollback()
            abort(404)
        except LaurelError as exc:
            db.rollback()
            field, message = field_error(exc)
            if field in typed:
                return self._run_page(run_id, status=400, adjust=typed,
                                      adjust_errors={field: message})
            return self._run_page(run_id, status=400, adjust=typed, error=i18n.say(exc))
        flash(_("Adjustment of %(amount)s added for %(code)s.",
                amount=i18n.money(amount, currency), code=code), "success")
        return redirect(url_for(".statement", run_id=run_id, code=code))

    @expose("/<int:run_id>/export")
    def export(self, run_id: int) -> Any:
        _require("overview")
        db = _db()
        run = self._get_run(run_id)
        fmt = request.args.get("format", "csv")
        draft = request.args.get("draft") == "1"
        try:
            # sent as it is read (the request's session stays open until the last piece)
            data = stream_with_context(lifecycle.export_stream(
                db, run_id, fmt, draft=draft,
                totals_rows=True if request.args.get("totals") == "1" else None,
                labels={k: str(v) for k, v in EXPORT_LABELS.items()}))
        except LaurelError as exc:
            return self._run_page(run_id, status=400, error=i18n.say(exc))
        name = f"laurel-run-{run.id}-{run.period.code}"
        if lifecycle.export_draft(db, run):
            name += "-DRAFT"
        return _download(data, name, fmt)

    def _compared(self, run_id: int) -> list[Run] | Any:
        """[the run, the earlier, the later] of the pair compared; or the refusal page."""
        _require("overview")
        db = _db()
        run = self._get_run(run_id)
        try:
            other_id = int(request.args.get("with", ""))
        except ValueError:
            other_id = 0
        other = db.get(Run, other_id) if other_id else None
        if other is None or other.id == run.id or "failed" in (other.status, run.status):
            return self._run_page(run_id, status=400, error=_(
                "Choose another run to compare with (a run that did not fail)."))
        old, new = sorted((run, other), key=lambda r: r.id)
        return [run, old, new]

    @expose("/<int:run_id>/compare")
    def compare(self, run_id: int) -> Any:
        found = self._compared(run_id)
        if not isinstance(found, list):
            return found
        run, old, new = found
        db = _db()
        rows = statements.diff_runs(db, old, new)
        counts = {c: sum(1 for r in rows if r["change"] == c) for c in CHANGE_NAMES}
        totals = {"before": statements.run_totals(db, old),
                  "after": statements.run_totals(db, new),
                  "delta": statements.diff_totals(rows)}
        # a rule by its name as the two runs used it (where they used two versions, as
        # plain.definitions chooses); the rows' values and the downloads keep the key
        names = i18n.rule_names(db, {r["rule_key"] for r in rows},
                                [*(old.rules or []), *(new.rules or [])])
        return self.render("laurel/runs/compare.html", run=run, old=old, new=new, rows=rows,
                           rule_names=names,
                           counts=counts, totals=totals, delta=totals["delta"]["total"],
                           employees=len({r["employee_code"] for r in rows}))

    @expose("/<int:run_id>/compare/export")
    def compare_export(self, run_id: int) -> Any:
        found = self._compared(run_id)
        if not isinstance(found, list):
            return found
        _run, old, new = found
        fmt = request.args.get("format", "csv")
        if fmt not in ("csv", "xlsx"):
            abort(404)
        labels = [str(DIFF_LABELS[c]) for c in statements.DIFF_COLUMNS]
        data = stream_with_context(statements.diff_file_stream(_db(), old, new, fmt, labels))
        return _download(data, f"laurel-runs-{old.id}-{new.id}-diff", fmt)

    # --- statements ---------------------------------------------------------------------

    @expose("/<int:run_id>/statement/<code>")
    def statement(self, run_id: int, code: str) -> Any:
        db = _db()
        run = self._get_run(run_id)
        employee = db.scalar(select(Employee).where(Employee.code == code))
        team_id = _team_scope()
        # A sales manager does not learn that another team's employee exists: 404, not 403.
        if employee is None or (team_id is not None and employee.team_id != team_id):
            abort(404)
        lang = "zh" if i18n.is_chinese() else "en"
        st = statements.statement(db, run, code, lang=lang)
        r = statements.reader(db, lang)
        # a hold released after the lock names the rule of the run that held it
        released = [x["released"] for x in (line.explanation for line in st.lines)
                    if isinstance(x.get("released"), dict)]
        names = i18n.rule_names(db, {x.get("rule_key") for x in released},
                                run_ids={x.get("run_id") for x in released} - {None})
        return self.render("laurel/runs/statement.html", run=run, st=st,
                           fact=r.value, fact_label=r.label, rule_names=names,
                           editable=run.status in ("calculated", "approved")
                           and run.period.status != "locked")


def add_views(admin: Admin) -> None:
    """Add the period-end views to the back office (category "Period end")."""
    admin.add_view(RunsView(_l("Runs"), _l("Period end"), endpoint="runs",
                            url="/admin/runs"))
