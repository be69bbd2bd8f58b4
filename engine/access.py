"""Who may do what, for every door: the back office (admin/), the API (api/).

One table per kind of action: READ and WRITE per resource, IMPORT per kind of file, RUNS
per step of a period end. The back office's help page shows the same table, and the API's
tokens act with their user's role through it: what a role may do in one door it may do in
the other, and nothing more. A sales manager sees the TEAM_SCOPED resources of their own
team only (team_scope).
"""

from __future__ import annotations

from engine.models import STAFF_ROLES

# Every role of the staff; a sales_rep reads their own pay on the portal and nothing else.
ALL_ROLES = frozenset(STAFF_ROLES)
REP = frozenset({"sales_rep"})
READ: dict[str, frozenset[str]] = {
    "employee": ALL_ROLES,
    "team": ALL_ROLES,
    "period": ALL_ROLES,
    "metric": ALL_ROLES,
    "result": ALL_ROLES,
    "level": ALL_ROLES - {"sales_manager"},
    "audit_log": frozenset({"hr_admin", "comp_analyst", "compliance_officer", "auditor"}),
    # The auditor reads everything, users and roles included; only HR changes them.
    "user": frozenset({"hr_admin", "auditor"}),
    "imports": frozenset({"hr_admin", "comp_analyst", "auditor"}),
    # Policies (admin/rules_views.py): everyone but sales managers reads; HR changes them.
    "rules": ALL_ROLES - {"sales_manager"},
    "pay_code": ALL_ROLES - {"sales_manager"},
    "runs": ALL_ROLES,
    # Follow-up (admin/compliance_views.py, followup_views.py, dashboard_views.py).
    "compliance": ALL_ROLES,
    "pips": ALL_ROLES - {"compliance_officer"},
    "candidates": ALL_ROLES - {"compliance_officer"},
    "dashboard": ALL_ROLES,
    # The people being paid (admin/portal_views.py, people_views.py): the salesperson's
    # portal, their inquiries in the analysts' queue, review cycles, one-to-ones, and the
    # leadership analytics (a sales manager: their own team).
    "portal": REP,
    "inquiries": frozenset({"hr_admin", "comp_analyst", "auditor"}),
    "reviews": frozenset({"hr_admin", "comp_analyst", "sales_manager", "auditor"}),
    "talks": frozenset({"hr_admin", "sales_manager", "auditor"}),
    "analytics": frozenset({"hr_admin", "comp_analyst", "sales_manager", "auditor"}),
}
WRITE: dict[str, frozenset[str]] = {
    "employee": frozenset({"hr_admin"}),
    "team": frozenset({"hr_admin"}),
    "level": frozenset({"hr_admin"}),
    "metric": frozenset({"hr_admin"}),
    "user": frozenset({"hr_admin"}),
    "result": frozenset({"comp_analyst"}),
    "rules": frozenset({"hr_admin"}),
    "pay_code": frozenset({"hr_admin"}),
    "runs": frozenset({"hr_admin", "comp_analyst"}),
    # Compliance officers decide flags and nothing else; HR decides PIPs; a sales manager
    # nominates candidates of their own team and HR accepts or declines them.
    "compliance": frozenset({"compliance_officer"}),
    "pips": frozenset({"hr_admin"}),
    "candidates": frozenset({"hr_admin", "sales_manager"}),
    # A salesperson asks about their statement, enters their self-assessment and
    # acknowledges their one-to-ones; analysts answer inquiries; HR runs review cycles (a
    # manager enters the assessments of their team); managers record one-to-ones.
    "portal": REP,
    "inquiries": frozenset({"hr_admin", "comp_analyst"}),
    "reviews": frozenset({"hr_admin", "sales_manager"}),
    "talks": frozenset({"hr_admin", "sales_manager"}),
}
IMPORT: dict[str, frozenset[str]] = {
    "employees": frozenset({"hr_admin"}),
    "results": frozenset({"hr_admin", "comp_analyst"}),
}
# The period end (admin/runs_views.py): who does which step of a run. "overview" reads a
# whole run (totals, charts, comparisons, the payroll export and run jobs).
RUNS: dict[str, frozenset[str]] = {
    "overview": ALL_ROLES - {"sales_manager"},
    "start": frozenset({"hr_admin", "comp_analyst"}),
    "approve": frozenset({"hr_admin", "comp_analyst"}),
    "lock": frozenset({"hr_admin", "comp_analyst"}),
    "adjust": frozenset({"hr_admin", "comp_analyst"}),
    "reopen": frozenset({"hr_admin"}),
}
# Sales managers see these resources for their own team only.
TEAM_SCOPED = {"employee", "team", "result", "runs", "compliance", "pips", "candidates",
               "dashboard", "reviews", "talks", "analytics"}


# Personal API tokens: every staff member makes and revokes their own, for what their role
# may do (an auditor's token reads); a salesperson has no staff access, so no use for one.
TOKEN_OWNERS = ALL_ROLES


def may_read(resource: str, role: str | None) -> bool:
    return role is not None and role in READ.get(resource, ())


def may_write(resource: str, role: str | None) -> bool:
    return role is not None and role in WRITE.get(resource, ())


def may_import(kind: str, role: str | None) -> bool:
    return role is not None and role in IMPORT.get(kind, ())


def may_run(step: str, role: str | None) -> bool:
    return role is not None and role in RUNS.get(step, ())


def team_scope(role: str, team_id: int | None) -> int | None:
    """The team a sales manager is limited to (-1: none yet), else None (no limit).

    A salesperson sees no team (-1): their own pay is on the portal, never in staff views.
    """
    if role == "sales_rep":
        return -1
    if role == "sales_manager":
        return team_id if team_id is not None else -1
    return None
