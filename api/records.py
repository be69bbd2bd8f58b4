"""Follow-up and the record: compliance cases and their transitions, PIPs, promotion
candidates, and the audit log.

Each transition is the engine's (engine.compliance, engine.followup), with its own role
checks on top of the role table: a compliance officer decides flags, HR decides PIPs, a
sales manager nominates their own team's candidates. A sales manager sees their team's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api import schemas as s
from api.core import (
    caller,
    db,
    idempotent,
    listing,
    may,
    one,
    page,
    transition,
)
from engine import compliance, followup
from engine.models import AuditLog, Candidate, Employee, FlagCase, Pip, Run, Team

cases = Blueprint("api_cases", __name__, url_prefix="/compliance-cases",
                  description="Compliance cases (flags): read, assign, note, decide")
pips = Blueprint("api_pips", __name__, url_prefix="/pips",
                 description="Performance improvement plans: read, decide, close (HR)")
candidates = Blueprint("api_candidates", __name__, url_prefix="/candidates",
                       description="Promotion candidates: read, nominate, accept, decline")
audit_bp = Blueprint("api_audit", __name__, url_prefix="/audit-log",
                     description="The audit log: who changed what, when, and through which "
                     "token")
BLUEPRINTS = [cases, pips, candidates, audit_bp]


def _employee_filters(query: Any, args: dict[str, Any], employee_column: Any) -> Any:
    team = caller().team
    if team is not None:
        query = query.where(employee_column.in_(
            select(Employee.id).where(Employee.team_id == team)))
    if args.get("employee"):
        query = query.where(employee_column.in_(
            select(Employee.id).where(Employee.code == args["employee"])))
    if args.get("team"):
        query = query.where(employee_column.in_(
            select(Employee.id).join(Team, Team.id == Employee.team_id)
            .where(Team.name == args["team"])))
    return query


# --- compliance cases ---------------------------------------------------------------------


def _case(case_id: int) -> FlagCase:
    # not a case a running run opened early (compliance.visible)
    return one(FlagCase, case_id, "compliance case", "read", "compliance",
               team_of=lambda c: c.employee_id,
               visible=lambda c: compliance.visible(db(), c))


@cases.route("")
class Cases(MethodView):
    @cases.arguments(s.CaseQuery, location="query")
    @cases.response(200, s.page_of(s.CaseSchema, "CasePage"))
    def get(self, args: dict[str, Any]) -> Any:
        """Flags of live runs, newest first; filter by period, status, employee, team, rule."""
        may("read", "compliance")
        query = compliance.queue_query(status=args.get("status"), rule_key=args.get("rule"),
                                       period_code=args.get("period")).options(
            selectinload(FlagCase.employee), selectinload(FlagCase.period))
        query = _employee_filters(query, args, FlagCase.employee_id)
        rows, cursor = page(query, FlagCase, ("id", "status"), args.get("sort"),
                            args.get("cursor"), args["limit"], default="-id")
        return listing(rows, cursor)


@cases.route("/<int:case_id>")
class OneCase(MethodView):
    @cases.response(200, s.CaseSchema)
    def get(self, case_id: int) -> Any:
        """One compliance case."""
        return _case(case_id)


@cases.route("/<int:case_id>/assign")
class Assign(MethodView):
    @cases.arguments(s.AssignIn, location="json", as_kwargs=True)
    @cases.alt_response(200, schema=s.CaseSchema, success=True)
    @idempotent
    def post(self, case_id: int, assignee: str) -> Any:
        """Put an open case in review, assigned to a compliance officer."""
        _case(case_id)
        may("write", "compliance")
        done = transition(lambda: compliance.assign(db(), [case_id], assignee,
                                                     caller().email))
        return s.CaseSchema().dump(done[0]), 200


@cases.route("/<int:case_id>/notes")
class Notes(MethodView):
    @cases.arguments(s.NoteIn, location="json", as_kwargs=True)
    @cases.alt_response(201, schema=s.CaseSchema, success=True)
    @idempotent
    def post(self, case_id: int, text: str) -> Any:
        """Add a note to a case."""
        case = _case(case_id)
        may("write", "compliance")
        transition(lambda: compliance.add_note(db(), case_id, caller().email, text))
        return s.CaseSchema().dump(case), 201


@cases.route("/<int:case_id>/decide")
class Decide(MethodView):
    @cases.arguments(s.DecideIn, location="json", as_kwargs=True)
    @cases.alt_response(200, schema=s.CaseSchema, success=True)
    @idempotent
    def post(self, case_id: int, decision: str, reason: str) -> Any:
        """Confirm or dismiss a case in review, with a written reason; held pay follows."""
        _case(case_id)
        may("write", "compliance")
        case = transition(lambda: compliance.decide(db(), case_id, decision, reason,
                                                     caller().email))
        return s.CaseSchema().dump(case), 200


# --- PIPs ---------------------------------------------------------------------------------


def _pip(pip_id: int) -> Pip:
    return one(Pip, pip_id, "PIP", "read", "pips", team_of=lambda p: p.employee_id)


@pips.route("")
class Pips(MethodView):
    @pips.arguments(s.PipQuery, location="query")
    @pips.response(200, s.page_of(s.PipSchema, "PipPage"))
    def get(self, args: dict[str, Any]) -> Any:
        """PIPs, newest first; filter by status, employee and team."""
        may("read", "pips")
        query = select(Pip).options(selectinload(Pip.employee))
        if args.get("status"):
            query = query.where(Pip.status == args["status"])
        query = _employee_filters(query, args, Pip.employee_id)
        rows, cursor = page(query, Pip, ("id", "status"), args.get("sort"), args.get("cursor"),
                            args["limit"], default="-id")
        return listing(rows, cursor)


@pips.route("/<int:pip_id>")
class OnePip(MethodView):
    @pips.response(200, s.PipSchema)
    def get(self, pip_id: int) -> Any:
        """One PIP."""
        return _pip(pip_id)


@pips.route("/<int:pip_id>/decide")
class DecidePip(MethodView):
    @pips.arguments(s.PipDecision, location="json", as_kwargs=True)
    @pips.alt_response(200, schema=s.PipSchema, success=True)
    @idempotent
    def post(self, pip_id: int, decision: str, reason: str,
             new_end: dt.date | None = None) -> Any:
        """HR's decision on an active PIP: passed, extended (with new_end), role_change,
        exit; or closed early (closed, today)."""
        _pip(pip_id)
        may("write", "pips")
        if decision == "closed":
            pip = transition(lambda: followup.close_pip(db(), pip_id, reason, caller().email,
                                                         on=dt.date.today()))
        else:
            pip = transition(lambda: followup.decide_pip(db(), pip_id, decision, reason,
                                                          caller().email, new_end=new_end))
        return s.PipSchema().dump(pip), 200


# --- promotion candidates -----------------------------------------------------------------


@candidates.route("")
class Candidates(MethodView):
    @candidates.arguments(s.CandidateQuery, location="query")
    @candidates.response(200, s.page_of(s.CandidateSchema, "CandidatePage"))
    def get(self, args: dict[str, Any]) -> Any:
        """Candidates of approved and locked runs; filter by status, employee and team."""
        may("read", "candidates")
        query = select(Candidate).options(selectinload(Candidate.employee)).where(
            Candidate.run_id.in_(
            select(Run.id).where(Run.status.in_(("approved", "locked")))))
        if args.get("status"):
            query = query.where(Candidate.status == args["status"])
        query = _employee_filters(query, args, Candidate.employee_id)
        rows, cursor = page(query, Candidate, ("id", "status"), args.get("sort"),
                            args.get("cursor"), args["limit"], default="-id")
        return listing(rows, cursor)


@candidates.route("/<int:candidate_id>/move")
class Move(MethodView):
    @candidates.arguments(s.CandidateMove, location="json", as_kwargs=True)
    @candidates.alt_response(200, schema=s.CandidateSchema, success=True)
    @idempotent
    def post(self, candidate_id: int, status: str, reason: str = "") -> Any:
        """Nominate (a sales manager, their team), accept or decline (HR) a candidate."""
        one(Candidate, candidate_id, "candidate", "read", "candidates",
            team_of=lambda c: c.employee_id)
        may("write", "candidates")
        cand = transition(lambda: followup.move_candidate(db(), candidate_id, status, reason,
                                                           caller().email))
        return s.CandidateSchema().dump(cand), 200


# --- the audit log ------------------------------------------------------------------------


@audit_bp.route("")
class Audit(MethodView):
    @audit_bp.arguments(s.AuditQuery, location="query")
    @audit_bp.response(200, s.page_of(s.AuditSchema, "AuditPage"))
    def get(self, args: dict[str, Any]) -> Any:
        """The audit log, newest first; filter by actor, action and entity."""
        may("read", "audit_log")
        query = select(AuditLog)
        for name in ("actor", "action", "entity"):
            if args.get(name):
                query = query.where(getattr(AuditLog, name) == args[name])
        rows, cursor = page(query, AuditLog, ("id",), args.get("sort"), args.get("cursor"),
                            args["limit"], default="-id")
        return listing(rows, cursor)
