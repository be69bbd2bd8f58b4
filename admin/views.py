"""The Flask-Admin views: one ModelView per model, the dashboard, imports and help.

Who may do what is one table (READ, WRITE, IMPORT in engine/access.py, shared with the
API); the help page shows the same table, so what the page says is what the code does.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from flask import abort, current_app, flash, g, has_app_context, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, IntEqualFilter
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.form import SecureForm
from flask_admin.helpers import get_form_data
from flask_admin.model import typefmt
from flask_admin.model.fields import AjaxSelectField
from flask_admin.model.form import converts
from flask_admin.model.template import TemplateLinkRowAction
from flask_admin.model.widgets import AjaxSelect2Widget
from flask_babel import format_datetime, lazy_pgettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf, validate_csrf
from flask_wtf.file import FileAllowed, FileField, FileRequired
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer, joinedload, with_expression
from sqlalchemy.orm.attributes import set_committed_value
from wtforms import DateField, PasswordField, SelectField, StringField, ValidationError
from wtforms.csrf.core import CSRF
from wtforms.validators import DataRequired, InputRequired, Optional, StopValidation
from wtforms.widgets import DateInput

from admin import i18n
from admin.auth import current_principal, current_role, renew_login
from admin.base import LaurelBaseView, _db, _team_scope, may_read, may_write
from admin.compliance_views import FLAG_STATUS_NAMES
from admin.followup_views import CANDIDATE_STATUS_NAMES, PIP_STATUS_NAMES
from admin.portal_views import INQUIRY_STATUS_NAMES
from admin.rules_views import STATUS_NAMES as RULE_STATUS_NAMES
from admin.runs_views import STATUS_NAMES as RUN_STATUS_NAMES
from engine import assignments, bulk
from engine.access import IMPORT, READ, TEAM_SCOPED, WRITE
from engine.cells import CellError, formula_problem, metric_value, number
from engine.db import SECRET_CLEARED, SECRET_SET
from engine.errors import FormulaError, ImportFileError, LaurelError, PasswordRefused
from engine.imports import (
    MAX_FILE_BYTES,
    import_employees,
    import_results,
    is_email,
    locked_period_of,
    result_deleted,
    result_edited,
    result_snapshot,
)
from engine.metrics import DECIMALS, decimals, range_problem, to_plain, validate_formula
from engine.models import (
    METRIC_TYPES,
    PERIOD_KINDS,
    PERIOD_STATUSES,
    ROLES,
    ROLLUPS,
    TEAM_STAGES,
    AuditLog,
    Employee,
    Level,
    Metric,
    Period,
    ResultRow,
    Rule,
    Team,
    User,
)
from engine.rollup import has_value, stored_value, value_text
from engine.users import (
    INVITE_DAYS,
    INVITERS,
    MIN_PASSWORD,
    check_new_password,
    emails_logging_in,
    employee_by_email,
    invite_employee,
    invite_link,
    set_password,
)
from engine.waiting import what_waits

# --- who may do what: one table for every door (engine.access) ----------------------------

ROLE_NAMES = {
    "hr_admin": _l("HR administrator"),
    "comp_analyst": _l("Compensation analyst"),
    "compliance_officer": _l("Compliance officer"),
    "sales_manager": _l("Sales manager"),
    "auditor": _l("Auditor"),
    "sales_rep": _l("Salesperson"),
}
RESOURCE_NAMES = {
    "employee": _l("Employees"), "team": _l("Teams"), "level": _l("Levels"),
    "period": _l("Periods"), "metric": _l("Metrics"), "result": _l("Results"),
    "audit_log": _l("Audit log"), "user": _l("Users"), "imports": _l("Imports"),
    "runs": _l("Runs"),
    "rules": _l("Policies"), "pay_code": _l("Pay codes"),
    "compliance": _l("Flags"), "pips": _l("PIPs"), "candidates": _l("Promotion candidates"),
    "dashboard": _l("Team dashboard"),
    "portal": _l("My pay"), "inquiries": _l("Inquiries"), "reviews": _l("Review cycles"),
    "talks": _l("One-to-ones"), "analytics": _l("Leadership analytics"),
    "api_token": _l("API tokens"),
}
CHOICE_NAMES: dict[str, Any] = {
    "startup": _l("startup"), "growth": _l("growth"), "mature": _l("mature"),
    "month": _l("month"), "quarter": _l("quarter"), "year": _l("year"),
    "open": _l("open"), "locked": _l("locked"),
    "money": _l("money"), "count": _l("count"), "score": _l("score"), "ratio": _l("ratio"),
    "sum": _l("sum"), "mean": _l("mean"), "max": _l("max"),
    "create": _l("create"), "update": _l("update"), "delete": _l("delete"),
    "import": _l("import"), **ROLE_NAMES,
    # what the audit log records of runs, flags, PIPs and candidates
    "run": _l("run"), "approve": _l("approve"), "lock": _l("lock"), "adjust": _l("adjust"),
    "reopen": _l("reopen"), "assign": _l("assign"), "decide": _l("decide"),
    "note": _l("note"), "carry": _l("carry over"), "clear": _l("no longer raised"),
    "merge": _l("merge"), "drop": _l("drop"),
    "invite": _l("invite"), "accept": _l("accept the invitation"), "ask": _l("ask"),
    "reply": _l("reply"), "resolve": _l("resolve"), "reject": _l("reject"),
    "enter": _l("enter"), "close": _l("close"),
    "record": _l("record"), "acknowledge": _l("acknowledge"),
    # a rule draft discarded or sent for approval; a candidate's step (its new status)
    "discard": _l("discard"), "request": _l("request publishing"),
    "nominated": _l("nominated"), "accepted": _l("accepted"), "declined": _l("declined"),
    # the API (api/): a request made with a token, and a token revoked
    "api": _l("API request"), "revoke": _l("revoke"),
}
# An audit entry's stored fields as people read them (a record's columns, what a run, a lock
# or a decision wrote); the Changes column and a snapshot's table show these words, and a
# field not named here as it is stored.
FIELD_NAMES: dict[str, Any] = {
    # the records audited column by column (employees, teams, levels, metrics, periods,
    # rules, pay codes, users)
    "id": _l("Record id"), "code": _l("Code"), "name": _l("Name"), "email": _l("Email"),
    "employee_id": _l("Employee"), "team_id": _l("Team"), "level_id": _l("Level"),
    "manager_id": _l("Manager"),
    "hire_date": _l("Hire date"), "leave_date": _l("Leave date"),
    "effective_date": _l("Effective from"), "region": _l("Region"), "stage": _l("Stage"),
    "discount_authority": _l("Discount authority"), "key": _l("Key"),
    "label_en": _l("English label"), "label_zh": _l("Chinese label"), "type": _l("Type"),
    "rollup": _l("Roll-up"), "formula": _l("Formula"), "description": _l("Description"),
    "min_value": _l("Lowest accepted value"), "max_value": _l("Highest accepted value"),
    "rule_key": _l("Rule"), "kind": _l("Kind"), "start": _l("Start"), "end": _l("End"),
    "status": _l("Status"), "results_version": _l("Results version"),
    "results_changed_how": _l("Results changed how"),
    "results_changed_in": _l("Results changed in"),
    "results_changed_at": _l("Results changed at"),
    "results_changed_by": _l("Results changed by"),
    "version": _l("Version"), "period_kind": _l("Period kind"),
    "effective_from": _l("Effective from"), "effective_to": _l("Effective to"),
    "definition": _l("Definition"), "content_hash": _l("Content hash"),
    "created_at": _l("Created at"), "created_by": _l("Created by"),
    "publish_requested_by": _l("Publishing requested by"),
    "publish_requested_at": _l("Publishing requested at"),
    "approved_by": _l("Approved by"), "approved_at": _l("Approved at"),
    "scenarios": _l("Scenarios"), "password": _l("Password"), "role": _l("Role"),
    "locale": _l("Language"), "active": _l("Active"), "invitation": _l("Invitation"),
    "invite_expires_at": _l("Invitation expires"),
    # what a run, an approval, a lock and the follow-up steps wrote
    "period": _l("Period"), "ruleset_hash": _l("Rules' hash"),
    "discarded_runs": _l("Discarded runs"), "flags": _l("Flags"), "pips": _l("PIPs"),
    "adjustments_carried": _l("Adjustments carried over"), "locked_by": _l("Locked by"),
    "open_flags": _l("Open flags"), "open_flags_reason": _l("Reason for the open flags"),
    "opened": _l("opened"), "count": _l("count"), "first_id": _l("first"),
    "last_id": _l("last"), "carried": _l("carried over"), "reopened": _l("reopened"),
    "cleared": _l("no longer raised"), "cases_before": _l("cases before the run"),
    "from_runs": _l("from runs"), "started": _l("started"), "dropped": _l("dropped"),
    "reason": _l("Reason"), "run": _l("Run"), "from_run": _l("From run"),
    "adjustment": _l("Adjustment"), "amount": _l("Amount"), "employee": _l("Employee"),
    "assignee": _l("Assigned to"), "decision": _l("Decision"),
    "after_lock": _l("After the lock"), "text": _l("Text"), "file": _l("File"),
    "files": _l("Files"), "rows": _l("Rows"), "created": _l("Created"),
    "updated": _l("Updated"), "employees": _l("Employees"), "periods": _l("Periods"),
    "values_created": _l("Values created"), "values_updated": _l("Values updated"),
    "requested_by": _l("Publishing requested by"), "user": _l("User"),
    "expires": _l("Expires"), "state": _l("Status"), "pip": _l("PIP"),
    "self_due": _l("Self-assessments due"), "manager_due": _l("Manager assessments due"),
    "score": _l("Score"), "comments": _l("Comments"), "coach": _l("Coach"),
    "held_on": _l("Held on"), "actions": _l("Actions"), "answer": _l("Answer"),
    "acknowledged_at": _l("Acknowledged at"),
}


def _live(fn: Any) -> Any:
    """Filter options read from the database at request time (none while views are built)."""

    def options() -> list[tuple[Any, str]]:
        if not has_app_context() or "laurel_db" not in current_app.extensions:
            return []
        return fn()

    options.live = True  # type: ignore[attr-defined]
    return options


def _choices(values: tuple[str, ...]) -> list[tuple[str, Any]]:
    return [(v, CHOICE_NAMES.get(v, v)) for v in values]


def _choice_label(_view: Any, _ctx: Any, model: Any, name: str) -> str:
    value = getattr(model, name)
    return str(CHOICE_NAMES.get(value, value)) if value is not None else ""


# --- CSRF: Flask-Admin's SecureForm, carrying Flask-WTF's token -------------------------


class _FlaskWTFCSRF(CSRF):
    """The token of CSRFProtect, so one token satisfies both Flask-WTF and the form."""

    def generate_csrf_token(self, csrf_token_field: Any) -> str:
        return generate_csrf()

    def validate_csrf_token(self, form: Any, field: Any) -> None:
        try:
            validate_csrf(field.data)
        except Exception as exc:  # flask_wtf raises wtforms.ValidationError subclasses
            raise ValidationError(i18n.say(exc)) from None


class LaurelSecureForm(SecureForm):
    class Meta(SecureForm.Meta):
        csrf_class = _FlaskWTFCSRF

        @property
        def csrf(self) -> bool:  # type: ignore[override]
            return bool(current_app.config.get("WTF_CSRF_ENABLED", True))


# --- a record chosen by its id (the select boxes that search as one types) ---------------

_ID = re.compile(r"[0-9]{1,18}")  # an id the database can read (PostgreSQL: bigint)


class _KnownSelectWidget(AjaxSelect2Widget):
    """Flask-Admin's searching select box; a refused entry is shown back as it was sent."""

    def __call__(self, field: Any, **kwargs: Any) -> str:
        if field.data is None and getattr(field, "unknown", None):
            kwargs.setdefault("value", field.unknown)
            kwargs.setdefault("data-json", json.dumps([field.unknown, field.unknown]))
        return super().__call__(field, **kwargs)


