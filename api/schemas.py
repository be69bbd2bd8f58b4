"""The API's marshmallow schemas: what each resource reads as, and what each request takes.

Amounts and metric values are exact decimal strings (a JSON number would pass through a
binary float in most clients); a value that may be missing says so (``nullable``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, fields, validate

from engine.models import (
    CANDIDATE_STATUSES,
    FLAG_STATUSES,
    OUTCOME_KINDS,
    PERIOD_KINDS,
    PIP_STATUSES,
    RULE_STATUSES,
    RUN_STATUSES,
    TEAM_STAGES,
)


class UtcDateTime(fields.DateTime):
    """A time with its zone: SQLite gives stored times back without it (they are UTC)."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return super()._serialize(value, attr, obj, **kwargs)


LIMIT = fields.Integer(load_default=100, validate=validate.Range(1, 1000),
                       metadata={"description": "Items a page (at most 1000)."})


def _text(**kw: object) -> fields.String:
    return fields.String(**kw)  # type: ignore[arg-type]


def _maybe(**kw: object) -> fields.String:
    return fields.String(allow_none=True, **kw)  # type: ignore[arg-type]


class ProblemSchema(Schema):
    """RFC 9457: a problem document."""

    type = _text(metadata={"description": "A URI naming the kind of problem."})
    title = _text()
    status = fields.Integer()
    detail = _text(metadata={"description": "What went wrong, naming item, field, reason."})
    instance = _text()
    errors = fields.List(fields.Dict(), metadata={
        "description": "Each refusal: item (index in the batch), field and reason."})


class PageQuery(Schema):
    cursor = _text(metadata={"description": "The next_cursor of the page before (opaque)."})
    limit = LIMIT
    sort = _text(metadata={"description": "A field to sort by; a leading - for descending."})


def page_of(item: type[Schema], name: str) -> type[Schema]:
    return Schema.from_dict({"items": fields.List(fields.Nested(item)),
                             "next_cursor": _maybe()}, name=name)


# --- organisation -------------------------------------------------------------------------


class TeamSchema(Schema):
    id = fields.Integer()
    name = _text()
    region = _text()
    stage = _maybe(validate=validate.OneOf(TEAM_STAGES))
    manager_code = _maybe(attribute="manager.code")


class TeamIn(Schema):
    region = _text(validate=validate.Length(max=100))
    stage = _text(validate=validate.OneOf(TEAM_STAGES))


class EmployeeSchema(Schema):
    id = fields.Integer()
    code = _text()
    name = _text()
    email = _text()
    team = _text(attribute="team.name")
    level = _text(attribute="level.code")
    manager_code = _maybe(attribute="manager.code")
    hire_date = fields.Date(allow_none=True)


class EmployeeIn(Schema):
    """One employee as an import's row: the same columns, checked the same way."""

    code = _text(metadata={"description": "Required in a batch; the path's in a PUT."})
    name = _text(required=True)
    email = _text()
    team = _text(required=True)
    region = _text()
    level = _text(required=True)
    manager_code = _text()
    hire_date = _text(metadata={"description": "YYYY-MM-DD"})
    team_stage = _text(validate=validate.OneOf(("", *TEAM_STAGES)))


class EmployeeBatch(Schema):
    items = fields.List(fields.Nested(EmployeeIn), required=True)


class ImportReportSchema(Schema):
    kind = _text()
    rows = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    periods = fields.List(fields.String())


class EmployeeQuery(PageQuery):
    team = _text(metadata={"description": "A team's name."})


class PeriodSchema(Schema):
    id = fields.Integer()
    code = _text()
    kind = _text(validate=validate.OneOf(PERIOD_KINDS))
    start = fields.Date()
    end = fields.Date()
    status = _text()
    results_version = fields.Integer()


class PeriodQuery(PageQuery):
    kind = _text(validate=validate.OneOf(PERIOD_KINDS))
    status = _text(validate=validate.OneOf(("open", "locked")))


class ReopenIn(Schema):
    reason = _text(required=True, metadata={"description": "Why the period is reopened."})


