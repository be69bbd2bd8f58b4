"""Policies in the back office: the rule editor, versions, try-it, impact and approval.

The editor is a server-rendered form of rows (conditions, tiers, decision-table rows), so
nobody types code or JSON, and a refused save shows the page again with everything kept
and the validation message (engine.rulebook.validate, as for files) next to its field or
row. Condition rows carry their depth in the tree (all / any / not groups), their owner
(the rule's ``when`` or one decision-table row) and are read in the order the page sends
them, so moving a row on the page needs no renumbering.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import Admin, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import scoped_session
from werkzeug.datastructures import MultiDict
from wtforms import ValidationError

from admin import i18n
from admin.auth import current_principal
from admin.views import LaurelBaseView, may_write
from engine import authoring, specs
from engine.conditions import (
    CONTEXT_FACTS,
    NUMBER_OPS,
    POPULATION_OPS,
    PRESENCE_OPS,
)
from engine.errors import LaurelError, RuleError
from engine.models import PERIOD_KINDS, TEAM_STAGES, Employee, Level, Metric, Rule
from engine.rulebook import ACTIONS_FOR_KIND, RULE_KINDS, latest

OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_in", "defined", "undefined", "highest",
       "top_share")
OP_WORDS: dict[str, Any] = {
    "==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥", "in": _l("is one of"),
    "not_in": _l("is none of"), "defined": _l("is defined"), "undefined": _l("is undefined"),
    "highest": _l("is the highest"), "top_share": _l("is in the top share")}
# Which fact types an operator fits (the editor hides the others; validation decides).
OP_TYPES = {op: "number" for op in NUMBER_OPS[2:]}
OP_TYPES.update({"==": "any", "!=": "any", "in": "text", "not_in": "text", "defined": "any",
                 "undefined": "any", "highest": "metric", "top_share": "metric"})
ACTION_TYPES = ("fixed", "rate", "per_unit", "tiers", "value", "table", "pip")
ACTION_NAMES = {"fixed": _l("A fixed amount"), "rate": _l("A rate of a metric"),
                "per_unit": _l("An amount per unit of a metric"),
                "tiers": _l("A tier table (rate by band)"), "value": _l("A value"),
                "table": _l("A decision table (first row that matches)"),
                "pip": _l("A performance improvement plan")}
# Which action fields each action type shows.
ACTION_FIELDS = {"amount": ("fixed", "per_unit"), "rate": ("rate",), "base": ("rate", "tiers"),
                 "per": ("per_unit",), "metric": ("tiers",), "value": ("value", "fixed"),
                 "months": ("pip",), "target": ("pip",)}
STATUS_NAMES = {"draft": _l("draft"), "published": _l("published"), "retired": _l("retired")}


def _db() -> scoped_session:
    return current_app.extensions["laurel_db"]


# --- the form's state ------------------------------------------------------------------------


@dataclass
class Cond:
    owner: str = "when"
    depth: int = 0
    node: str = "leaf"  # leaf, all, any, not
    fact: str = ""
    op: str = ""
    value: str = ""
    ref: str = ""
    path: str = ""  # the validator's name for it, e.g. when.all[2].any[1]

    @property
    def blank(self) -> bool:
        return self.node == "leaf" and not (self.fact or self.op or self.value or self.ref)


@dataclass
class TableRow:
    token: str
    value: str = ""
    join: str = "all"


@dataclass
class Tier:
    lo: str = ""
    hi: str = ""
    rate: str = ""

    @property
    def blank(self) -> bool:
        return not (self.lo or self.hi or self.rate)


@dataclass
class RuleForm:
    fields: dict[str, str] = field(default_factory=dict)
    scope: dict[str, list[str]] = field(default_factory=dict)
    hold: bool = False
    when_join: str = "all"
    conds: list[Cond] = field(default_factory=list)
    action: dict[str, str] = field(default_factory=dict)
    tiers: list[Tier] = field(default_factory=list)
    rows: list[TableRow] = field(default_factory=list)

    def conds_of(self, owner: str) -> list[tuple[int, Cond]]:
        return [(i, c) for i, c in enumerate(self.conds) if c.owner == owner]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _tree_rows(cond: dict[str, Any] | None, owner: str, depth: int = 0) -> list[Cond]:
    """The rows of a condition tree's children (the root's join is shown apart)."""
    out: list[Cond] = []
    for child in _children(cond):
        out.extend(_node_rows(child, owner, depth))
    return out


def _children(cond: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not cond:
        return []
    if "all" in cond:
        return list(cond["all"])
    if "any" in cond:
        return list(cond["any"])
    return [cond]


def _node_rows(cond: dict[str, Any], owner: str, depth: int) -> list[Cond]:
    if "fact" in cond:
        return [Cond(owner, depth, "leaf", cond["fact"], cond["op"], _text(cond.get("value")),
                     cond.get("ref") or "")]
    if "not" in cond:
        inner = cond["not"]
        rows = [Cond(owner, depth, "not")]
        if "all" in inner:
            rows += _tree_rows(inner, owner, depth + 1)
        else:
            rows += _node_rows(inner, owner, depth + 1)
        return rows
    node = "all" if "all" in cond else "any"
    return [Cond(owner, depth, node), *_tree_rows(cond, owner, depth + 1)]


def form_from_definition(d: dict[str, Any]) -> RuleForm:
    """The editor's state for a stored definition."""
    f = RuleForm()
    f.fields = {k: _text(d.get(k)) for k in ("key", "name", "description", "kind",
                                              "period_kind", "effective_from", "effective_to")}
    f.scope = {k: list(v) for k, v in (d.get("scope") or {}).items()}
    f.hold = bool(d.get("hold"))
    when = d.get("when")
    f.when_join = "any" if when and "any" in when else "all"
    f.conds = _tree_rows(when, "when")
    action = d.get("action") or {}
    f.action = {k: _text(v) for k, v in action.items() if k not in ("tiers", "rows")}
    f.tiers = [Tier(_text(t.get("from")), _text(t.get("to")), _text(t.get("rate")))
               for t in action.get("tiers") or []]
    for row in action.get("rows") or []:
        token = secrets.token_hex(4)
        when = row.get("when")
        f.rows.append(TableRow(token, _text(row.get("value")),
                               "any" if when and "any" in when else "all"))
        f.conds.extend(_tree_rows(when, token))
    return f