class KnownSelectField(AjaxSelectField):
    """A record chosen by its id that must exist.

    Flask-Admin's own field takes an id it cannot find (an employee code posted as the
    manager, a deleted record) as no choice at all, so a team was saved without its manager
    and without a word; here it is refused, naming the field, and nothing is saved.
    """

    widget = _KnownSelectWidget()
    unknown: str | None = None

    def process_formdata(self, valuelist: Any) -> None:
        self.unknown = None
        raw = (valuelist[0] or "").strip() if valuelist else ""
        if valuelist and (not raw or raw == "__None") and self.allow_blank:
            self.data = None
        elif raw and not _ID.fullmatch(raw):
            # not an id at all: never sent to the database (PostgreSQL refuses the query)
            self._data, self._formdata, self.unknown = None, None, raw
        else:
            super().process_formdata(valuelist)
            if raw and self.data is None:  # looked up once: an id no record has
                self._formdata, self.unknown = None, raw

    def pre_validate(self, form: Any) -> None:
        if self.data is None and self.unknown:
            raise StopValidation(_("%(field)s: no record “%(value)s”; choose one from the "
                                   "list.", field=self.label.text, value=self.unknown))
        super().pre_validate(form)


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class LaurelModelConverter(AdminModelConverter):
    """Flask-Admin's form builder, with record choices that refuse an unknown id, and text
    typed as an import reads its cells: without the spaces around it, and a required one
    refused when nothing but spaces is typed (Flask-Admin's InputRequired took a name of
    one space, saved blank)."""

    @converts("Date")
    def convert_date(self, field_args: dict[str, Any], **extra: Any) -> Any:
        """A date is the browser's own date input, not Flask-Admin's picker: typing a date
        into the picker's text garbled it (its first digit read as year 2: 2023-02-28
        became 0002-01-01023-02-28), and it spoke English on Chinese pages. The browser's
        is typed and picked in the reader's own language, and sends the ISO date."""
        field_args.setdefault("widget", DateInput())
        return DateField(**field_args)

    @converts("String")  # VARCHAR and the like, as Flask-Admin's own
    def conv_String(self, column: Any, field_args: dict[str, Any], **extra: Any) -> Any:
        field = super().conv_String(column=column, field_args=field_args, **extra)
        kwargs = field.kwargs
        kwargs["filters"] = [_stripped, *kwargs.get("filters", ())]
        kwargs["validators"] = [DataRequired() if isinstance(v, InputRequired) else v
                                for v in kwargs.get("validators", ())]
        return field

    def _model_select_field(self, prop: Any, multiple: Any, remote_model: Any,
                            **kwargs: Any) -> Any:
        loader = getattr(self.view, "_form_ajax_refs", {}).get(prop.key)
        if loader and not multiple:
            return KnownSelectField(loader, **kwargs)
        return super()._model_select_field(prop, multiple, remote_model, **kwargs)


# --- the base model view ------------------------------------------------------------------

_WRITE_ENDPOINTS = {"create_view", "edit_view", "delete_view", "action_view", "ajax_update",
                    "ajax_lookup"}


def _yes_no_icon(view: Any, value: Any, name: str) -> Markup:
    """A yes/no column as Flask-Admin's icon, its tip in the page's language."""
    icon = "fa-check-circle" if value else "fa-minus-circle"
    return Markup('<span class="fa {}" title="{}"></span>').format(icon, _short(bool(value)))