class MetricSchema(Schema):
    id = fields.Integer()
    key = _text()
    label_en = _text()
    label_zh = _text()
    type = _text()
    rollup = _text()
    formula = _maybe()
    description = _text()
    min_value = _maybe()
    max_value = _maybe()


class MetricIn(Schema):
    label_en = _text()
    label_zh = _text()
    type = _text(validate=validate.OneOf(("money", "count", "score", "ratio")))
    rollup = _text(validate=validate.OneOf(("sum", "mean", "max")))
    formula = _maybe(metadata={"description": "Empty or null for an imported metric."})
    description = _text()
    min_value = fields.Raw(allow_none=True, metadata={
        "description": "The lowest value an import accepts (a decimal string or a number)."})
    max_value = fields.Raw(allow_none=True)


class ResultSchema(Schema):
    """A row of results: the shape a batch of results sends (ResultIn), with its id."""

    id = fields.Integer()
    period = _text()
    employee_code = _text()
    values = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "Metric key -> value as decimal text; an undefined value is absent."})


class ResultQuery(PageQuery):
    period = _text()
    employee = _text(metadata={"description": "An employee's code."})
    team = _text(metadata={"description": "A team's name."})
    metric = _text(metadata={"description": "A metric's key: rows with a value for it."})


class ResultIn(Schema):
    period = _text(required=True, metadata={"description": "YYYY-MM, YYYY-Qn or YYYY"})
    employee_code = _text(required=True)
    values = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                         required=True, metadata={
                             "description": "Metric key -> value (a decimal string or a "
                             "number; null: undefined)."})


class ResultBatch(Schema):
    items = fields.List(fields.Nested(ResultIn), required=True)


class ScoreIn(Schema):
    employee_code = _text(required=True)
    score = fields.Raw(required=True, metadata={"description": "1 to 5, a string or a number"})
    comments = _text()


class ScoreBatch(Schema):
    items = fields.List(fields.Nested(ScoreIn), required=True)


# --- policies -----------------------------------------------------------------------------


class RuleSchema(Schema):
    id = fields.Integer()
    key = _text()
    version = fields.Integer()
    name = _text()
    kind = _text()
    period_kind = _text()
    status = _text(validate=validate.OneOf(RULE_STATUSES))
    effective_from = fields.Date(allow_none=True)
    effective_to = fields.Date(allow_none=True)
    created_by = _maybe()
    definition = fields.Dict()


class RuleQuery(PageQuery):
    status = _text(validate=validate.OneOf(RULE_STATUSES))
    kind = _text(validate=validate.OneOf(OUTCOME_KINDS))
    rule = _text(metadata={"description": "A rule's key."})


class RuleFormat(Schema):
    format = _text(load_default="json", validate=validate.OneOf(("json", "yaml")))


class ValidationSchema(Schema):
    valid = fields.Boolean()
    key = _maybe()
    errors = fields.List(fields.Dict())


# --- runs and pay -------------------------------------------------------------------------


class RunSchema(Schema):
    id = fields.Integer()
    period = _text(attribute="period.code")
    status = _text(validate=validate.OneOf(RUN_STATUSES))
    started_by = _text()
    approved_by = _maybe()
    locked_by = _maybe()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)
    employee_count = fields.Integer()
    error = _maybe()
    ruleset_hash = _text()


class RunQuery(PageQuery):
    period = _text()
    status = _text(validate=validate.OneOf(RUN_STATUSES))


class RunStart(Schema):
    period = _text(required=True)


class JobSchema(Schema):
    id = fields.Integer()
    period = _text(attribute="period_code")
    status = _text()
    started_by = _text()
    done = fields.Integer()
    total = fields.Integer()
    run_id = fields.Integer(allow_none=True)
    error = _maybe()
    created_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)


class LockIn(Schema):
    open_flags_reason = _text(metadata={
        "description": "Needed to lock a run with flags still open: why."})


class OutcomeSchema(Schema):
    id = fields.Integer()
    run_id = fields.Integer()
    period = _text()
    employee_code = _text()
    team = _text()
    rule_key = _text()
    kind = _text()
    amount = _maybe()
    currency = _maybe()
    value = _maybe()
    status = _maybe()
    explanation = fields.Dict(allow_none=True)