def blank_form(kind: str = "commission") -> RuleForm:
    f = RuleForm(fields={"kind": kind, "period_kind": "month"},
                 action={"type": ACTIONS_FOR_KIND[kind][0]})
    f.conds = [Cond()]
    f.tiers = [Tier(), Tier()]
    token = secrets.token_hex(4)
    f.rows = [TableRow(token)]
    f.conds.append(Cond(owner=token))
    return f


def form_from_request(form: MultiDict) -> RuleForm:
    f = RuleForm()
    f.fields = {k: (form.get(k) or "").replace("\r\n", "\n").strip()
                for k in ("key", "name", "description", "kind", "period_kind",
                          "effective_from", "effective_to")}
    f.scope = {"team_stage": form.getlist("scope_team_stage"),
               "level": form.getlist("scope_level"),
               "region": [r.strip() for r in (form.get("scope_region") or "").split(",")
                          if r.strip()]}
    f.hold = bool(form.get("hold"))
    f.when_join = "any" if form.get("when_join") == "any" else "all"
    columns = [form.getlist(f"c_{n}") for n in ("owner", "depth", "node", "fact", "op",
                                                "value", "ref")]
    for owner, depth, node, fact, op, value, ref in zip(*columns, strict=False):
        try:
            level = max(0, min(int(depth or 0), 8))
        except ValueError:
            level = 0
        f.conds.append(Cond(owner, level, node if node in ("leaf", "all", "any", "not")
                            else "leaf", fact.strip(), op.strip(), value.strip(), ref.strip()))
    f.action = {k: (form.get(f"a_{k}") or "").strip()
                for k in ("type", *ACTION_FIELDS)}
    for lo, hi, rate in zip(form.getlist("t_from"), form.getlist("t_to"),
                            form.getlist("t_rate"), strict=False):
        f.tiers.append(Tier(lo.strip(), hi.strip(), rate.strip()))
    for token, value, join in zip(form.getlist("r_token"), form.getlist("r_value"),
                                  form.getlist("r_join"), strict=False):
        f.rows.append(TableRow(token, value.strip(), "any" if join == "any" else "all"))
    return f