class LaurelModelView(ModelView):
    """Role-checked view: readers get lists and details, writers forms; POSTs need WRITE."""

    resource = ""
    list_template = "laurel/model/list.html"  # its controls without inline handlers
    form_base_class = LaurelSecureForm
    model_form_converter = LaurelModelConverter
    page_size = 50
    can_set_page_size = False
    can_view_details = True
    can_export = False
    details_modal = False
    column_display_actions = True
    # yes/no in the page's language (Flask-Admin's icons carry "active: true" as their tip,
    # its details page the word True)
    column_type_formatters = {**typefmt.BASE_FORMATTERS, bool: _yes_no_icon}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS,
                                     bool: lambda view, value, name: _short(value)}

    @property
    def can_create(self) -> bool:  # type: ignore[override]
        return may_write(self.resource)

    @property
    def can_edit(self) -> bool:  # type: ignore[override]
        return may_write(self.resource)

    @property
    def can_delete(self) -> bool:  # type: ignore[override]
        return may_write(self.resource)

    def is_accessible(self) -> bool:
        return may_read(self.resource)

    def is_visible(self) -> bool:
        return may_read(self.resource)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if current_principal() is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if (name in _WRITE_ENDPOINTS or request.method not in ("GET", "HEAD")) \
                and not may_write(self.resource):
            abort(403)
        return None

    # Queries: sales managers see their own team only, everywhere (list, count, one row).
    def scope(self, query: Any, team_id: int) -> Any:
        return query

    def get_query(self) -> Any:
        query = super().get_query()
        team_id = _team_scope()
        return self.scope(query, team_id) if team_id is not None else query

    def get_count_query(self) -> Any:
        query = super().get_count_query()
        team_id = _team_scope()
        return self.scope(query, team_id) if team_id is not None else query

    def get_one(self, id: Any) -> Any:
        try:
            pk = int(id)
        except (TypeError, ValueError):
            abort(404)
        row = self.get_query().filter(self.model.id == pk).one_or_none()
        if row is None:
            abort(404)
        return row

    def _get_filter_groups(self) -> Any:
        # Flask-Admin computes filter options once, when the view is built; teams, periods
        # and metrics come and go, so options marked live are read again per request.
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                _, flt = self._filter_args[item["arg"]]
                if getattr(flt.options, "live", False):
                    item["options"] = [(k, str(v)) for k, v in flt.options()]
        return groups

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, LaurelError):
            flash(i18n.say(exc), "error")
            return True
        if isinstance(exc, IntegrityError):
            # The database's own message (SQL, constraint names) means nothing to HR.
            flash(_("Not saved: this record is still used by others (for example a team's "
                    "employees or an employee's results), or a value that must be unique "
                    "is already taken."), "error")
            return True
        return super().handle_view_exception(exc)


def _team_options() -> list[tuple[int, str]]:
    stmt = select(Team.id, Team.name).order_by(Team.name)
    team_id = _team_scope()
    if team_id is not None:
        stmt = stmt.where(Team.id == team_id)
    return [(tid, name) for tid, name in _db().execute(stmt)]


def _manager_options() -> list[tuple[int, str]]:
    stmt = select(Employee).join(Team, Team.manager_id == Employee.id).order_by(Employee.code)
    team_id = _team_scope()
    if team_id is not None:
        stmt = stmt.where(Team.id == team_id)
    return [(e.id, str(e)) for e in _db().scalars(stmt)]


def _level_options() -> list[tuple[int, str]]:
    return [(i, c) for i, c in _db().execute(select(Level.id, Level.code).order_by(Level.code))]


def _period_options() -> list[tuple[int, str]]:
    return [(i, c) for i, c in _db().execute(
        select(Period.id, Period.code).order_by(Period.start.desc(), Period.kind))]


def _metric_options() -> list[tuple[int, str]]:
    return [(m.id, f"{m.key} - {i18n.metric_label(m)}")
            for m in _db().scalars(select(Metric).order_by(Metric.key))]


def _region_options() -> list[tuple[str, str]]:
    stmt = select(Team.region).where(Team.region != "").distinct().order_by(Team.region)
    team_id = _team_scope()
    if team_id is not None:
        stmt = stmt.where(Team.id == team_id)
    return [(r, r) for r in _db().scalars(stmt)]


class ResultTeamFilter(BaseSQLAFilter):
    """Results of one team's employees, without joining (the count stays one table)."""

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        return query.filter(ResultRow.employee_id.in_(
            select(Employee.id).where(Employee.team_id == int(value))))

    def clean(self, value: str) -> int:
        return int(value)

    def validate(self, value: str) -> bool:
        return value.isdigit()

    def operation(self) -> Any:
        return _l("equals")


class EmployeeRegionFilter(BaseSQLAFilter):
    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        return query.filter(Employee.team_id.in_(select(Team.id).where(Team.region == value)))

    def operation(self) -> Any:
        return _l("equals")


# --- the model views ----------------------------------------------------------------------


def _code_not_a_formula(form: Any, field: Any) -> None:
    if formula_problem((field.data or "").strip()):
        raise ValidationError(_("A code must not begin with =, +, - or @: a spreadsheet "
                                "would run it as a formula."))


def _email_as_imported(form: Any, field: Any) -> None:
    field.data = (field.data or "").strip()
    if field.data and not is_email(field.data):
        raise ValidationError(_("Not a valid email address"))


def _email_of_no_other_employee(form: Any, field: Any) -> None:
    """An email another employee has is refused: the portal finds its salesperson by the
    email (an invitation, a user made for a sales_rep), so two would be one login."""
    email = (field.data or "").strip().lower()
    if not email:
        return
    having = dict(_db().execute(select(Employee.id, Employee.code).where(
        func.lower(Employee.email) == email)).all())
    if request.args.get("id", type=int) in having:
        return  # kept as it was (an import may have given two employees one email)
    if having:  # another's: the first of them named
        raise ValidationError(_("Employee %(code)s has this email already: the portal finds "
                                "a salesperson by their email.", code=min(having.items())[1]))


def _leave_not_before_hire(form: Any, field: Any) -> None:
    hired = form.hire_date.data if "hire_date" in form else None
    if field.data and hired and field.data < hired:
        raise ValidationError(_("The leave date is before the hire date %(date)s.",
                                date=i18n.day(hired)))


class EmployeeView(LaurelModelView):
    resource = "employee"
    # As the import refuses them (engine.imports): payroll files carry the code as it is,
    # and the portal finds its salesperson by the email.
    form_args = {"code": {"validators": [_code_not_a_formula]},
                 "email": {"validators": [_email_as_imported, _email_of_no_other_employee]},
                 "leave_date": {"validators": [_leave_not_before_hire]}}
    column_list = ["code", "name", "email", "team", "region", "level", "manager", "hire_date",
                   "leave_date"]
    column_searchable_list = ["code", "name", "email"]
    column_filters = [
        IntEqualFilter(Employee.team_id, _l("Team"), options=_live(_team_options)),
        EmployeeRegionFilter(Employee.team_id, _l("Region"), options=_live(_region_options)),
        IntEqualFilter(Employee.level_id, _l("Level"), options=_live(_level_options)),
    ]
    column_sortable_list = ["code", "name", "email", ("team", "team.name"),
                            ("level", "level.code"), "hire_date"]
    column_default_sort = "code"
    column_select_related_list = [Employee.team, Employee.level, Employee.manager]
    column_formatters = {"region": lambda v, c, m, n: m.team.region if m.team else ""}
    column_details_list = column_list
    form_columns = ["code", "name", "email", "team", "level", "manager", "hire_date",
                    "leave_date"]
    form_ajax_refs = {
        "team": {"fields": ["name"], "page_size": 20},
        "manager": {"fields": ["code", "name"], "page_size": 20},
    }
    column_labels = {
        "code": _l("Code"), "name": lazy_pgettext("person", "Name"), "email": _l("Email"),
        "team": _l("Team"),
        "region": _l("Region"), "level": _l("Level"), "manager": _l("Manager"),
        "hire_date": _l("Hire date"), "leave_date": _l("Leave date"),
    }
    column_descriptions = {"leave_date": _l("The last day the employee is paid for.")}
    # HR invites an employee to the portal from the list (a row button) or their page
    column_extra_row_actions = [TemplateLinkRowAction("invite_row", _l("Invite"))]
    details_template = "laurel/model/employee_details.html"
    invite_days = INVITE_DAYS

    def scope(self, query: Any, team_id: int) -> Any:
        return query.filter(Employee.team_id == team_id)

    def on_model_change(self, form: Any, model: Employee, is_created: bool) -> None:
        super().on_model_change(form, model, is_created)
        # a dated employee's assignment in force follows the edit (engine.assignments)
        if not is_created:
            assignments.follow_edit(_db(), model)
    @property
    def can_invite(self) -> bool:
        return current_role() in INVITERS

    def logs_in(self, email: str | None) -> bool:
        """Whether the employee's user logs in already: no invitation is offered then (it
        would be refused). Read once a request, for a list's rows."""
        if "laurel_logging_in" not in g:
            g.laurel_logging_in = emails_logging_in(_db())
        return (email or "").strip().lower() in g.laurel_logging_in

    @expose("/invite/", methods=("POST",))
    def invite_view(self) -> Any:
        """Invite the employee (engine.users.invite_employee) and show the link, as
        ``laurel users invite EMAIL`` prints it."""
        employee = self.get_one(request.form.get("id"))
        db = _db()
        try:
            user, token = invite_employee(db, employee.id, current_principal().email)
            db.commit()
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
            return redirect(self.get_url(".details_view", id=employee.id))
        return self.render("laurel/model/invited.html", employee=employee, email=user.email,
                           link=invite_link(token, request.url_root), days=INVITE_DAYS)


