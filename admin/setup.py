"""The back office put together: every page module's views on one Flask-Admin.

The page modules import their shared helpers from admin/base.py and never this module or
each other's wiring, so no module imports one that imports it back.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import scoped_session

from admin import (
    compliance_views,
    dashboard_views,
    followup_views,
    people_views,
    portal_views,
    rules_views,
    runs_views,
    tokens_views,
)
from admin.headers import csp_nonce
from admin.views import (
    AuditLogView,
    DashboardView,
    EmployeeView,
    HelpView,
    ImportView,
    LevelView,
    MetricView,
    PayCodeView,
    PeriodView,
    ResultView,
    TeamView,
    UserView,
)
from engine.models import (
    AuditLog,
    Employee,
    Level,
    Metric,
    PayCode,
    Period,
    ResultRow,
    Team,
    User,
)


def init_admin(app: Flask, db: scoped_session) -> Admin:
    """Create the Admin for this app and add every view, grouped by category."""
    import warnings

    admin = Admin(app, name="Laurel", url="/admin",
                  theme=Bootstrap4Theme(base_template="laurel/base.html", fluid=True),
                  index_view=DashboardView(name=_l("Home"), url="/admin"),
                  csp_nonce_generator=csp_nonce,
                  # Flask-Admin's own words its installed catalog lacks (domain "admin"):
                  # read before its own
                  translations_path=str(Path(__file__).parent / "translations"))
    org, comp, comp_cat = _l("Organisation"), _l("Compensation"), _l("Compliance")
    with warnings.catch_warnings():
        # Flask-Admin 2.2 would rather have a Flask-SQLAlchemy object; a plain scoped
        # session is what engine/ offers and is still supported until Flask-Admin 3.
        warnings.filterwarnings("ignore", message="Passing a session object directly",
                                category=DeprecationWarning)
        admin.add_view(EmployeeView(Employee, db, _l("Employees"), org, endpoint="employee"))
        admin.add_view(TeamView(Team, db, _l("Teams"), org, endpoint="team"))
        admin.add_view(LevelView(Level, db, _l("Levels"), org, endpoint="level"))
        admin.add_view(UserView(User, db, _l("Users"), org, endpoint="user"))
        admin.add_view(PeriodView(Period, db, _l("Periods"), comp, endpoint="period"))
        admin.add_view(MetricView(Metric, db, _l("Metrics"), comp, endpoint="metric"))
        admin.add_view(ResultView(ResultRow, db, _l("Results"), comp, endpoint="result"))
        admin.add_view(PayCodeView(PayCode, db, _l("Pay codes"), comp, endpoint="paycode"))
        admin.add_view(AuditLogView(AuditLog, db, _l("Audit log"), comp_cat,
                                    endpoint="auditlog"))
    admin.add_view(ImportView(_l("Imports"), comp, endpoint="imports", url="/admin/imports"))
    for module in (runs_views, rules_views, compliance_views, dashboard_views, followup_views,
                   portal_views, people_views, tokens_views):
        module.add_views(admin)
    admin.add_view(HelpView(_l("Help"), endpoint="help", url="/admin/help"))
    return admin