def _leaf(c: Cond) -> dict[str, Any]:
    out: dict[str, Any] = {"fact": c.fact, "op": c.op}
    if c.ref:
        out["ref"] = c.ref
        if c.value:
            out["value"] = c.value
    elif c.op in ("in", "not_in"):
        out["value"] = [v.strip() for v in c.value.split(",") if v.strip()]
    elif c.value or c.op not in (*PRESENCE_OPS, *POPULATION_OPS):
        out["value"] = c.value
    return out


def _build_tree(rows: list[Cond], join: str, root: str) -> dict[str, Any] | None:
    """Turn ordered rows with depths into a tree; set each row's validator path."""
    rows = [c for c in rows if not c.blank]
    if not rows:
        return None
    top: dict[str, Any] = {join: []}
    # (depth, node kind, its list of children, its path)
    stack: list[tuple[int, str, list[Any], str]] = [(-1, join, top[join], root)]
    groups: list[tuple[dict[str, Any], str, list[Any]]] = []
    for c in rows:
        while stack[-1][0] >= c.depth:
            stack.pop()
        parent_depth, kind, children, path = stack[-1]
        c.depth = parent_depth + 1
        index = len(children) + 1
        c.path = f"{path}.{kind}[{index}]"
        if c.node == "leaf":
            children.append(_leaf(c))
            continue
        node: dict[str, Any] = {c.node: []}
        children.append(node)
        groups.append((node, c.node, node[c.node]))
        stack.append((c.depth, c.node, node[c.node], c.path))
    # A "not" holds one condition: its only child, or all of its children.
    for node, kind, children in groups:
        if kind == "not":
            node["not"] = children[0] if len(children) == 1 else {"all": children}
    for c in rows:  # the validator names a not's child <path>.not (no index)
        c.path = re.sub(r"\.not\[1\]", ".not", c.path)
    return top


def definition_from_form(f: RuleForm) -> dict[str, Any]:
    """The rule document the form describes (validation is the engine's)."""
    doc: dict[str, Any] = {k: v for k, v in f.fields.items() if v != ""}
    doc["scope"] = {k: v for k, v in f.scope.items() if v}
    doc["hold"] = f.hold
    doc["when"] = _build_tree([c for c in f.conds if c.owner == "when"], f.when_join, "when")
    atype = f.action.get("type") or ""
    action: dict[str, Any] = {"type": atype}
    for name, types in ACTION_FIELDS.items():
        value = f.action.get(name, "")
        if atype in types and value != "":
            action[name] = value
    if atype == "pip":
        action["start"] = "next_period"
    if atype == "tiers":
        action["tiers"] = [{"from": t.lo or None, "to": t.hi or None, "rate": t.rate}
                           for t in f.tiers if not t.blank]
    if atype == "table":
        rows = []
        for row in f.rows:
            conds = [c for c in f.conds if c.owner == row.token]
            when = _build_tree(conds, row.join, "action.rows.when")
            if row.value == "" and when is None:
                continue
            rows.append({"when": when, "value": row.value})
        action["rows"] = rows
    doc["action"] = action
    return doc


# --- validation messages at their place ---------------------------------------------------------


def place_error(f: RuleForm, err: RuleError) -> dict[str, str]:
    """Map a RuleError's field and row to the form: {"where": message}."""
    name, row, reason = err.field or "", err.row, err.reason
    if name.startswith("when") or name.startswith("action.rows.when"):
        owner = "when"
        if name.startswith("action.rows.when"):
            real = [r for r in f.rows if r.value or any(
                not c.blank for c in f.conds if c.owner == r.token)]
            if row and row <= len(real):
                owner = real[row - 1].token
        best = None
        for i, c in f.conds_of(owner):
            if c.path and (name == c.path or name.startswith(c.path + ".")):
                if best is None or len(c.path) > len(f.conds[best].path):
                    best = i
        if best is not None:
            sub = name[len(f.conds[best].path) + 1:]
            sub = sub if sub in ("fact", "op", "value", "ref") else "row"
            return {f"cond:{best}:{sub}": reason}
        if owner != "when":
            index = next(i for i, r in enumerate(f.rows) if r.token == owner)
            return {f"row:{index}:when": reason}
        return {"when": reason}
    if name.startswith("action.tiers"):
        real = [i for i, t in enumerate(f.tiers) if not t.blank]
        if row and row <= len(real):
            sub = name.rsplit(".", 1)[-1]
            sub = {"from": "from", "to": "to", "rate": "rate"}.get(sub, "row")
            return {f"tier:{real[row - 1]}:{sub}": reason}
        return {"action.tiers": reason}
    if name.startswith("action.rows"):
        real = [i for i, r in enumerate(f.rows) if r.value or any(
            not c.blank for c in f.conds if c.owner == r.token)]
        if row and row <= len(real):
            return {f"row:{real[row - 1]}:value": reason}
        return {"action.rows": reason}
    if name.startswith("action."):
        return {f"action:{name.split('.', 1)[1]}": reason}
    if name.startswith("scope"):
        return {name.replace(".", "_"): reason}
    return {name or "form": reason}