class TeamView(LaurelModelView):
    resource = "team"
    column_list = ["name", "region", "stage", "manager"]
    column_searchable_list = ["name", "region"]
    column_filters = [
        "stage",
        "region",
        IntEqualFilter(Team.manager_id, _l("Manager"), options=_live(_manager_options)),
    ]
    column_sortable_list = ["name", "region", "stage"]
    column_default_sort = "name"
    column_select_related_list = [Team.manager]
    column_formatters = {"stage": _choice_label}
    form_columns = ["name", "region", "stage", "manager"]
    form_choices = {"stage": _choices(TEAM_STAGES)}
    form_ajax_refs = {"manager": {"fields": ["code", "name"], "page_size": 20}}
    column_labels = {"name": _l("Name"), "region": _l("Region"), "stage": _l("Stage"),
                     "manager": _l("Manager")}

    def scope(self, query: Any, team_id: int) -> Any:
        return query.filter(Team.id == team_id)


class NumberField(StringField):
    """A number typed in the back office, read as an import reads one (engine.cells).

    WTForms' DecimalField gives the text to Decimal, which takes NaN, Infinity, 1_000 and
    full-width digits; NaN then breaks every comparison with the value.
    """

    raw: str | None = None

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.raw = valuelist[0].strip() if valuelist else ""
        self.data = None
        if self.raw:
            try:
                self.data = number(self.raw)
            except CellError as err:
                raise ValueError(i18n.say(err.reason)) from None

    def _value(self) -> str:
        if self.raw is not None:
            return self.raw
        return "" if self.data is None else str(to_plain(self.data))


def _a_share(form: Any, field: Any) -> None:
    """A fraction of the price from 0 to 1 (a level's discount authority)."""
    if field.data is not None and not 0 <= field.data <= 1:
        raise ValidationError(_("%(value)s is not a share from 0 to 1: 0.05 is 5%%.",
                                value=field.raw))


class LevelView(LaurelModelView):
    resource = "level"
    # an exact decimal column (engine.models.ExactDecimal) is a decimal field
    form_overrides = {"discount_authority": NumberField}
    column_list = ["code", "name", "discount_authority"]
    column_searchable_list = ["code", "name"]
    column_default_sort = "code"
    column_formatters = {"discount_authority": lambda v, c, m, n: i18n.percent(
        m.discount_authority)}
    form_columns = ["code", "name", "discount_authority"]
    form_args = {"discount_authority": {"validators": [_a_share]}}
    column_labels = {"code": _l("Code"), "name": _l("Name"),
                     "discount_authority": _l("Discount authority")}
    column_descriptions = {"discount_authority": _l("A fraction: 0.05 is 5%.")}


def _pay_rule_options() -> list[tuple[str, str]]:
    """The keys of rules that pay (commission, bonus), and manual adjustments."""
    from engine.runs import MONEY_KINDS

    keys = sorted(set(_db().scalars(select(Rule.key).where(Rule.kind.in_(MONEY_KINDS)))))
    return [(k, k) for k in keys] + [("adjustment", str(_l("adjustment (manual lines)")))]


def _rule_key_choice(form: Any, field: Any) -> None:
    keys = {k for k, _label in _pay_rule_options()}
    if field.data not in keys:
        raise ValidationError(_("Choose a rule that pays, or manual adjustments."))


class PayCodeView(LaurelModelView):
    """The payroll system's pay code of each rule (set by HR); every payroll line carries
    the code of its rule, a released hold the code of the rule it releases."""

    resource = "pay_code"
    column_list = ["rule_key", "code", "description"]
    column_searchable_list = ["rule_key", "code", "description"]
    column_default_sort = "rule_key"
    form_columns = ["rule_key", "code", "description"]
    form_overrides = {"rule_key": SelectField}
    form_args = {"rule_key": {"choices": _live(_pay_rule_options),
                              "validators": [_rule_key_choice]},
                 "code": {"validators": [_code_not_a_formula]}}
    column_labels = {"rule_key": _l("Rule"), "code": _l("Pay code"),
                     "description": _l("Description")}
    column_descriptions = {"code": _l("The code the payroll system knows this pay "
                                      "component by; it is in every line of the payroll "
                                      "export.")}

    def create_form(self, obj: Any = None) -> Any:
        form = super().create_form(obj)
        form.rule_key.choices = _pay_rule_options()
        return form

    def edit_form(self, obj: Any = None) -> Any:
        form = super().edit_form(obj)
        form.rule_key.choices = _pay_rule_options()
        return form


class PeriodView(LaurelModelView):
    resource = "period"
    column_list = ["code", "kind", "start", "end", "status"]
    column_searchable_list = ["code"]
    column_filters = ["status", "kind"]
    column_default_sort = ("start", True)
    column_formatters = {"kind": _choice_label, "status": _choice_label}
    column_labels = {"code": _l("Code"), "kind": _l("Kind"), "start": _l("Start"),
                     "end": _l("End"), "status": _l("Status")}
    column_choices = {"status": _choices(PERIOD_STATUSES), "kind": _choices(PERIOD_KINDS)}
    column_details_list = column_list


def _check_formula(form: Any, field: Any) -> None:
    """Validate a derived-metric formula as it is saved (the same check as on load)."""
    text = (field.data or "").strip()
    if not text:
        field.data = None
        return
    key = (form.key.data or "").strip() if hasattr(form, "key") else ""
    try:
        validate_formula(_db(), key or "metric", text)
    except FormulaError as exc:
        raise ValidationError(i18n.say(exc.reason)) from None
    field.data = text


def _check_bound(form: Any, field: Any) -> None:
    """A metric's own bound lies in its type's range; the lowest is not above the highest."""
    if field.data is None:
        return
    if decimals(field.data) > DECIMALS:
        raise ValidationError(_("At most %(n)d decimals.", n=DECIMALS))
    mtype = form.type.data if hasattr(form, "type") else None
    problem = range_problem(field.data, mtype) if mtype in METRIC_TYPES else None
    if problem:
        raise ValidationError(_("Outside the accepted range of its type (see the note "
                                "below the field)."))
    low = getattr(form, "min_value", None)
    if field.name == "max_value" and low is not None and low.data is not None \
            and low.data > field.data:
        raise ValidationError(_("The highest accepted value is below the lowest."))


def _bound(metric: Metric, value: Any) -> str:
    """A metric's range bound as people read it: a ratio as a percentage."""
    return "" if value is None else i18n.metric_value(value, metric.type)


class MetricView(LaurelModelView):
    resource = "metric"
    column_list = ["key", "label_en", "label_zh", "type", "rollup", "formula", "min_value",
                   "max_value"]
    column_searchable_list = ["key", "label_en", "label_zh"]
    column_filters = ["type", "rollup"]
    column_default_sort = "key"
    column_formatters = {"type": _choice_label, "rollup": _choice_label,
                         "formula": lambda v, c, m, n: Markup("<code>{}</code>").format(
                             m.formula) if m.formula else "",
                         "min_value": lambda v, c, m, n: _bound(m, m.min_value),
                         "max_value": lambda v, c, m, n: _bound(m, m.max_value)}
    form_columns = ["key", "label_en", "label_zh", "type", "rollup", "formula", "min_value",
                    "max_value", "description"]
    form_overrides = {"min_value": NumberField, "max_value": NumberField}
    form_choices = {"type": _choices(METRIC_TYPES), "rollup": _choices(ROLLUPS)}
    form_args = {"formula": {"validators": [Optional(), _check_formula]},
                 "min_value": {"validators": [Optional(), _check_bound]},
                 "max_value": {"validators": [Optional(), _check_bound]}}
    column_labels = {"key": _l("Key"), "label_en": _l("English label"),
                     "label_zh": _l("Chinese label"), "type": _l("Type"),
                     "rollup": _l("Roll-up"), "formula": _l("Formula"),
                     "description": _l("Description"),
                     "min_value": _l("Lowest accepted value"),
                     "max_value": _l("Highest accepted value")}
    column_descriptions = {
        "formula": _l("Empty for an imported metric. A derived metric is computed from "
                      "others, for example: revenue / target"),
        "min_value": _l("An import refuses a value below it. Empty: the type's own range "
                        "(money: less than 10^18 in absolute value; count: 0 or more; "
                        "score: -100 to 100; ratio: -1,000,000 to 1,000,000)."),
        "max_value": _l("An import refuses a value above it. Empty: the type's own range."),
    }

    def on_model_delete(self, model: Metric) -> None:
        used = _db().scalar(select(func.count()).select_from(ResultRow)
                            .where(has_value(model.id)))
        if used:
            raise ValidationError(_("Metric %(key)s has values in %(n)s rows of results: "
                                    "it cannot be deleted.", key=model.key, n=used))


