"""Runs (start, progress, approve, lock, cancel), outcomes, statements, payroll exports.

A run started here is the same Celery work as the back office's and the command line's
(engine.jobs); approve and lock are engine.lifecycle's, with its rules (another person
approves, a stale run is refused, a locked period changes no more). The outcome list
streams: its rows are written as they are read, never the run whole in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, stream_with_context, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api import schemas as s
from api.core import (
    ApiProblem,
    caller,
    db,
    decode_cursor,
    encode_cursor,
    etag_response,
    idempotent,
    json_body,
    listing,
    may,
    one,
    page,
    transition,
)
from engine import jobs, lifecycle, statements
from engine.models import Employee, Outcome, Period, Run, RunJob, Team

runs = Blueprint("api_runs", __name__, url_prefix="/runs",
                 description="Runs of a period: start, progress, approve, lock, cancel; "
                 "their outcomes, statements and payroll export")
job_bp = Blueprint("api_jobs", __name__, url_prefix="/jobs",
                   description="Run jobs: the progress of a run being calculated")
BLUEPRINTS = [runs, job_bp]

CONTENT = {"csv": "text/csv; charset=utf-8", "json": "application/json",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _run(run_id: int) -> Run:
    return one(Run, run_id, "run", "read", "runs")


def _job(job_id: int) -> RunJob:
    return one(RunJob, job_id, "run job", "run", "overview")


def run_doc(run: Run) -> dict[str, Any]:
    return s.RunSchema().dump(run)


def job_doc(job: RunJob) -> dict[str, Any]:
    doc = s.JobSchema().dump(job)
    doc["work"] = jobs.work_of(db(), job)
    return doc


@runs.route("")
class Runs(MethodView):
    @runs.arguments(s.RunQuery, location="query")
    @runs.response(200, s.page_of(s.RunSchema, "RunPage"))
    def get(self, args: dict[str, Any]) -> Any:
        """Runs, newest first; filter by period and status."""
        may("read", "runs")
        query = select(Run)
        if args.get("period"):
            query = query.where(Run.period_id.in_(
                select(Period.id).where(Period.code == args["period"])))
        if args.get("status"):
            query = query.where(Run.status == args["status"])
        rows, cursor = page(query, Run, ("id", "status"), args.get("sort"), args.get("cursor"),
                            args["limit"], default="-id")
        return listing(rows, cursor)

    @runs.doc(requestBody={"required": True, "content": {"application/json": {
        "schema": s.RunStart}}})
    @runs.alt_response(202, schema=s.JobSchema, success=True,
                       description="The run job, queued: poll /jobs/{id}")
    @idempotent
    def post(self) -> Any:
        """Start a run of a period: the same Celery work as the back office and
        ``laurel run`` (engine.jobs). Answers 202 with the job to poll."""
        may("run", "start")
        body = json_body()
        code = body.get("period") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code.strip():
            raise ApiProblem(422, "field period: the period to run is needed", "invalid",
                             [{"field": "period", "reason": "required"}])
        job = transition(lambda: jobs.start(db(), code.strip(), caller().email))
        return job_doc(job), 202


@runs.after_request
def _dispatch_started(response: Response) -> Response:
    """Hand a started job to Celery once its start is committed (not on a replay)."""
    from flask import request

    if (request.method == "POST" and request.path.endswith("/runs")
            and response.status_code == 202
            and response.headers.get("Idempotent-Replayed") != "true"):
        job_id = json.loads(response.get_data()).get("id")
        jobs.dispatch(job_id)
        response.headers["Location"] = url_for("api_jobs.OneJob", job_id=job_id)
    return response


@runs.route("/<int:run_id>")
class OneRun(MethodView):
    @runs.response(200, s.RunSchema)
    @runs.alt_response(304, description="Not modified (If-None-Match)")
    def get(self, run_id: int) -> Any:
        """One run; an ETag, and 304 to an If-None-Match that has it."""
        return etag_response(run_doc(_run(run_id)))


def _step(run_id: int, step: str, call: Any) -> tuple[dict[str, Any], int]:
    _run(run_id)
    may("run", step)
    return run_doc(transition(call)), 200


@runs.route("/<int:run_id>/approve")
class Approve(MethodView):
    @runs.alt_response(200, schema=s.RunSchema, success=True)
    @idempotent
    def post(self, run_id: int) -> Any:
        """Approve a calculated run: not by the person who started it; refused (409) when
        the run is stale, not calculated, or its period locked."""
        return _step(run_id, "approve",
                     lambda: lifecycle.approve(db(), run_id, caller().email))


@runs.route("/<int:run_id>/lock")
class Lock(MethodView):
    @runs.doc(requestBody={"required": False, "content": {"application/json": {
        "schema": s.LockIn}}})
    @runs.alt_response(200, schema=s.RunSchema, success=True)
    @idempotent
    def post(self, run_id: int) -> Any:
        """Lock an approved run and its period; with flags still open, only with a reason."""
        from flask import request

        body = json_body() if request.get_data().strip() else {}
        reason = body.get("open_flags_reason") if isinstance(body, dict) else None
        if reason is not None and not isinstance(reason, str):
            raise ApiProblem(422, "field open_flags_reason: must be a string", "invalid")
        return _step(run_id, "lock",
                     lambda: lifecycle.lock(db(), run_id, caller().email,
                                            open_flags_reason=reason))


@runs.route("/<int:run_id>/cancel")
class Cancel(MethodView):
    @runs.alt_response(200, schema=s.JobSchema, success=True)
    @idempotent
    def post(self, run_id: int) -> Any:
        """Cancel a run still being calculated: its job stops, nothing of it is kept."""
        _run(run_id)
        may("run", "start")
        job = db().scalar(select(RunJob).where(RunJob.run_id == run_id))
        if job is None:
            raise ApiProblem(409, f"run {run_id} has no job being calculated: there is "
                             "nothing to cancel", "not-live-run")
        transition(lambda: jobs.cancel(db(), job.id, caller().email))
        return job_doc(job), 200


@job_bp.route("/<int:job_id>")
class OneJob(MethodView):
    @job_bp.response(200, s.JobSchema)
    def get(self, job_id: int) -> Any:
        """A run job's progress: status, employees done of total, the run once made."""
        job = jobs.watch(db(), _job(job_id))
        response = current_app.response_class(json.dumps(job_doc(job), default=str),
                                              mimetype="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response


@job_bp.route("/<int:job_id>/cancel")
class CancelJob(MethodView):
    @job_bp.alt_response(200, schema=s.JobSchema, success=True)
    @idempotent
    def post(self, job_id: int) -> Any:
        """Cancel a run job: its run is cancelled and nothing of it is kept."""
        _job(job_id)
        may("run", "start")
        job = transition(lambda: jobs.cancel(db(), job_id, caller().email))
        return job_doc(job), 200


# --- outcomes: streamed -------------------------------------------------------------------


def _outcome_query(run: Run, args: dict[str, Any]) -> Any:
    query = (select(Outcome.id, Outcome.run_id, Employee.code, Team.name, Outcome.rule_key,
                    Outcome.kind, Outcome.amount, Outcome.currency, Outcome.value,
                    Outcome.status, Outcome.explanation)
             .join(Employee, Employee.id == Outcome.employee_id)
             .join(Team, Team.id == Employee.team_id)
             .where(Outcome.run_id == run.id))
    team = caller().team
    if team is not None:
        query = query.where(Employee.team_id == team)
    if args.get("employee"):
        query = query.where(Employee.code == args["employee"])
    if args.get("team"):
        query = query.where(Team.name == args["team"])
    if args.get("rule"):
        query = query.where(Outcome.rule_key == args["rule"])
    if args.get("kind"):
        query = query.where(Outcome.kind == args["kind"])
    if args.get("status"):
        query = query.where(Outcome.status == args["status"])
    return query


def _outcome(row: Any, period: str) -> dict[str, Any]:
    """An outcome as ``laurel outcomes`` writes it (CONTRACT.md), with its id and team."""
    return {"id": row[0], "run_id": row[1], "period": period, "employee_code": row[2],
            "team": row[3],
            "rule_key": row[4], "kind": row[5],
            "amount": None if row[6] is None else f"{row[6]:.2f}", "currency": row[7],
            "value": row[8], "status": row[9], "explanation": row[10]}


def _stream(query: Any, after: int, limit: int | None) -> Iterator[Any]:
    """Rows read from the database in slices as they are sent (server-side cursor)."""
    from engine.db import get_engine

    query = query.where(Outcome.id > after).order_by(Outcome.id)
    if limit is not None:
        query = query.limit(limit)
    engine = get_engine(current_app.config["DATABASE_URL"])
    with engine.connect() as conn:
        yield from conn.execution_options(yield_per=2000).execute(query)


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    at = decode_cursor(cursor)
    if at.get("sort") != "outcomes":
        raise ApiProblem(400, "the cursor belongs to another list: start from the first page")
    return int(at["id"])


@runs.route("/<int:run_id>/outcomes")
class Outcomes(MethodView):
    @runs.arguments(s.OutcomeQuery, location="query")
    @runs.response(200, s.page_of(s.OutcomeSchema, "OutcomePage"))
    def get(self, args: dict[str, Any], run_id: int) -> Any:
        """A page of the run's outcomes (a sales manager: their team's), filtered by
        employee, team, rule, kind and status; written out as they are read."""
        run = _run(run_id)
        query, code = _outcome_query(run, args), run.period.code
        limit = args["limit"]
        after = _after(args.get("cursor"))

        def body() -> Iterator[str]:
            yield '{"items": ['
            last, count, more = None, 0, False
            for row in _stream(query, after, limit + 1):
                if count == limit:
                    more = True
                    break
                item = json.dumps(_outcome(row, code), ensure_ascii=False, default=str)
                yield ("," if count else "") + item
                last, count = row[0], count + 1
            cursor = encode_cursor({"sort": "outcomes", "id": last}) if more else None
            yield '], "next_cursor": ' + json.dumps(cursor) + "}"

        return Response(stream_with_context(body()), mimetype="application/json")


@runs.route("/<int:run_id>/outcomes.ndjson")
class OutcomeStream(MethodView):
    @runs.arguments(s.OutcomeQuery, location="query")
    @runs.response(200, description="Every outcome, one JSON object a line (NDJSON)",
                   content_type="application/x-ndjson")
    def get(self, args: dict[str, Any], run_id: int) -> Any:
        """Every outcome of the run, one JSON object a line, streamed from the database
        (a run of any size; no paging)."""
        run = _run(run_id)
        query, code = _outcome_query(run, args), run.period.code

        def body() -> Iterator[str]:
            for row in _stream(query, _after(args.get("cursor")), None):
                yield json.dumps(_outcome(row, code), ensure_ascii=False, default=str) + "\n"

        return Response(stream_with_context(body()), mimetype="application/x-ndjson")


# --- statements and the payroll export ----------------------------------------------------


@runs.route("/<int:run_id>/statements/<code>")
class Statement(MethodView):
    @runs.arguments(s.StatementQuery, location="query")
    @runs.response(200, s.StatementSchema)
    @runs.alt_response(304, description="Not modified (If-None-Match)")
    def get(self, args: dict[str, Any], run_id: int, code: str) -> Any:
        """One employee's statement of a run, lines in words (en or zh); an ETag."""
        run = _run(run_id)
        employee = db().scalar(select(Employee).where(Employee.code == code))
        team = caller().team
        # As the back office: another team's employee is not found (404), not refused.
        if employee is None or (team is not None and employee.team_id != team):
            raise ApiProblem(404, f"employee {code} does not exist"
                             + (" in your team" if team is not None else ""))
        st = statements.statement(db(), run, code, lang=args["lang"])
        return etag_response({
            "run_id": run.id, "period": run.period.code, "employee_code": employee.code,
            "employee_name": employee.name, "currency": st.currency,
            "lines": [{"rule_key": ln.rule_key, "rule_name": ln.rule_name, "kind": ln.kind,
                       "amount": None if ln.amount is None else f"{ln.amount:.2f}",
                       "currency": ln.currency, "value": ln.value, "status": ln.status,
                       "words": ln.words} for ln in st.lines],
            "totals": {k: f"{v:.2f}" for k, v in st.totals.items()}})


@runs.route("/<int:run_id>/export")
class Export(MethodView):
    @runs.arguments(s.ExportQuery, location="query")
    @runs.response(200, description="The payroll file (CSV, XLSX or JSON)",
                   content_type="application/json")
    def get(self, args: dict[str, Any], run_id: int) -> Any:
        """The payroll export of an approved or locked run (with draft=true, a calculated
        one, or an approved one whose period's results changed after it read them: the file
        says DRAFT): the same file as the back office's and ``laurel export``."""
        _run(run_id)
        may("run", "overview")
        fmt = args["format"]
        # refusals come before the first piece; the file is sent as it is read
        data = transition(lambda: lifecycle.export_stream(
            db(), run_id, fmt, draft=args["draft"], totals_rows=True if fmt == "xlsx" else None))
        response = current_app.response_class(stream_with_context(data),
                                              content_type=CONTENT[fmt])
        response.headers["Content-Disposition"] = \
            f'attachment; filename="laurel-run-{run_id}.{fmt}"'
        return response
