"""The compliance queue in the back office: flags, their notes and evidence, decisions.

Thin on purpose, like the runs pages: every rule about who may do what to a flag lives in
engine/compliance.py. A view checks the role first (READ/WRITE "compliance" in
engine/access.py: nobody but a compliance officer may POST, and a refused POST changes
nothing), calls the engine and commits; when the engine refuses, its message is shown
next to the field it names, with status 400 and what was typed kept.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import Admin, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from admin import i18n
from admin.auth import _safe_next
from admin.base import (
    LaurelBaseView,
    _db,
    _team_scope,
    acting_email,
    attachment,
    field_error,
    may_write,
    read_page,
    uploads,
)
from admin.runs_views import STATUS_BADGES, STATUS_NAMES, release_words
from engine import compliance, statements
from engine.errors import LaurelError, NotFound
from engine.models import (
    FLAG_STATUSES,
    AuditLog,
    Employee,
    FlagCase,
    FlagNote,
    Outcome,
    Period,
    Run,
    Team,
    User,
)

PAGE = 50
# Past this many teams the queue's team filter is typed, not chosen from a list.
TEAMS_LISTED = 300
ZERO = Decimal("0.00")

FLAG_STATUS_NAMES: dict[str, Any] = {
    "open": lazy_pgettext("flag status", "open"), "in_review": _l("in review"),
    "confirmed": _l("confirmed"),
    "dismissed": _l("dismissed"), "cleared": _l("no longer raised"),
}
SEVERITY_NAMES: dict[str, Any] = {"high": _l("high"), "medium": _l("medium"), "low": _l("low")}
MONEY_NAMES: dict[str, Any] = {"payable": _l("payable"), "held": _l("held"),
                               "forfeited": _l("forfeited")}
BADGES = {"open": "warning", "in_review": "info", "confirmed": "danger",
          "dismissed": "success", "cleared": "secondary", "high": "danger",
          "medium": "warning", "low": "secondary",
          **STATUS_BADGES}
# The engine's messages are English; where one names a field a person fills in, the page
# says it in the reader's language (the engine's words stay for anything else).
FIELD_MESSAGES: dict[str, Any] = {
    "reason": _l("A written reason is required."),
    "text": _l("Write a note or attach a file."),
    "flags": _l("Choose at least one flag."),
}


def field_message(exc: LaurelError) -> tuple[str | None, str]:
    """The field an engine error names and what to say about it."""
    field, message = field_error(exc)
    if field in FIELD_MESSAGES and ("required" in message or "choose" in message
                                    or "write a note" in message):
        return field, str(FIELD_MESSAGES[field])
    return field, message


email = acting_email  # who acts: the logged-in officer


def page_arg() -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except (TypeError, ValueError):
        return 1


def helpers() -> dict[str, Any]:
    """What every follow-up template uses: names, badges, amounts, dates."""
    return {
        "money": i18n.money, "percent": i18n.percent,
        "flag_status": lambda s: FLAG_STATUS_NAMES.get(s, s) if s else "",
        "severity_name": lambda s: SEVERITY_NAMES.get(s, s) if s else "",
        "money_status": lambda s: MONEY_NAMES.get(s, s) if s else "",
        "run_status": lambda s: STATUS_NAMES.get(s, s) if s else "",
        "badge": lambda s: BADGES.get(s or "", "light"),
        "when": i18n.when,
        "release_words": release_words,
    }


def held_amounts(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Decimal]]:
    """For (run, employee) pairs: the amounts flags held, by their status now.

    A payout held by flags names them in its explanation (``held_by``); once the flags
    are decided it is payable or forfeited, and still shown here as what the flags held.
    """
    out: dict[tuple[int, int], dict[str, Decimal]] = {}
    if not pairs:
        return out
    runs_ = {r for r, _e in pairs}
    emps = {e for _r, e in pairs}
    for run_id, emp, amount, status, exp in _db().execute(
            select(Outcome.run_id, Outcome.employee_id, Outcome.amount, Outcome.status,
                   Outcome.explanation)
            .where(Outcome.run_id.in_(runs_), Outcome.employee_id.in_(emps),
                   Outcome.amount.is_not(None))):
        if (run_id, emp) not in pairs or not (exp or {}).get("held_by"):
            continue
        sums = out.setdefault((run_id, emp), {s: ZERO for s in statements.MONEY_STATUSES})
        sums[status] = sums.get(status, ZERO) + amount
    return out


def officers() -> list[str]:
    return list(_db().scalars(select(User.email).where(User.role.in_(compliance.DECIDERS),
                                                       User.active).order_by(User.email)))


class ComplianceView(LaurelBaseView):
    """The compliance queue: every flag of every live run, and one flag's case."""

    resource = "compliance"

    def render(self, template: str, **kwargs: Any) -> str:
        return super().render(template, **helpers(), **kwargs)

    def _require_decider(self) -> None:
        # Checked before anything is read from the form: a refused POST changes nothing.
        if not may_write("compliance"):
            abort(403)

    # --- the queue --------------------------------------------------------------------

    def _filters(self) -> dict[str, str]:
        return {k: request.args.get(k, "").strip()
                for k in ("status", "severity", "rule", "team", "period", "employee",
                          "assignee")}

    @expose("/")
    def index(self) -> Any:
        return self._queue()

    def _queue(self, status: int = 200, chosen: list[int] | None = None,
               assignee: str = "", errors: dict[str, str] | None = None) -> Any:
        db = _db()
        f = self._filters()
        team_id = _team_scope()
        team = team_id
        if team is None and f["team"]:
            # a team by id (the list), or by name (typed, where there are too many to list);
            # an unknown team has no flags
            team = int(f["team"]) if f["team"].isdigit() else db.scalar(
                select(Team.id).where(Team.name == f["team"])) or -1
        filters = {"status": f["status"] if f["status"] in FLAG_STATUSES else None,
                   "severity": f["severity"] or None, "rule_key": f["rule"] or None,
                   "team_id": team, "period_code": f["period"] or None,
                   "employee_code": f["employee"] or None, "assignee": f["assignee"] or None}
        total = compliance.queue_count(db, **filters)
        page = page_arg()
        # newest first, as compliance.queue orders it
        # none to read where none are counted (the newest first of nothing read the
        # whole queue's key from its end)
        rows = [c for c, in read_page(db, compliance.queue_query(**filters), FlagCase.id,
                                      page, PAGE, total, descending=True, key_type=int)
                ] if total else []
        ids = [c.id for c in rows]
        if ids:  # one query for what each row shows
            rows = list(db.scalars(
                select(FlagCase).where(FlagCase.id.in_(ids))
                .options(joinedload(FlagCase.employee).joinedload(Employee.team),
                         # not the run's figures: a big run's are large, and would be
                         # decoded once a row
                         joinedload(FlagCase.run).defer(Run.figures).defer(Run.rules)
                         .joinedload(Run.period))
                .order_by(FlagCase.id.desc())))
        held = held_amounts({(c.run_id, c.employee_id) for c in rows})
        releases = {c.id: compliance.release_of(db, c) for c in rows}
        # the filter offers every rule by its name (and submits its key); a row names its
        # rule as the version its run used (the rows' rules are among every case's)
        rule_keys = compliance.distinct_values(db, FlagCase.rule_key)
        names = i18n.rule_names(db, rule_keys, run_ids={c.run_id for c in rows})
        if team_id is not None:
            teams = db.execute(select(Team.id, Team.name).where(Team.id == team_id)).all()
        elif db.scalar(select(func.count()).select_from(Team)) > TEAMS_LISTED:
            teams = None  # typed by name
        else:
            teams = db.execute(select(Team.id, Team.name).order_by(Team.name)).all()
        return self.render(
            "laurel/compliance/queue.html", cases=rows, held=held, releases=releases,
            total=total, page=page,
            pages=max(1, (total + PAGE - 1) // PAGE), filters=f, statuses=FLAG_STATUSES,
            severities=compliance.distinct_values(db, FlagCase.severity),
            rules=sorted(rule_keys, key=lambda k: (names[k].lower(), k)), rule_names=names,
            teams=teams, team_only=team_id is not None,
            periods=list(db.scalars(select(Period.code).order_by(Period.start.desc(),
                                                                 Period.end))),
            can_decide=may_write("compliance"), officers=officers(),
            chosen=set(chosen or []), assignee=assignee or email(),
            errors=errors or {}), status

    @expose("/assign", methods=("POST",))
    def assign_many(self) -> Any:
        self._require_decider()
        db = _db()
        chosen = [int(v) for v in request.form.getlist("case") if v.isdigit()]
        assignee = request.form.get("assignee", "").strip()
        try:
            cases = compliance.assign(db, chosen, assignee, email())
            db.commit()
        except NotFound as exc:
            db.rollback()
            return self._queue(400, chosen, assignee, {"assignee": i18n.say(exc)})
        except LaurelError as exc:
            db.rollback()
            field, message = field_message(exc)
            return self._queue(400, chosen, assignee,
                               {field if field in ("assignee", "flags") else "flags": message})
        flash(_("%(n)d flags assigned to %(email)s.", n=len(cases), email=assignee),
              "success")
        return redirect(_safe_next(request.form.get("next")) or url_for(".index"))

    # --- one flag ---------------------------------------------------------------------

    def _case(self, case_id: int) -> FlagCase:
        case = _db().get(FlagCase, case_id)
        team_id = _team_scope()
        # A sales manager does not learn that another team's flag exists: 404, not 403.
        if case is None or (team_id is not None and case.employee.team_id != team_id) \
                or not compliance.visible(_db(), case):
            abort(404)
        return case

    @expose("/<int:case_id>/")
    def case(self, case_id: int) -> Any:
        if _db().get(FlagCase, case_id) is None:  # merged into another case: it lives there
            merged = next((c.id for c in _db().scalars(select(FlagCase).where(
                FlagCase.former_ids.is_not(None))) if case_id in (c.former_ids or [])), None)
            if merged is not None:
                return redirect(url_for(".case", case_id=merged))
        return self._case_page(case_id)

    def _case_page(self, case_id: int, status: int = 200, typed: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None) -> Any:
        db = _db()
        case = self._case(case_id)
        outcome = case.outcome
        exp = outcome.explanation or {}
        held = [o for o in db.scalars(select(Outcome).where(
            Outcome.run_id == case.run_id, Outcome.employee_id == case.employee_id,
            Outcome.amount.is_not(None)).order_by(Outcome.id))
            if case.rule_key in ((o.explanation or {}).get("held_by") or [])]
        # Its history: its own entries and those of the cases merged into it.
        ids = [str(i) for i in [case.id, *(case.former_ids or [])]]
        trail = db.scalars(select(AuditLog).where(AuditLog.entity == "flag",
                                                  AuditLog.entity_id.in_(ids))
                           .order_by(AuditLog.id)).all()
        # The runs of its period that raised its flag: a run that carries a case over as it
        # was counts it in its own entry, not in the case's history (compliance.carry_cases)
        raised_by = list(db.scalars(
            select(Outcome.run_id).join(Run, Run.id == Outcome.run_id)
            .where(Run.period_id == case.period_id, Outcome.kind == "flag",
                   Outcome.employee_id == case.employee_id, Outcome.rule_key == case.rule_key)
            .order_by(Outcome.run_id)))
        lang = "zh" if i18n.is_chinese() else "en"
        st = statements.statement(db, case.run, case.employee.code, lang=lang)
        r = statements.reader(db, lang)
        return self.render(
            "laurel/compliance/case.html", case=case, outcome=outcome,
            words=statements.explain_in_words(outcome.kind, exp, lang, r.label, dict(r.types)),
            fact=r.value, fact_label=r.label,
            facts=exp.get("facts") or {}, held=held, trail=trail, raised_by=raised_by,
            totals=st.totals,
            rule_names=i18n.rule_names(db, {case.rule_key, *(o.rule_key for o in held)},
                                       case.run.rules),
            release=compliance.release_of(db, case),
            currency=st.currency, can_decide=may_write("compliance"), officers=officers(),
            typed=typed or {}, errors=errors or {},
            open_case=case.status in ("open", "in_review"),
            refusal=compliance.decision_refusal(db, case)), status

    @expose("/<int:case_id>/assign", methods=("POST",))
    def assign(self, case_id: int) -> Any:
        self._require_decider()
        db = _db()
        self._case(case_id)
        assignee = request.form.get("assignee", "").strip()
        try:
            compliance.assign(db, [case_id], assignee, email())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            _field, message = field_message(exc)
            return self._case_page(case_id, 400, {"assignee": assignee},
                                   {"assignee": message})
        flash(_("Flag %(id)s assigned to %(email)s.", id=case_id, email=assignee), "success")
        return redirect(url_for(".case", case_id=case_id))

    @expose("/<int:case_id>/note", methods=("POST",))
    def note(self, case_id: int) -> Any:
        self._require_decider()
        db = _db()
        self._case(case_id)
        text = request.form.get("text", "")
        files = uploads()
        filename, content_type, content = files[0] if files else (None, None, None)
        try:
            compliance.add_note(db, case_id, email(), text, filename=filename,
                                content=content, content_type=content_type)
            db.commit()
        except LaurelError as exc:
            db.rollback()
            field, message = field_message(exc)
            return self._case_page(case_id, 400, {"text": text},
                                   {"file" if field == "file" else "text": message})
        flash(_("Note added."), "success")
        return redirect(url_for(".case", case_id=case_id))

    @expose("/<int:case_id>/decide", methods=("POST",))
    def decide(self, case_id: int) -> Any:
        self._require_decider()
        db = _db()
        self._case(case_id)
        typed = {k: request.form.get(k, "") for k in ("decision", "reason")}
        try:
            case = compliance.decide(db, case_id, typed["decision"], typed["reason"], email())
            decision = case.status
            db.commit()
        except LaurelError as exc:
            db.rollback()
            field, message = field_message(exc)
            return self._case_page(case_id, 400, typed,
                                   {field if field in typed else "decide": message})
        flash(_("Flag %(id)s is %(status)s.", id=case_id,
                status=FLAG_STATUS_NAMES[decision]), "success")
        return redirect(url_for(".case", case_id=case_id))

    @expose("/<int:case_id>/evidence/<int:note_id>")
    def evidence(self, case_id: int, note_id: int) -> Any:
        self._case(case_id)
        note = _db().get(FlagNote, note_id)
        if note is None or note.case_id != case_id or note.content is None:
            abort(404)
        return attachment(note.content, note.filename, note.content_type,
                          f"evidence-{note.id}")


def add_views(admin: Admin) -> None:
    """Add the compliance queue."""
    admin.add_view(ComplianceView(_l("Flags"), _l("Compliance"), endpoint="compliance",
                                  url="/admin/compliance"))