class MetricValueField(NumberField):
    """One metric's value in a row of results, read as an import reads its cell: the same
    numbers and ranges. Empty: the value is undefined."""

    def __init__(self, label: Any = None, validators: Any = None, *,
                 metric_type: str = "score", low: Any = None, high: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.metric_type, self.low, self.high = metric_type, low, high

    def process_formdata(self, valuelist: list[Any]) -> None:
        # Read in pre_validate, so that the refusal is shown at this field.
        self.raw = valuelist[0].strip() if valuelist else ""
        self.data = None

    def process_data(self, value: Any) -> None:
        self.data = None if value is None else number(value)

    def pre_validate(self, form: Any) -> None:
        if not self.raw:
            return
        try:
            self.data = metric_value(self.raw, self.metric_type, self.low, self.high)
        except CellError as err:
            raise StopValidation(i18n.say(err.reason)) from None


_METRIC_FIELD = "metric_"


def _input_metrics() -> list[Metric]:
    return list(_db().scalars(select(Metric).where(Metric.formula.is_(None))
                              .order_by(Metric.key)))


def _row_cells(row: ResultRow) -> list[tuple[Metric, Any]]:
    """The row's defined values, by metric key: (metric, value)."""
    metrics = g.get("laurel_metrics_by_id")
    if metrics is None:  # read once a request: a page lists 50 rows
        metrics = g.laurel_metrics_by_id = {str(m.id): m for m in _db().scalars(select(Metric))}
    cells = [(metrics[mid], stored_value(text)) for mid, text in (row.values or {}).items()
             if mid in metrics]
    return sorted(cells, key=lambda c: c[0].key)


def _values_inline(view: Any, context: Any, row: ResultRow, name: str) -> Markup:
    cells = _row_cells(row)
    if not cells:
        return Markup('<span class="text-muted">{}</span>').format(_("no values"))
    return Markup(" · ").join(
        Markup('<span class="text-nowrap">{}: {}</span>').format(
            i18n.metric_label(m), i18n.metric_value(v, m.type)) for m, v in cells)


def _values_table(view: Any, context: Any, row: ResultRow, name: str) -> Markup:
    cells = _row_cells(row)
    if not cells:
        return Markup('<span class="text-muted">{}</span>').format(_("no values"))
    return Markup('<table class="table table-sm table-bordered laurel-kv mb-0">{}</table>'
                  ).format(Markup("").join(
                      Markup("<tr><th>{} <code>{}</code></th><td>{}</td></tr>").format(
                          i18n.metric_label(m), m.key, i18n.metric_value(v, m.type))
                      for m, v in cells))


class ResultMetricFilter(BaseSQLAFilter):
    """Rows of results with a value for one metric."""

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        return query.filter(has_value(int(value)))

    def operation(self) -> str:
        return str(_l("has a value"))

    def clean(self, value: str) -> int:
        return int(value)

    def validate(self, value: str) -> bool:
        return value.isdigit()


class ResultView(LaurelModelView):
    """An employee's row of results for a period: one field a metric, empty when
    undefined. Saving a row with no values keeps the employee in the period's population;
    deleting it takes them out."""

    resource = "result"
    column_list = ["period", "employee", "team", "values"]
    column_sortable_list = [("period", "period.code"), ("employee", "employee.code")]
    column_default_sort = ("id", True)
    column_filters = [
        IntEqualFilter(ResultRow.period_id, _l("Period"), options=_live(_period_options)),
        ResultTeamFilter(ResultRow.employee_id, _l("Team"), options=_live(_team_options)),
        ResultMetricFilter(ResultRow.id, _l("Metric"), options=_live(_metric_options)),
    ]
    column_formatters = {
        "values": _values_inline,
        "team": lambda v, c, m, n: m.employee.team.name,
    }
    column_formatters_detail = {**column_formatters, "values": _values_table}
    column_details_list = column_list
    form_columns = ["period", "employee"]
    form_ajax_refs = {
        "employee": {"fields": ["code", "name"], "page_size": 20},
        "period": {"fields": ["code"], "page_size": 20},
    }
    column_labels = {"period": _l("Period"), "employee": _l("Employee"), "team": _l("Team"),
                     "values": _l("Values")}

    def _with_metrics(self, form_class: Any, obj: ResultRow | None) -> Any:
        """The form with a field for each input metric (metrics come and go), and a row's
        stored values as the fields' data."""
        fields = {}
        for m in _input_metrics():
            fields[f"{_METRIC_FIELD}{m.id}"] = MetricValueField(
                f"{i18n.metric_label(m)} ({m.key})", metric_type=m.type, low=m.min_value,
                high=m.max_value, description=_("Empty: undefined."))
            if obj is not None:
                setattr(obj, f"{_METRIC_FIELD}{m.id}", (obj.values or {}).get(str(m.id)))
        return type("ResultRowForm", (form_class,), fields)

    def create_form(self, obj: Any = None) -> Any:
        return self._with_metrics(self._create_form_class, obj)(get_form_data(), obj=obj)

    def edit_form(self, obj: Any = None) -> Any:
        return self._with_metrics(self._edit_form_class, obj)(get_form_data(), obj=obj)

    def get_query(self) -> Any:
        # One query per page: every row's employee, team and period joined in.
        return super().get_query().options(
            joinedload(ResultRow.employee).joinedload(Employee.team),
            joinedload(ResultRow.period))

    def scope(self, query: Any, team_id: int) -> Any:
        return query.filter(ResultRow.employee_id.in_(
            select(Employee.id).where(Employee.team_id == team_id)))

    def _check_period(self, period: Period | None) -> None:
        locked = locked_period_of(_db(), period.code) if period is not None else None
        if locked:
            raise ValidationError(_("Period %(code)s is locked: its results cannot change.",
                                    code=locked))

    def update_model(self, form: Any, model: ResultRow) -> bool:
        model._laurel_before = result_snapshot(_db(), model)  # type: ignore[attr-defined]
        model._laurel_old_period = model.period  # type: ignore[attr-defined]
        return super().update_model(form, model)

    def on_model_change(self, form: Any, model: ResultRow, is_created: bool) -> None:
        self._check_period(model.period)
        old = None if is_created else getattr(model, "_laurel_old_period", None)
        self._check_period(old)
        taken = _db().scalar(select(ResultRow.id).where(
            ResultRow.employee_id == model.employee.id, ResultRow.period_id == model.period.id,
            ResultRow.id != (model.id or 0)))
        if taken is not None:
            raise ValidationError(_("%(employee)s already has a row of results for "
                                    "%(period)s: change that one.",
                                    employee=model.employee.code, period=model.period.code))
        model.values = {name[len(_METRIC_FIELD):]: value_text(field.data)
                        for name, field in form._fields.items()
                        if name.startswith(_METRIC_FIELD) and field.data is not None}
        result_edited(_db(), model, is_created, getattr(model, "_laurel_before", None),
                      old.code if old else None)

    def on_model_delete(self, model: ResultRow) -> None:
        self._check_period(model.period)
        result_deleted(_db(), model)


def render_mapping(data: dict[str, Any] | None, other: dict[str, Any] | None = None,
                   entity: str | None = None, entry: AuditLog | None = None) -> Markup:
    """Render a before/after snapshot as a key: value table; changed keys are marked (the
    records ``entry`` holds the ids of by their names)."""
    if not data:
        return Markup("")
    if entry is not None:
        name_records([entry], whole=True)
    rows = []
    for key, value in data.items():
        changed = other is not None and other.get(key) != value
        css = ' class="table-warning"' if changed else ""
        rows.append(Markup("<tr{}><th>{}</th><td>{}</td></tr>").format(
            Markup(css), _field(key), _stored(key, value, entity=entity)))
    return Markup('<table class="table table-sm table-bordered laurel-kv mb-0">{}</table>'
                  ).format(Markup("").join(rows))


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$")
_HASH = re.compile(r"^[0-9a-f]{16,}$")


def _moment_words(value: Any) -> str | None:
    """A stored moment (ISO text) in the page's words, or None for any other value."""
    if not (isinstance(value, str) and _ISO_TIME.match(value)):
        return None
    try:
        return format_datetime(dt.datetime.fromisoformat(value.replace("Z", "+00:00")),
                               "medium")
    except ValueError:
        return None


def _readable(entry: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without what people cannot read: hashes left out, times in words."""
    out = {}
    for key, value in entry.items():
        if key.endswith("hash") or (isinstance(value, str) and _HASH.match(value)):
            continue
        out[key] = _moment_words(value) or value
    return out


# An entry's snapshots larger than this are not read to list it: its summary says what it
# holds (an import of 1,000,000 employees keeps every one, 125 MB), its own page shows it.
LISTED_SNAPSHOTS = 64 * 1024
CHANGES_SHOWN = 6  # the fields a list of entries shows of one
ITEMS_SHOWN = 10  # the items of a list or a mapping a value in it shows (its page: all)


def with_sizes(query: Any, dialect: str) -> Any:
    """A query of audit entries that reads their snapshots only where used, and their
    size (AuditLog.snapshots) at once."""
    return query.options(defer(AuditLog.before), defer(AuditLog.after),
                         with_expression(AuditLog.snapshots,
                                         AuditLog.snapshots_size(dialect)))


def read_snapshots(db: Any, entries: list[AuditLog]) -> None:
    """The snapshots of the listed entries (with_sizes) that are small enough to show,
    read in one query: a deferred column is read an entry and a column at a time."""
    small = [e.id for e in entries if (e.snapshots or 0) <= LISTED_SNAPSHOTS]
    if not small:
        return
    found = {i: (before, after) for i, before, after in db.execute(
        select(AuditLog.id, AuditLog.before, AuditLog.after).where(AuditLog.id.in_(small)))}
    for entry in entries:
        if entry.id in found:
            set_committed_value(entry, "before", found[entry.id][0])
            set_committed_value(entry, "after", found[entry.id][1])


def render_changes(entry: AuditLog, readable: bool = False) -> Markup:
    """One line per changed field: 'name: old -> new' (what an HR reader needs); the first
    CHANGES_SHOWN of them. An entry whose snapshots are too large to list (its size read
    with it: with_sizes) says so, and its page shows them.

    ``readable`` leaves out hashes and writes times in words (the home page).
    """
    if (entry.snapshots or 0) > LISTED_SNAPSHOTS:
        return Markup("<span class=\"text-muted\">{}</span>").format(
            _("%(size)s of details: open the entry to read them",
              size=i18n.byte_size(entry.snapshots)))
    before, after = entry.before or {}, entry.after or {}
    if readable:
        before, after = _readable(before), _readable(after)
    if entry.action == "update":
        keys = [k for k in after if before.get(k) != after.get(k)][:CHANGES_SHOWN]
        parts = [Markup("{}: {} &rarr; {}").format(
            _field(k), _stored(k, before.get(k), ITEMS_SHOWN, entry.entity),
            _stored(k, after.get(k), ITEMS_SHOWN, entry.entity)) for k in keys]
        return Markup("<br>").join(parts)
    data = after if entry.action != "delete" else before
    shown = [(k, v) for k, v in data.items() if v not in (None, "", [], {})][:CHANGES_SHOWN]
    return Markup("<br>").join(Markup("{}: {}").format(
        _field(k), _stored(k, v, ITEMS_SHOWN, entry.entity)) for k, v in shown)


def _field(key: str) -> Markup:
    """A stored field's name in the page's language, else as it is stored."""
    name = FIELD_NAMES.get(key)
    return Markup("{}").format(name) if name is not None else Markup("<code>{}</code>").format(key)


# Stored fields whose values are the domain's codes: they read in the page's language.
_WORD_FIELDS = {"status", "kind", "period_kind", "role", "decision", "stage"}
# A record's status in the words its own pages use (an open flag is 待处理 on the queue, an
# open period 开放 on the home page): an audit entry about it says the same.
STATUS_WORDS: dict[str, dict[str, Any]] = {
    "period": {"open": CHOICE_NAMES["open"], "locked": CHOICE_NAMES["locked"]},
    "run": RUN_STATUS_NAMES, "flag": FLAG_STATUS_NAMES, "rule": RULE_STATUS_NAMES,
    "pip": PIP_STATUS_NAMES, "candidate": CANDIDATE_STATUS_NAMES,
    "inquiry": INQUIRY_STATUS_NAMES,
    "review_cycle": {"open": _l("open"), "closed": _l("closed")},
}


# Stored fields whose values are a record's id: they read as the record's name.
RECORD_FIELDS: dict[str, type] = {"team_id": Team, "level_id": Level, "manager_id": Employee,
                                  "employee_id": Employee}


def name_records(entries: Any, whole: bool = False) -> None:
    """Read the names of the records the entries' fields hold the ids of (RECORD_FIELDS),
    one query a kind of record for them all, for _stored to show in the ids' place: in the
    snapshots render_changes shows, or (``whole``) both of an entry's."""
    wanted: dict[type, set[int]] = {}
    for entry in entries:
        if not whole and (entry.snapshots or 0) > LISTED_SNAPSHOTS:
            continue  # not listed (render_changes): its snapshots stay unread
        shown = ((entry.before, entry.after) if whole or entry.action == "update" else
                 (entry.before,) if entry.action == "delete" else (entry.after,))
        for data in shown:
            for key, value in (data or {}).items() if isinstance(data, dict) else ():
                if key in RECORD_FIELDS and type(value) is int:
                    wanted.setdefault(RECORD_FIELDS[key], set()).add(value)
    names: dict[tuple[type, int], str] = g.setdefault("laurel_record_names", {})
    db = _db()
    for model, ids in wanted.items():
        ids -= {i for m, i in names if m is model}
        if not ids:  # read already (an entry's page shows its two snapshots apart)
            continue
        found = dict.fromkeys(ids, "")  # an id no record has any more stays an id
        for record in db.scalars(select(model).where(model.id.in_(ids))):
            found[record.id] = str(record)
        names.update({(model, i): name for i, name in found.items()})


def _stored(key: str, value: Any, most: int | None = None, entity: str | None = None
            ) -> Markup:
    """A stored field's value as it was written (data, shown as such), a status in the
    page's language, as the pages of the entry's ``entity`` say it, a record's id as its
    name where name_records read it; ``most``: as _short."""
    if value is None:
        return Markup("")
    if key in RECORD_FIELDS and type(value) is int:
        name = g.get("laurel_record_names", {}).get((RECORD_FIELDS[key], value))
        if name:
            return Markup("{}").format(name)
        if name is not None:
            return Markup("<code>{}</code> {}").format(value, _("(deleted)"))
    if key in ("status", "decision") and value in STATUS_WORDS.get(entity or "", {}):
        return Markup("{}").format(STATUS_WORDS[entity or ""][value])
    if key in _WORD_FIELDS and isinstance(value, str):
        return Markup("{}").format(i18n.term(value))
    if isinstance(value, bool):
        return Markup("{}").format(_short(value))
    if isinstance(value, str) and value in _SECRET_WORDS:  # a password or a token: that
        return Markup("{}").format(_SECRET_WORDS[value])   # it changed, never what to
    if key == "locale" and isinstance(value, str) and value in i18n.LANGUAGES:
        return Markup("{}").format(i18n.LANGUAGES[value])
    moment = _moment_words(value)
    if moment is not None:  # in the page's words, the stored text kept as the tip
        return Markup('<span title="{}">{}</span>').format(value, moment)
    return Markup("<code>{}</code>").format(_short(value, most))


# what engine.db writes of a secret that changed, in the page's language
_SECRET_WORDS = {SECRET_SET: _l("(set)"), SECRET_CLEARED: _l("(cleared)")}


def _short(value: Any, most: int | None = None) -> str:
    """A snapshot's value in words: lists and mappings spelt out, to any depth, a
    mapping's keys named as fields where they are; ``most``: the first so many items of
    each, and how many more there are (a list of entries)."""
    if isinstance(value, list | dict):
        items = list(value.items() if isinstance(value, dict) else value)
        shown = items if most is None else items[:most]
        words = [f"{FIELD_NAMES.get(v[0]) or i18n.term(v[0])}: {_short(v[1], most)}"
                 if isinstance(value, dict) else _short(v, most) for v in shown]
        if len(items) > len(shown):
            words.append(_("%(n)d more", n=len(items) - len(shown)))
        return ("; " if isinstance(value, dict) else ", ").join(words)
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    return "–" if value is None else str(value)


class AuditLogView(LaurelModelView):
    resource = "audit_log"
    can_create = False  # type: ignore[assignment]
    can_edit = False  # type: ignore[assignment]
    can_delete = False  # type: ignore[assignment]
    column_list = ["at", "actor", "via", "action", "entity", "entity_id", "summary", "changes"]
    column_details_list = ["at", "actor", "via", "action", "entity", "entity_id", "summary",
                           "before", "after"]
    column_searchable_list = ["actor", "summary", "entity_id"]
    column_filters = ["actor", "via", "action", "entity", "at"]
    column_sortable_list = ["at", "actor", "action", "entity"]
    column_default_sort = ("id", True)
    column_formatters = {
        "at": lambda v, c, m, n: i18n.when(m.at),
        "summary": lambda v, c, m, n: i18n.audit_summary(m),
        "action": _choice_label,
        "entity": lambda v, c, m, n: resource_name(m.entity),
        "changes": lambda v, c, m, n: render_changes(m),
    }
    def get_list(self, *args: Any, **kwargs: Any) -> Any:
        count, entries = super().get_list(*args, **kwargs)
        if isinstance(entries, list):  # the page's snapshots and records, read together
            read_snapshots(_db(), entries)
            name_records(entries)
        return count, entries

    def get_query(self) -> Any:
        # the snapshots of the entries listed are read only where shown (render_changes)
        return with_sizes(super().get_query(), _db().get_bind().dialect.name)

    column_formatters_detail = {
        "at": lambda v, c, m, n: i18n.when(m.at),
        "summary": lambda v, c, m, n: i18n.audit_summary(m),
        "action": _choice_label,
        "entity": lambda v, c, m, n: resource_name(m.entity),
        "before": lambda v, c, m, n: render_mapping(m.before, m.after, m.entity, m),
        "after": lambda v, c, m, n: render_mapping(m.after, m.before, m.entity, m),
    }
    column_labels = {"at": _l("When"), "actor": _l("Who"), "via": _l("Through"),
                     "action": _l("Action"),
                     "entity": _l("Record type"), "entity_id": _l("Record"),
                     "summary": _l("Summary"), "changes": _l("Changes"),
                     "before": _l("Before"), "after": _l("After")}


def _password_allowed(form: Any, field: Any) -> None:
    """Refuse what set_password would refuse, next to the field and in the user's language."""
    if not field.data:
        return
    try:
        check_new_password(field.data)
    except PasswordRefused as exc:
        if exc.reason == "short":
            raise ValidationError(_("At least %(n)d characters are needed.",
                                    n=MIN_PASSWORD)) from None
        raise ValidationError(_("This is one of the most common passwords: anyone could "
                                "guess it. Choose another.")) from None


class UserView(LaurelModelView):
    resource = "user"
    column_list = ["email", "name", "role", "team", "locale", "active"]
    column_details_list = column_list
    column_searchable_list = ["email", "name"]
    column_filters = ["role", "active"]
    column_default_sort = "email"
    column_formatters = {"role": _choice_label,
                         "locale": lambda v, c, m, n: i18n.LANGUAGES.get(m.locale or "", "")}
    form_columns = ["email", "name", "password", "role", "team", "locale", "active"]
    form_extra_fields = {"password": PasswordField(
        _l("Password"), validators=[Optional(), _password_allowed],
        description=_l("Leave empty to keep the current password."))}
    # locale may be empty: Flask-Admin offers the empty choice itself, named here
    form_choices = {"role": _choices(ROLES), "locale": [("en", "English"), ("zh", "中文")]}
    column_labels = {"email": _l("Email"), "name": lazy_pgettext("person", "Name"),
                     "role": _l("Role"),
                     "team": _l("Team"), "locale": _l("Language"), "active": _l("Active"),
                     "password": _l("Password")}
    column_descriptions = {"team": _l("A sales manager sees this team only.")}
    form_args = {"team": {"blank_text": "–"},  # not Flask-Admin's "__None"
                 # "" (the browser's language) is the empty choice too
                 "locale": {"blank_text": _l("Browser language"),
                            "coerce": lambda v: v or None}}

    def create_form(self, obj: Any = None) -> Any:
        """A new user's password is required, said beside the field (not "leave empty to
        keep the current password": a new user has none)."""
        form = super().create_form(obj)
        # the message a str (_), not a lazy one: Flask-Admin shows a field's error only
        # when it is a str, taking anything else for a nested form's
        form.password.validators = [InputRequired(_("A new user needs a password.")),
                                    _password_allowed]
        form.password.flags.required = True
        form.password.description = _("At least %(n)d characters. Give it to the user "
                                       "in person, or invite an employee from their page "
                                       "to set their own.", n=MIN_PASSWORD)
        return form

    def on_model_change(self, form: Any, model: User, is_created: bool) -> None:
        model.email = (model.email or "").strip().lower()
        if "@" not in model.email:
            raise ValidationError(_("The email is not an email address."))
        model.locale = model.locale or None
        if model.role == "sales_manager" and model.team_id is None and model.team is None:
            raise ValidationError(_("A sales manager needs a team."))
        if model.role == "sales_rep":
            # a salesperson is the employee with the same email (engine.users)
            try:
                model.employee = employee_by_email(_db(), model.email)
            except LaurelError as exc:
                raise ValidationError(i18n.say(exc)) from None
            if model.employee is None:
                raise ValidationError(_("A salesperson is an employee: no employee has "
                                        "this email."))
        else:
            model.employee = None
        password = form.password.data
        if password:
            set_password(model, password)
        elif is_created:
            raise ValidationError(_("A new user needs a password."))

    def after_model_change(self, form: Any, model: User, is_created: bool) -> None:
        # A new password ends the user's sessions; who set their own stays logged in here.
        if form.password.data:
            renew_login(model)


# --- dashboard, imports, help -------------------------------------------------------------


class DashboardView(AdminIndexView):
    """What the logged-in role looks after: counts, the latest changes, its tasks."""

    def is_accessible(self) -> bool:
        return current_principal() is not None

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    @expose("/")
    def index(self) -> Any:
        if current_role() == "sales_rep":  # a salesperson's home is their own pay
            return redirect(url_for("portal.index"))
        db = _db()
        team_id = _team_scope()
        if team_id is not None:  # a team's: counted
            emp = select(func.count()).select_from(Employee).where(Employee.team_id == team_id)
            res = select(func.count()).select_from(ResultRow).where(ResultRow.employee_id.in_(
                select(Employee.id).where(Employee.team_id == team_id)))
            counts = [("employee", _l("Employees"), db.scalar(emp), True),
                      ("team", _l("Teams"), 1 if db.get(Team, team_id) else 0, True)]
        else:  # the whole organisation's: estimated past bulk.COUNTED_EXACTLY rows
            counts = [("employee", _l("Employees"), *bulk.rows_of(db, Employee.__table__)),
                      ("team", _l("Teams"), *bulk.rows_of(db, Team.__table__))]
            res = None
        counts += [("period", _l("Periods"), *bulk.rows_of(db, Period.__table__)),
                   ("result", _l("Results"), db.scalar(res), True) if res is not None
                   else ("result", _l("Results"), *bulk.rows_of(db, ResultRow.__table__))]
        open_periods = db.scalars(select(Period).where(Period.status == "open")
                                  .order_by(Period.start.desc()).limit(6)).all()
        entries = []
        if may_read("audit_log"):
            entries = db.scalars(with_sizes(select(AuditLog), db.get_bind().dialect.name)
                                 .order_by(AuditLog.id.desc()).limit(8)).all()
            read_snapshots(db, entries)
            name_records(entries)
        my_team = db.get(Team, team_id) if team_id and team_id > 0 else None
        user = current_principal()
        waiting = []
        for w in what_waits(db, user) if user is not None else []:
            label, endpoint, *args = WAITING[w.key]
            query = {k: user.email if v == "me" else v for k, v in (args or [{}])[0].items()}
            waiting.append((w, label, url_for(endpoint, **query)))
        # the flags' and inquiries' rules by their names, as the runs that raised them used
        named = [it for w, _label, _url in waiting for it in w.items if it.get("rule_key")]
        rule_names = i18n.rule_names(db, {it["rule_key"] for it in named},
                                     run_ids={it["run_id"] for it in named})
        return self.render("laurel/dashboard.html", counts=counts, entries=entries,
                           open_periods=open_periods, tasks=_tasks(), my_team=my_team,
                           role_name=ROLE_NAMES.get(current_role() or "", ""),
                           render_changes=lambda e: render_changes(e, readable=True),
                           choice=CHOICE_NAMES, waiting=waiting, rule_names=rule_names,
                           resource_name=resource_name)


def resource_name(entity: str) -> str:
    """The kind of record an audit entry is about, in the page's language."""
    return str(ENTITY_NAMES.get(entity) or RESOURCE_NAMES.get(entity, entity))


# The records the audit log names that are no resource of their own.
ENTITY_NAMES: dict[str, Any] = {"run": _l("Run"), "flag": _l("Flag"), "pip": _l("PIP"),
                                "candidate": _l("Candidate"), "rule": _l("Rule"),
                                "review_cycle": _l("Review cycle"), "inquiry": _l("Inquiry"),
                                "talk": _l("One-to-one"),
                                "employee_assignment": _l("Employee assignment")}
# What waits for a role (engine.waiting): its words and the list it opens.
WAITING: dict[str, tuple[Any, ...]] = {
    "drafts_to_approve": (_l("Rule drafts waiting for your approval"), "rules.index"),
    "runs_to_approve": (_l("Runs to approve"), "runs.index", {"status": "calculated"}),
    "runs_to_lock": (_l("Approved runs to lock"), "runs.index", {"status": "approved"}),
    "flags_assigned": (_l("Flags assigned to you"), "compliance.index",
                       {"status": "in_review", "assignee": "me"}),
    "flags_unassigned": (_l("Flags assigned to nobody"), "compliance.index",
                         {"status": "open", "assignee": "none"}),
    "pip_decisions": (_l("PIPs that ended and wait for a decision"), "pips.index",
                      {"status": "active"}),
    "candidates_to_decide": (_l("Nominated candidates to accept or decline"),
                             "candidates.index", {"status": "nominated"}),
    "candidates_to_nominate": (_l("Eligible candidates of your team to nominate"),
                               "candidates.index", {"status": "eligible"}),
    "inquiries_assigned": (_l("Inquiries assigned to you"), "inquiries.index",
                           {"status": "in_review", "assignee": "me"}),
    "inquiries_unassigned": (_l("Inquiries assigned to nobody"), "inquiries.index",
                             {"status": "active", "assignee": "none"}),
    "reviews_to_enter": (_l("Assessments of your team to enter"), "reviews.index"),
    "review_cycles_to_close": (_l("Review cycles past their deadline, to close"),
                               "reviews.index"),
}


def _tasks() -> list[tuple[Any, str]]:
    """Links to what the current role does, in the order of its work."""
    out: list[tuple[Any, str]] = []
    role = current_role()
    if role in IMPORT["employees"] or role in IMPORT["results"]:
        out.append((_l("Import a file"), url_for("imports.index")))
    # The period end, policies and people first: where each role's daily work is.
    for resource, endpoint in [("runs", "runs.index"), ("compliance", "compliance.index"),
                               ("rules", "rules.index"), ("dashboard", "teamdash.index"),
                               ("pips", "pips.index"), ("candidates", "candidates.index")]:
        if may_write(resource):
            out.append((_l("Work on %(what)s", what=RESOURCE_NAMES[resource]),
                        url_for(endpoint)))
        elif may_read(resource):
            out.append((_l("See %(what)s", what=RESOURCE_NAMES[resource]), url_for(endpoint)))
    for resource, endpoint in [("employee", "employee"), ("team", "team"),
                               ("result", "result"), ("metric", "metric"),
                               ("level", "level"), ("period", "period"),
                               ("pay_code", "paycode"), ("user", "user"),
                               ("audit_log", "auditlog")]:
        if may_write(resource):
            out.append((_l("Edit %(what)s", what=RESOURCE_NAMES[resource]),
                        url_for(f"{endpoint}.index_view")))
        elif may_read(resource):
            out.append((_l("See %(what)s", what=RESOURCE_NAMES[resource]),
                        url_for(f"{endpoint}.index_view")))
    out.append((_l("Help: who does what"), url_for("help.index")))
    return out


class ImportForm(FlaskForm):
    kind = SelectField(_l("What the file holds"), choices=[])
    file = FileField(_l("File (CSV or XLSX)"), validators=[
        FileRequired(_l("Choose a file.")),
        FileAllowed(["csv", "xlsx", "xlsm"], _l("Only CSV or XLSX files can be imported."))])


class ImportView(LaurelBaseView):
    """Upload employees or results; the whole file is imported or nothing is."""

    resource = "imports"

    def _kinds(self) -> list[tuple[str, Any]]:
        role = current_role()
        names = {"employees": _l("Employees and teams"), "results": _l("Period results")}
        return [(k, names[k]) for k in ("employees", "results") if role in IMPORT[k]]

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        kinds = self._kinds()
        if request.method == "POST" and not kinds:
            abort(403)
        form = ImportForm()
        form.kind.choices = kinds
        report = error = None
        if request.method == "POST" and form.validate_on_submit():
            upload = form.file.data
            name = upload.filename or "upload"
            data = upload.read()
            db = _db()
            fn = import_employees if form.kind.data == "employees" else import_results
            try:
                report = fn(db, name, data=data)
                db.commit()
            except ImportFileError as exc:
                db.rollback()
                error = i18n.say(exc)
            except LaurelError as exc:
                db.rollback()
                error = i18n.say(exc)
        recent = _db().scalars(select(AuditLog).where(AuditLog.action == "import")
                               .order_by(AuditLog.id.desc()).limit(10)).all()
        status = 400 if error or form.errors else 200
        return self.render("laurel/imports.html", form=form, report=report, error=error,
                           resource_name=resource_name,
                           recent=recent, can_import=bool(kinds), choice=CHOICE_NAMES,
                           # the layouts of the files this role imports (a reader: all)
                           layouts=[k for k, _name in kinds] or ["employees", "results"],
                           max_mb=MAX_FILE_BYTES // 2**20), status


class HelpView(LaurelBaseView):
    @expose("/")
    def index(self) -> Any:
        resources = ["employee", "team", "level", "period", "metric", "result", "audit_log",
                     "user", "imports", "rules", "pay_code", "runs", "compliance", "pips",
                     "candidates", "dashboard", "inquiries", "reviews", "talks", "analytics",
                     "portal"]
        matrix = []
        for role in ROLES:
            row = []
            for r in resources:
                if r == "imports":
                    kinds = [k for k in ("employees", "results") if role in IMPORT[k]]
                    row.append("write" if kinds else ("read" if may_read(r, role) else ""))
                elif may_write(r, role):
                    row.append("write")
                elif may_read(r, role):
                    row.append("team" if role == "sales_manager" and r in TEAM_SCOPED
                               else "read")
                else:
                    row.append("")
            matrix.append((role, ROLE_NAMES[role], row))
        return self.render("laurel/help.html", matrix=matrix,
                           resources=[RESOURCE_NAMES[r] for r in resources])


# --- wiring -------------------------------------------------------------------------------


__all__ = ["may_read", "may_write", "READ", "WRITE", "IMPORT"]