class OutcomeQuery(Schema):
    cursor = _text()
    limit = LIMIT
    employee = _text(metadata={"description": "An employee's code."})
    team = _text(metadata={"description": "A team's name."})
    rule = _text(metadata={"description": "A rule's key."})
    kind = _text(validate=validate.OneOf(OUTCOME_KINDS))
    status = _text()


class StatementLineSchema(Schema):
    rule_key = _text()
    rule_name = _text()
    kind = _text()
    amount = _maybe()
    currency = _maybe()
    value = _maybe()
    status = _maybe()
    words = fields.List(fields.String())


class StatementSchema(Schema):
    run_id = fields.Integer()
    period = _text()
    employee_code = _text()
    employee_name = _text()
    currency = _text()
    lines = fields.List(fields.Nested(StatementLineSchema))
    totals = fields.Dict(keys=fields.String(), values=fields.String())


class StatementQuery(Schema):
    lang = _text(load_default="en", validate=validate.OneOf(("en", "zh")))


class ExportQuery(Schema):
    format = _text(load_default="json", validate=validate.OneOf(("csv", "xlsx", "json")))
    draft = fields.Boolean(load_default=False, metadata={
        "description": "Export a calculated (not yet approved) run; it says it is a draft."})


# --- follow-up and the audit log ----------------------------------------------------------


class CaseSchema(Schema):
    id = fields.Integer()
    run_id = fields.Integer()
    period = _text(attribute="period.code")
    employee_code = _text(attribute="employee.code")
    rule_key = _text()
    severity = _maybe()
    holds = fields.Boolean()
    status = _text(validate=validate.OneOf(FLAG_STATUSES))
    assignee = _maybe()
    reason = _maybe()
    decided_by = _maybe()


class CaseQuery(PageQuery):
    period = _text()
    status = _text(validate=validate.OneOf(FLAG_STATUSES))
    employee = _text()
    team = _text()
    rule = _text()


class AssignIn(Schema):
    assignee = _text(required=True, metadata={"description": "A compliance officer's email."})


class DecideIn(Schema):
    decision = _text(required=True, validate=validate.OneOf(("confirmed", "dismissed")))
    reason = _text(required=True)


class NoteIn(Schema):
    text = _text(required=True)


class PipSchema(Schema):
    id = fields.Integer()
    employee_code = _text(attribute="employee.code")
    run_id = fields.Integer()
    start = fields.Date()
    end = fields.Date()
    target = _text()
    status = _text(validate=validate.OneOf(PIP_STATUSES))
    decision_reason = _maybe()
    decided_by = _maybe()


class PipQuery(PageQuery):
    status = _text(validate=validate.OneOf(PIP_STATUSES))
    employee = _text()
    team = _text()


class PipDecision(Schema):
    decision = _text(required=True, validate=validate.OneOf(
        ("passed", "extended", "role_change", "exit", "closed")))
    reason = _text(required=True)
    new_end = fields.Date(metadata={"description": "An extension's new last day."})


class CandidateSchema(Schema):
    id = fields.Integer()
    employee_code = _text(attribute="employee.code")
    run_id = fields.Integer()
    program = _text()
    status = _text(validate=validate.OneOf(CANDIDATE_STATUSES))
    reason = _maybe()
    updated_by = _maybe()


class CandidateQuery(PageQuery):
    status = _text(validate=validate.OneOf(CANDIDATE_STATUSES))
    employee = _text()
    team = _text()


class CandidateMove(Schema):
    status = _text(required=True, validate=validate.OneOf(("nominated", "accepted",
                                                             "declined")))
    reason = _text()


class AuditSchema(Schema):
    id = fields.Integer()
    at = UtcDateTime()
    actor = _text()
    via = _maybe()
    action = _text()
    entity = _text()
    entity_id = _text()
    summary = _text()
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)


class AuditQuery(PageQuery):
    actor = _text()
    action = _text()
    entity = _text()