# --- the views ---------------------------------------------------------------------------------


def _facts() -> list[dict[str, str]]:
    """Every fact a condition may read, metrics from the catalog first."""
    out = []
    for m in _db().scalars(select(Metric).order_by(Metric.key)):
        out.append({"name": m.key, "type": m.type, "group": "metric",
                    "label": f"{m.key} - {i18n.metric_label(m)}"})
    for name, ftype, words in CONTEXT_FACTS:
        out.append({"name": name, "type": ftype, "group": "context", "label": f"{name} - {words}"})
    return out


def _user() -> str:
    user = current_principal()
    return user.email if user else "anonymous"


def _check_csrf() -> None:
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            abort(400)


def _gate_summary(report: specs.GateReport) -> str:
    return _("%(n)d scenarios passed.", n=len(report.scenarios)) if report.scenarios \
        else _("This policy has no scenarios yet.")


class RulesView(LaurelBaseView):
    """The policies: list, editor, versions, scenarios, try-it, impact and approval."""

    resource = "rules"

    def _can_write(self) -> bool:
        return may_write("rules")

    def _require_write(self) -> None:
        if not self._can_write():
            abort(403)
        if request.method == "POST":
            _check_csrf()

    def _rule(self, key: str, version: int | None = None) -> Rule:
        db = _db()
        rule = latest(db, key) if version is None else db.scalar(
            select(Rule).where(Rule.key == key, Rule.version == version))
        if rule is None:
            abort(404)
        return rule

    def render(self, template: str, **kwargs: Any) -> Any:
        kwargs.setdefault("status_names", STATUS_NAMES)
        kwargs.setdefault("can_write", self._can_write())
        return super().render(template, **kwargs)

    # --- list ------------------------------------------------------------------------------

    @expose("/")
    def index(self) -> Any:
        db = _db()
        rows = []
        keys = db.scalars(select(Rule.key).distinct().order_by(Rule.key)).all()
        for key in keys:
            all_versions = authoring.versions(db, key)
            newest = all_versions[0]
            published = next((r for r in all_versions if r.status == "published"), None)
            rows.append({"key": key, "newest": newest, "published": published,
                         "waiting": newest.status == "draft"
                         and newest.publish_requested_by is not None})
        return self.render("laurel/rules/list.html", rows=rows,
                           waiting=authoring.awaiting_approval(db))

    # --- the editor ------------------------------------------------------------------------

    def _editor(self, form: RuleForm, errors: dict[str, str], rule: Rule | None,
                message: str | None = None, status: int = 200) -> Any:
        kind = form.fields.get("kind") or "commission"
        return self.render(
            "laurel/rules/edit.html", form=form, errors=errors, rule=rule, message=message,
            facts=_facts(), ops=OPS, op_words=OP_WORDS, op_types=OP_TYPES,
            kinds=RULE_KINDS, period_kinds=PERIOD_KINDS, stages=TEAM_STAGES,
            levels=_db().scalars(select(Level.code).order_by(Level.code)).all(),
            action_types=ACTION_TYPES, action_names=ACTION_NAMES,
            action_fields=ACTION_FIELDS, actions_for_kind=ACTIONS_FOR_KIND,
            allowed=ACTIONS_FOR_KIND.get(kind, ACTION_TYPES),
            new_token=lambda: secrets.token_hex(4)), status

    def _save(self, rule: Rule | None) -> Any:
        form = form_from_request(request.form)
        doc = definition_from_form(form)
        if rule is not None and doc.get("key") != rule.key:
            return self._editor(form, {"key": _("The key of an existing rule cannot change; "
                                                "save it as a new rule instead.")}, rule,
                                status=400)
        if rule is None and doc.get("key") and latest(_db(), doc["key"]) is not None:
            return self._editor(form, {"key": _("A rule with this key exists: open it to "
                                                "change it.")}, rule, status=400)
        db = _db()
        try:
            saved, created = authoring.save_draft(db, doc, _user())
            db.commit()
        except RuleError as exc:
            db.rollback()
            return self._editor(form, place_error(form, exc), rule, message=str(exc),
                                status=400)
        except LaurelError as exc:
            db.rollback()
            return self._editor(form, {"form": str(exc)}, rule, message=str(exc), status=400)
        if created:
            flash(_("Saved as version %(v)d, a draft. Ask for publishing when it is ready.",
                    v=saved.version), "success")
        else:
            flash(_("Nothing changed: version %(v)d stays as it is.", v=saved.version), "info")
        return redirect(url_for(".rule", key=saved.key))

    @expose("/new", methods=("GET", "POST"))
    def new(self) -> Any:
        self._require_write()
        if request.method == "POST":
            return self._save(None)
        kind = request.args.get("kind", "commission")
        return self._editor(blank_form(kind if kind in RULE_KINDS else "commission"), {},
                            None)

    @expose("/<key>/edit", methods=("GET", "POST"))
    def edit(self, key: str) -> Any:
        self._require_write()
        rule = self._rule(key, request.args.get("version", type=int))
        if request.method == "POST":
            return self._save(rule)
        return self._editor(form_from_definition(rule.definition), {}, rule)

    # --- one rule: versions, scenarios, requests --------------------------------------------

    @expose("/<key>/")
    def rule(self, key: str) -> Any:
        db = _db()
        all_versions = authoring.versions(db, key)
        if not all_versions:
            abort(404)
        newest = all_versions[0]
        published = next((r for r in all_versions if r.status == "published"), None)
        return self.render("laurel/rules/rule.html", key=key, versions=all_versions,
                           newest=newest, published=published,
                           lines=authoring.readable(newest.definition),
                           scenarios=authoring.scenarios_of(db, key),
                           has_feature=specs.feature_text(key) is not None,
                           vocabulary=specs.vocabulary(), report=None)

    @expose("/<key>/scenarios", methods=("POST",))
    def scenarios(self, key: str) -> Any:
        self._require_write()
        db = _db()
        rule = self._rule(key)
        text = request.form.get("scenarios", "")
        try:
            authoring.save_scenarios(db, key, text, _user())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            flash(_("Scenarios not saved: %(e)s", e=str(exc)), "error")
            return self._rule_page_with(key, text=text, status=400)
        report = None
        if request.form.get("run"):
            report = authoring.check_scenarios(db, rule)
        else:
            flash(_("Scenarios saved."), "success")
        return self._rule_page_with(key, report=report)

    def _rule_page_with(self, key: str, report: specs.GateReport | None = None,
                        text: str | None = None, status: int = 200) -> Any:
        db = _db()
        all_versions = authoring.versions(db, key)
        newest = all_versions[0]
        published = next((r for r in all_versions if r.status == "published"), None)
        return self.render("laurel/rules/rule.html", key=key, versions=all_versions,
                           newest=newest, published=published,
                           lines=authoring.readable(newest.definition),
                           scenarios=text if text is not None
                           else authoring.scenarios_of(db, key),
                           has_feature=specs.feature_text(key) is not None,
                           vocabulary=specs.vocabulary(), report=report), status

    @expose("/<key>/v<int:version>/request", methods=("POST",))
    def request_publish(self, key: str, version: int) -> Any:
        self._require_write()
        db = _db()
        rule = self._rule(key, version)
        try:
            report = authoring.request_publish(db, rule, _user())
            db.commit()
        except authoring.PublishBlocked as exc:
            db.rollback()
            flash(_("Not sent for approval: a scenario fails. Fix the rule or the "
                    "scenario, then ask again."), "error")
            return self._rule_page_with(key, report=exc.report, status=400)
        except LaurelError as exc:
            db.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".rule", key=key))
        flash(_("Sent for approval: %(gate)s Another HR administrator approves it.",
                gate=_gate_summary(report)), "success")
        return redirect(url_for(".rule", key=key))

    @expose("/<key>/v<int:version>/withdraw", methods=("POST",))
    def withdraw(self, key: str, version: int) -> Any:
        self._require_write()
        db = _db()
        try:
            authoring.withdraw_request(db, self._rule(key, version), _user())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            flash(str(exc), "error")
        return redirect(url_for(".rule", key=key))

    # --- approval with the impact preview ---------------------------------------------------

    def _impact(self, rule: Rule) -> tuple[Any, list[Any], str | None, str | None]:
        db = _db()
        choices = authoring.preview_periods(db, rule.period_kind)
        code = request.args.get("period") or (choices[0].code if choices else None)
        impact = error = None
        if code:
            try:
                impact = authoring.impact_preview(db, rule.definition, code)
            except LaurelError as exc:
                error = str(exc)
        return impact, choices, code, error

    @expose("/<key>/v<int:version>/review")
    def review(self, key: str, version: int) -> Any:
        db = _db()
        rule = self._rule(key, version)
        published = authoring.current_published(db, key)
        diff = authoring.diff_definitions(published.definition if published else {},
                                          rule.definition)
        impact, choices, code, error = self._impact(rule)
        me = _user()
        may_approve = self._can_write() and rule.status == "draft" and \
            rule.publish_requested_by is not None and \
            me not in (rule.publish_requested_by, rule.created_by)
        return self.render("laurel/rules/review.html", rule=rule, published=published,
                           diff=diff, impact=impact, periods=choices, period=code,
                           impact_error=error, may_approve=may_approve, me=me)

    @expose("/<key>/v<int:version>/approve", methods=("POST",))
    def approve(self, key: str, version: int) -> Any:
        self._require_write()
        db = _db()
        rule = self._rule(key, version)
        try:
            report = authoring.approve(db, rule, _user())
            db.commit()
        except authoring.PublishBlocked as exc:
            db.rollback()
            flash(_("Not published: a scenario fails."), "error")
            return self._rule_page_with(key, report=exc.report, status=400)
        except LaurelError as exc:
            db.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".review", key=key, version=version))
        flash(_("Published version %(v)d. %(gate)s", v=rule.version,
                gate=_gate_summary(report)), "success")
        return redirect(url_for(".rule", key=key))

    # --- compare, try ------------------------------------------------------------------------

    @expose("/<key>/compare")
    def compare(self, key: str) -> Any:
        all_versions = authoring.versions(_db(), key)
        if not all_versions:
            abort(404)
        by_number = {r.version: r for r in all_versions}
        left = by_number.get(request.args.get("a", type=int) or 0) or (
            all_versions[1] if len(all_versions) > 1 else all_versions[0])
        right = by_number.get(request.args.get("b", type=int) or 0) or all_versions[0]
        return self.render("laurel/rules/compare.html", key=key, versions=all_versions,
                           left=left, right=right,
                           diff=authoring.diff_definitions(left.definition, right.definition))

    @expose("/<key>/v<int:version>/try")
    def try_it(self, key: str, version: int) -> Any:
        db = _db()
        rule = self._rule(key, version)
        choices = authoring.preview_periods(db, rule.period_kind)
        code = request.args.get("period") or (choices[0].code if choices else "")
        employee = (request.args.get("employee") or "").strip()
        outcomes = error = None
        if code and employee:
            try:
                outcomes = authoring.try_rule(db, rule.definition, code, employee)
            except LaurelError as exc:
                error = str(exc)
        employees = db.execute(select(Employee.code, Employee.name)
                               .order_by(Employee.code)).all()
        return self.render("laurel/rules/try.html", rule=rule, periods=choices, period=code,
                           employee=employee, employees=employees, outcomes=outcomes,
                           error=error)


def add_views(admin: Admin) -> None:
    """Add the policies to the back office (category "Policies")."""
    admin.add_view(RulesView(_l("Rules"), _l("Policies"), endpoint="rules",
                             url="/admin/rules"))


__all__ = ["add_views", "definition_from_form", "form_from_definition", "form_from_request",
           "place_error"]
