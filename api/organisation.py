"""Employees and teams (upsert by code and name), periods, metrics, results, customer scores.

Batches go through the file imports' own code (engine.imports, engine.reviews) as a table
whose rows are the items: the same checks, the same speed, all items or none; a refusal
names the item's index, the field and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import false, select
from sqlalchemy.orm import selectinload

from api import schemas as s
from api.core import (
    ApiProblem,
    batch_problem,
    caller,
    cell,
    db,
    idempotent,
    json_body,
    listing,
    may,
    page,
    transition,
)
from engine import periods
from engine.errors import ImportFileError
from engine.imports import (
    import_employee_table,
    import_result_table,
    table_rows,
    upsert_team,
)
from engine.models import Employee, Metric, Period, ResultRow, Team
from engine.rollup import has_value, row_values

employees = Blueprint("api_employees", __name__, url_prefix="/employees",
                      description="Employees: read (a sales manager: their team), upsert by code")
teams = Blueprint("api_teams", __name__, url_prefix="/teams",
                  description="Teams: read, upsert by name")
period_bp = Blueprint("api_periods", __name__, url_prefix="/periods",
                      description="Periods (made by the first results of a period)")
metrics = Blueprint("api_metrics", __name__, url_prefix="/metrics",
                    description="The metric catalog")
results = Blueprint("api_results", __name__, url_prefix="/results",
                    description="Period results: read, and post in batches as an import")
reviews = Blueprint("api_reviews", __name__, url_prefix="/review-cycles",
                    description="Customer scores of a review cycle, as their import")
BLUEPRINTS = [employees, teams, period_bp, metrics, results, reviews]


def _items(body: Any) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ApiProblem(422, "the body is an object with items: a list of objects", "invalid",
                         [{"item": None, "field": "items", "reason": "a list is needed"}])
    items = body["items"]
    if not items:
        raise ApiProblem(422, "field items: the batch is empty; nothing was stored", "invalid",
                         [{"item": None, "field": "items", "reason": "the batch is empty"}])
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiProblem(422, f"item {index}: must be an object; nothing was stored",
                             "invalid", [{"item": index, "field": None,
                                          "reason": "must be an object"}])
    return items


def _run_batch(name: str, header: list[str], rows: list[list[str]],
               load: Callable[..., Any], field_of: Callable[[str], str],
               items: list[dict[str, Any]], key_of: Callable[[dict[str, Any], str], bool]
               ) -> Any:
    try:
        return load(db(), name, header, table_rows(name, header, rows))
    except ImportFileError as exc:
        raise batch_problem(exc, field_of, lambda column: next(
            (i for i, item in enumerate(items) if key_of(item, column)), 0)) from None


def _report(report: Any) -> dict[str, Any]:
    return {"kind": report.kind, "rows": report.rows, "created": report.created,
            "updated": report.updated, "periods": report.periods}


# --- employees ----------------------------------------------------------------------------


def _employee_table(items: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header: list[str] = []
    for item in items:
        header.extend(k for k in item if k not in header)
    rows = [[cell(item.get(col), index, col) for col in header]
            for index, item in enumerate(items)]
    return header, rows


def load_employees(items: list[dict[str, Any]]) -> Any:
    may("import", "employees")
    header, rows = _employee_table(items)
    return _run_batch("employees", header, rows, import_employee_table, lambda c: c, items,
                      lambda item, column: column in item)


def _one(resource: str, query: Any, what: str, scoped: bool = False) -> Any:
    """The one row of ``query`` the caller may read, else 404 (another team's is not found)."""
    may("read", resource)
    found = db().scalar(query)
    if found is None:
        raise ApiProblem(404, f"{what} does not exist"
                         + (" in your team" if scoped and caller().team is not None else ""))
    return found


def _scoped(query: Any, team_column: Any) -> Any:
    team = caller().team
    return query.where(team_column == team) if team is not None else query


@employees.route("")
class Employees(MethodView):
    @employees.arguments(s.EmployeeQuery, location="query")
    @employees.response(200, s.page_of(s.EmployeeSchema, "EmployeePage"))
    def get(self, args: dict[str, Any]) -> Any:
        """Employees, by code (a sales manager: their own team only)."""
        may("read", "employee")
        # what the schema reads of each row, loaded a page at a time, not a query a row
        query = _scoped(select(Employee).options(
            selectinload(Employee.team), selectinload(Employee.level),
            selectinload(Employee.manager)), Employee.team_id)
        if args.get("team"):
            query = query.where(Employee.team_id.in_(
                select(Team.id).where(Team.name == args["team"])))
        rows, cursor = page(query, Employee, ("id", "code", "name"), args.get("sort"),
                            args.get("cursor"), args["limit"], default="code")
        return listing(rows, cursor)

    @employees.doc(requestBody={"required": True, "content": {"application/json": {
        "schema": s.EmployeeBatch}}})
    @employees.alt_response(200, schema=s.ImportReportSchema, success=True)
    @idempotent
    def post(self) -> Any:
        """Create or update employees and their teams: a batch, checked as the import's
        file is (same columns), stored whole or refused whole."""
        report = load_employees(_items(json_body()))
        return _report(report), 200


@employees.route("/<code>")
class OneEmployee(MethodView):
    @employees.response(200, s.EmployeeSchema)
    def get(self, code: str) -> Any:
        """One employee by code."""
        return _one("employee", _scoped(select(Employee), Employee.team_id)
                    .where(Employee.code == code), f"employee {code}", scoped=True)

    @employees.doc(requestBody={"required": True, "content": {"application/json": {
        "schema": s.EmployeeIn}}})
    @employees.alt_response(200, schema=s.ImportReportSchema, success=True)
    @idempotent
    def put(self, code: str) -> Any:
        """Create or update the employee with this code (the import's checks)."""
        item = json_body()
        if not isinstance(item, dict):
            raise ApiProblem(422, "the body is an object: the employee's fields", "invalid")
        if item.get("code", code) != code:
            raise ApiProblem(422, f"field code: {item['code']!r} differs from the path's "
                             f"{code!r}", "invalid",
                             [{"item": 0, "field": "code", "reason": "differs from the path"}])
        item["code"] = code
        return _report(load_employees([item])), 200


# --- teams --------------------------------------------------------------------------------


@teams.route("")
class Teams(MethodView):
    @teams.arguments(s.PageQuery, location="query")
    @teams.response(200, s.page_of(s.TeamSchema, "TeamPage"))
    def get(self, args: dict[str, Any]) -> Any:
        """Teams by name (a sales manager: their own)."""
        may("read", "team")
        rows, cursor = page(_scoped(select(Team).options(selectinload(Team.manager)), Team.id),
                            Team, ("id", "name"),
                            args.get("sort"), args.get("cursor"), args["limit"],
                            default="name")
        return listing(rows, cursor)


@teams.route("/<name>")
class OneTeam(MethodView):
    @teams.response(200, s.TeamSchema)
    def get(self, name: str) -> Any:
        """One team by name."""
        return _one("team", _scoped(select(Team), Team.id).where(Team.name == name),
                    f"team {name}", scoped=True)

    @teams.arguments(s.TeamIn, location="json", as_kwargs=True)
    @teams.alt_response(200, schema=s.TeamSchema, success=True)
    @idempotent
    def put(self, name: str, region: str | None = None, stage: str | None = None) -> Any:
        """Create the team of this name, or change its region and stage."""
        may("write", "team")
        try:
            team, _created = upsert_team(db(), name, region, stage)
        except ImportFileError as exc:
            raise ApiProblem(422, f"field {exc.column}: {exc.reason}", "invalid",
                             [{"item": 0, "field": exc.column, "reason": exc.reason}]) from None
        return s.TeamSchema().dump(team), 200


# --- periods and metrics ------------------------------------------------------------------


@period_bp.route("")
class Periods(MethodView):
    @period_bp.arguments(s.PeriodQuery, location="query")
    @period_bp.response(200, s.page_of(s.PeriodSchema, "PeriodPage"))
    def get(self, args: dict[str, Any]) -> Any:
        """Periods, by code."""
        may("read", "period")
        query = select(Period)
        for name in ("kind", "status"):
            if args.get(name):
                query = query.where(getattr(Period, name) == args[name])
        rows, cursor = page(query, Period, ("id", "code"), args.get("sort"), args.get("cursor"),
                            args["limit"], default="code")
        return listing(rows, cursor)


@period_bp.route("/<code>")
class OnePeriod(MethodView):
    @period_bp.response(200, s.PeriodSchema)
    def get(self, code: str) -> Any:
        """One period by code (YYYY-MM, YYYY-Qn, YYYY)."""
        may("read", "period")
        found = periods.get(db(), code)
        if found is None:
            raise ApiProblem(404, f"period {code} does not exist (a period is made by its "
                             "first results)")
        return found


@period_bp.route("/<code>/reopen")
class Reopen(MethodView):
    @period_bp.arguments(s.ReopenIn, location="json", as_kwargs=True)
    @period_bp.alt_response(200, schema=s.PeriodSchema, success=True)
    @idempotent
    def post(self, code: str, reason: str) -> Any:
        """Reopen a locked period (hr_admin), with a written reason: its results and runs
        may change again."""
        from engine.lifecycle import reopen_period

        may("read", "period")
        may("run", "reopen")
        transition(lambda: reopen_period(db(), code, caller().email, reason))
        return s.PeriodSchema().dump(periods.require(db(), code)), 200


@metrics.route("")
class Metrics(MethodView):
    @metrics.arguments(s.PageQuery, location="query")
    @metrics.response(200, s.page_of(s.MetricSchema, "MetricPage"))
    def get(self, args: dict[str, Any]) -> Any:
        """The metric catalog, by key."""
        may("read", "metric")
        rows, cursor = page(select(Metric), Metric, ("id", "key"), args.get("sort"),
                            args.get("cursor"), args["limit"], default="key")
        return listing(rows, cursor)


@metrics.route("/<key>")
class OneMetric(MethodView):
    @metrics.response(200, s.MetricSchema)
    def get(self, key: str) -> Any:
        """One metric by key."""
        return _one("metric", select(Metric).where(Metric.key == key), f"metric {key}")

    @metrics.arguments(s.MetricIn, location="json", as_kwargs=True)
    @metrics.alt_response(200, schema=s.MetricSchema, success=True)
    @idempotent
    def put(self, key: str, **values: Any) -> Any:
        """Create the metric of this key or change it (hr_admin), with the back office's
        checks: a formula names known metrics of compatible types, bounds lie in the
        type's range."""
        from engine.metrics import save_metric

        may("write", "metric")
        metric, _created = save_metric(db(), key, values)
        return s.MetricSchema().dump(metric), 200


# --- results ------------------------------------------------------------------------------


def _result_table(items: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    keys: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        unknown = [k for k in item if k not in ("period", "employee_code", "values")]
        if unknown:
            raise ApiProblem(422, f"item {index}, field {unknown[0]}: unknown field (an item "
                             "has period, employee_code and values); nothing was stored",
                             "invalid", [{"item": index, "field": unknown[0],
                                          "reason": "unknown field"}])
        values = item.get("values", {})
        if not isinstance(values, dict):
            raise ApiProblem(422, f"item {index}, field values: must be an object of metric "
                             "keys and values; nothing was stored", "invalid",
                             [{"item": index, "field": "values",
                               "reason": "must be an object"}])
        for key in values:
            if key not in seen:
                seen.add(key)
                keys.append(key)
    header = ["period", "employee_code", *keys]
    rows = []
    for index, item in enumerate(items):
        values = item.get("values", {})
        rows.append([cell(item.get("period"), index, "period"),
                     cell(item.get("employee_code"), index, "employee_code"),
                     *(cell(values.get(k), index, f"values.{k}") for k in keys)])
    return header, rows


def _result_field(column: str) -> str:
    return column if column in ("period", "employee_code") else f"values.{column}"


@results.route("")
class Results(MethodView):
    @results.arguments(s.ResultQuery, location="query")
    @results.response(200, s.page_of(s.ResultSchema, "ResultPage"))
    def get(self, args: dict[str, Any]) -> Any:
        """Rows of results (an employee's values for a period, by metric key; an
        undefined value is absent), filtered by period, employee, team and a metric they
        have a value for (a sales manager: their team's)."""
        may("read", "result")
        query = select(ResultRow).options(selectinload(ResultRow.employee),
                                          selectinload(ResultRow.period))
        team = caller().team
        if team is not None:
            query = query.where(ResultRow.employee_id.in_(
                select(Employee.id).where(Employee.team_id == team)))
        if args.get("period"):
            query = query.where(ResultRow.period_id.in_(
                select(Period.id).where(Period.code == args["period"])))
        if args.get("employee"):
            query = query.where(ResultRow.employee_id.in_(
                select(Employee.id).where(Employee.code == args["employee"])))
        if args.get("team"):
            query = query.where(ResultRow.employee_id.in_(
                select(Employee.id).join(Team, Team.id == Employee.team_id)
                .where(Team.name == args["team"])))
        keys = {str(i): k for i, k in db().execute(select(Metric.id, Metric.key))}
        if args.get("metric"):
            metric_id = next((i for i, k in keys.items() if k == args["metric"]), None)
            if metric_id is None:
                query = query.where(false())
            else:
                query = query.where(has_value(int(metric_id)))
        rows, cursor = page(query, ResultRow, ("id",), args.get("sort"), args.get("cursor"),
                            args["limit"])
        return listing(({"id": r.id, "period": r.period.code,
                         "employee_code": r.employee.code,
                         "values": {k: str(v) for k, v in
                                    sorted(row_values(r.values, keys).items())}}
                        for r in rows), cursor)

    @results.doc(requestBody={"required": True, "content": {"application/json": {
        "schema": s.ResultBatch}}})
    @results.alt_response(200, schema=s.ImportReportSchema, success=True)
    @idempotent
    def post(self) -> Any:
        """A batch of results (up to the import's 1,000,000 rows), checked with exactly the
        import's rules and stored whole, or refused whole naming the item, field, reason.

        An ``Idempotency-Key`` header makes a retried batch apply once.
        """
        may("import", "results")
        items = _items(json_body())
        header, rows = _result_table(items)
        report = _run_batch("results", header, rows, import_result_table, _result_field, items,
                            lambda item, key: key in (item.get("values") or {}))
        return _report(report), 200


# --- customer scores ----------------------------------------------------------------------


@reviews.route("/<int:cycle_id>/customer-scores")
class CustomerScores(MethodView):
    @reviews.doc(requestBody={"required": True, "content": {"application/json": {
        "schema": s.ScoreBatch}}})
    @reviews.alt_response(200, schema=s.ImportReportSchema, success=True)
    @idempotent
    def post(self, cycle_id: int) -> Any:
        """Customer scores of a review cycle: what their file import does, item by item."""
        from engine.reviews import CUSTOMER_SCORERS, get_cycle, import_customer_score_table

        may("read", "reviews")
        if caller().role not in CUSTOMER_SCORERS:  # the engine's rule, said before the items
            raise ApiProblem(403, f"user {caller().email} is a {caller().role}: customer "
                             "scores come from HR or an analyst")
        get_cycle(db(), cycle_id)
        items = _items(json_body())
        header = ["employee_code", "customer_score", "comments"]
        names = {"employee_code": "employee_code", "customer_score": "score",
                 "comments": "comments"}
        rows = [[cell(item.get("employee_code"), i, "employee_code"),
                 cell(item.get("score"), i, "score"), cell(item.get("comments"), i, "comments")]
                for i, item in enumerate(items)]

        def load(session: Any, name: str, head: list[str], body: Any) -> int:
            return import_customer_score_table(session, cycle_id, name, head, body,
                                               caller().email)

        count = _run_batch("customer scores", header, rows, load, names.get, items,
                           lambda item, key: True)
        return {"kind": "customer_scores", "rows": count, "created": count, "updated": 0,
                "periods": []}, 200
