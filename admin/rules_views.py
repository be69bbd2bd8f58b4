"""Policies in the back office: the rule editor, scenarios, versions, try-it, impact, approval.

The editor is a server-rendered form of rows (conditions, tiers, decision-table rows), so
nobody types code or JSON, and a refused save shows the page again with everything kept
and the validation message (engine.rulebook.validate, as for files) next to its field or
row. Condition rows carry their depth in the tree (all / any / not groups), their owner
(the rule's ``when`` or one decision-table row) and are read in the order the page sends
them, so moving a row on the page needs no renumbering. Numbers are typed in HR's units:
rates and every ratio as percentages ("7" or "7 %" is 0.07; a rate above 100% needs a
tick), amounts as people write them ("1,500", "1500元"; engine.cells.typed_amount).

A version's scenarios (engine.scenarios) are shown as people read them and edited as
tables and values; when the gate finds new figures, HR accepts them into the draft.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

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
from admin.base import LaurelBaseView, may_write
from engine import authoring, plain, scenarios, specs, wording
from engine.cells import CellError, typed_amount, typed_percent
from engine.conditions import (
    CONTEXT_FACTS,
    NUMBER_OPS,
    POPULATION_OPS,
    PRESENCE_OPS,
)
from engine.errors import LaurelError, RuleError
from engine.models import PERIOD_KINDS, TEAM_STAGES, Employee, Level, Metric, Rule
from engine.rulebook import ACTIONS_FOR_KIND, LIMITS, RULE_KINDS, latest
from engine.statements import reader

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
ACTION_TYPES = ("fixed", "rate", "per_unit", "tiers", "value", "table", "pip", "draw")
ACTION_NAMES = {"fixed": _l("A fixed amount"), "rate": _l("A rate of a metric"),
                "per_unit": _l("An amount per unit of a metric"),
                "tiers": _l("A tier table (rate by band)"), "value": _l("A value"),
                "table": _l("A decision table (first row that matches)"),
                "pip": _l("A performance improvement plan"),
                "draw": _l("A draw: commissions guaranteed for some periods")}
# The editor's fields of an amount rule's mappings: action.clawback's below, within and
# share, action.on_signing's share and release_at (clawback_below, on_signing_share, ...).
NESTED = {"clawback": ("below", "within", "share"), "on_signing": ("share", "release_at")}
NESTED_FIELDS = tuple(f"{m}_{k}" for m, keys in NESTED.items() for k in keys)
# The fields typed as percentages besides the rate.
PERCENT_FIELDS = ("recovery_share", "clawback_below", "clawback_share", "on_signing_share",
                  "on_signing_release_at")
# Which action fields each action type shows.
ACTION_FIELDS = {"amount": ("fixed", "per_unit", "draw"), "periods": ("draw",),
                 "recoverable": ("draw",), "recovery_share": ("draw",), "rate": ("rate",),
                 "base": ("rate", "tiers"),
                 "per": ("per_unit",), "metric": ("tiers",), "mode": ("tiers",),
                 "value": ("value", "fixed"), "months": ("pip",), "target": ("pip",),
                 **{limit: ("fixed", "rate", "per_unit", "tiers")
                    for limit in (*LIMITS, "prorate", *NESTED_FIELDS)}}
TIER_MODE_NAMES = {"retroactive": _l("Retroactive: the rate reached applies to the whole base"),
                   "marginal": _l("Marginal: each slice of the base at its own tier's rate")}
STATUS_NAMES = {"draft": _l("draft"), "published": _l("published"), "retired": _l("retired"),
                "discarded": _l("discarded")}
# The values of a scenario's steps, as a field's label says them.
FIELD_WORDS = {"code": _l("Employee code"), "codes": _l("Employee codes"), "rule": _l("Rule"),
               "kind": _l("Kind"), "amount": _l("Amount"), "status": _l("Status"),
               "value": _l("Value"), "period": _l("Period"), "level": _l("Level"),
               "team": _l("Team"), "stage": _l("Team stage"), "first": _l("First code"),
               "last": _l("Last code"), "metric": _l("Metric"),
               "state": _l("approved or locked")}
TOP = ("key", "name", "name_zh", "description", "description_zh", "kind", "period_kind",
       "effective_from", "effective_to")
# Starting points for the common kinds of rule: (name, kind, the form's fields).
STARTS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "tiered_commission": (_l("Tiered commission"), "commission", {
        "when": {"all": [{"fact": "attainment", "op": "defined"}]},
        "action": {"type": "tiers", "metric": "attainment", "base": "revenue_total",
                   "tiers": [{"from": None, "to": "0.80", "rate": "0.03"},
                             {"from": "0.80", "to": "1.00", "rate": "0.04"},
                             {"from": "1.00", "to": None, "rate": "0.05"}]}}),
    "fixed_bonus": (_l("Fixed bonus"), "bonus", {
        "when": {"all": [{"fact": "attainment", "op": ">=", "value": "1.00"}]},
        "action": {"type": "fixed", "amount": "1000.00"}}),
    "per_unit_bonus": (_l("Bonus per unit"), "bonus", {
        "when": {"all": [{"fact": "new_customers", "op": ">", "value": "0"}]},
        "action": {"type": "per_unit", "amount": "100.00", "per": "new_customers"}}),
    "rating_table": (_l("Rating table"), "rating", {
        "action": {"type": "table", "rows": [
            {"when": {"all": [{"fact": "attainment", "op": ">=", "value": "1.10"}]}, "value": "A"},
            {"when": {"all": [{"fact": "attainment", "op": ">=", "value": "0.90"}]}, "value": "B"},
            {"when": {"all": [{"fact": "attainment", "op": "defined"}]}, "value": "C"}]}}),
    "flag": (_l("Compliance flag"), "flag", {
        "when": {"all": [{"fact": "max_discount_pct", "op": ">", "ref": "level_authority"}]},
        "action": {"type": "value", "value": "high"}, "hold": True}),
}


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


# --- HR's units --------------------------------------------------------------------------------


def _percent_text(value: Any) -> str:
    """A stored fraction as the percentage HR types: 0.06 -> 6, 1.20 -> 120."""
    if value in (None, ""):
        return ""
    try:
        return format(Decimal(str(value)).scaleb(2), "f")
    except InvalidOperation:
        return str(value)


def _unit(fact: str, op: str, types: dict[str, str]) -> str:
    """How a condition's value is typed: percent, money or number."""
    if op == "top_share" or types.get(fact) == "ratio":
        return "percent"
    return "money" if types.get(fact) == "money" else "number"


def _shown(value: Any, unit: str) -> str:
    return _percent_text(value) if unit == "percent" else _text(value)


def _in_units(form: RuleForm, types: dict[str, str]) -> RuleForm:
    """The form with its stored fractions shown as percentages."""
    for c in form.conds:
        if c.node == "leaf" and not c.ref and c.op not in ("in", "not_in"):
            c.value = _shown(c.value, _unit(c.fact, c.op, types))
    metric_unit = _unit(form.action.get("metric", ""), "", types)
    for t in form.tiers:
        t.lo, t.hi, t.rate = _shown(t.lo, metric_unit), _shown(t.hi, metric_unit), \
            _percent_text(t.rate)
    for name in ("rate", *PERCENT_FIELDS):
        if form.action.get(name):
            form.action[name] = _percent_text(form.action[name])
    return form


def _typed(text: str, unit: str, where: str, errors: dict[str, str], confirm: bool,
           rate: bool = False) -> str:
    """What HR typed, as the rule document holds it; a refused value stays as typed (the
    validation names it) unless the message here says more."""
    if text == "" or unit == "number":
        return text
    try:
        value = typed_percent(text) if unit == "percent" else typed_amount(text)
    except CellError as exc:
        errors[where] = i18n.say(exc.reason)
        return text
    if rate and value > 1 and not confirm:
        errors["_confirm"] = ""
        errors[where] = str(_("%(p)s%% is a rate above 100%%: tick \"Rates above 100%% are "
                              "meant\" to save it.", p=_percent_text(value)))
    return format(value, "f")


def to_stored_units(form: RuleForm, types: dict[str, str], confirm: bool
                    ) -> dict[str, str]:
    """Turn the form's typed values into the rule's (fractions, plain amounts) in place;
    return the messages of values that cannot be read, by their place on the form."""
    errors: dict[str, str] = {}
    for i, c in enumerate(form.conds):
        if c.node == "leaf" and not c.ref and c.op not in ("in", "not_in", *PRESENCE_OPS):
            c.value = _typed(c.value, _unit(c.fact, c.op, types), f"cond:{i}:value", errors,
                             confirm)
    metric_unit = _unit(form.action.get("metric", ""), "", types)
    for i, t in enumerate(form.tiers):
        t.lo = _typed(t.lo, metric_unit, f"tier:{i}:from", errors, confirm)
        t.hi = _typed(t.hi, metric_unit, f"tier:{i}:to", errors, confirm)
        t.rate = _typed(t.rate, "percent", f"tier:{i}:rate", errors, confirm, rate=True)
    if form.action.get("rate"):
        form.action["rate"] = _typed(form.action["rate"], "percent", "action:rate", errors,
                                     confirm, rate=True)
    for name in PERCENT_FIELDS:
        if form.action.get(name):
            form.action[name] = _typed(form.action[name], "percent", f"action:{name}", errors,
                                       confirm)
    for name in ("amount", *LIMITS):
        if form.action.get(name):
            form.action[name] = _typed(form.action[name], "money", f"action:{name}", errors,
                                       confirm)
    return errors


def keep_written(new: Any, old: Any) -> Any:
    """The new document with each number that equals the old one's written as before
    (120 % read back is 1.20; a rule that said 1.2 keeps saying it)."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: keep_written(v, old.get(k)) for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list):
        return [keep_written(v, old[i] if i < len(old) else None) for i, v in enumerate(new)]
    if isinstance(new, str) and isinstance(old, str) and new != old:
        try:
            if Decimal(new) == Decimal(old):
                return old
        except InvalidOperation:
            pass
    return new


def form_from_definition(d: dict[str, Any]) -> RuleForm:
    """The editor's state for a stored definition (fractions as stored)."""
    f = RuleForm()
    f.fields = {k: _text(d.get(k)) for k in TOP}
    f.scope = {k: list(v) for k, v in (d.get("scope") or {}).items()}
    f.hold = bool(d.get("hold"))
    when = d.get("when")
    f.when_join = "any" if when and "any" in when else "all"
    f.conds = _tree_rows(when, "when")
    action = d.get("action") or {}
    f.action = {k: _text(v) for k, v in action.items()
                if k not in ("tiers", "rows", *NESTED)}
    for name in NESTED:
        for k, v in (action.get(name) or {}).items():
            f.action[f"{name}_{k}"] = _text(v)
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
    f.fields = {k: (form.get(k) or "").replace("\r\n", "\n").strip() for k in TOP}
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


def key_from_name(kind: str, name: str) -> str:
    """A new rule's key from its kind and English name, as the editor's script makes it
    (rule_editor.js, makeKey): "Fixed bonus", a bonus, is bonus.fixed_bonus."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name.lower())
                    if not unicodedata.combining(c))  # ü is u, not u_
    slug = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")
    return f"{kind}.{slug}" if slug and kind else ""


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
    for name, keys in NESTED.items():
        given = {k: action.pop(f"{name}_{k}") for k in keys if f"{name}_{k}" in action}
        if given:
            action[name] = given
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
    name, row, reason = err.field or "", err.row, i18n.say(err.reason)
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
        sub = name.split(".", 1)[1]
        for nested in NESTED:
            sub = sub.replace(f"{nested}.", f"{nested}_")
        return {f"action:{sub}": reason}
    if name.startswith("scope"):
        return {name.replace(".", "_"): reason}
    return {name or "form": reason}


# --- the scenario editor's form ----------------------------------------------------------------


def _step_from_form(form: MultiDict, name: str, step: scenarios.Step) -> scenarios.Step:
    """A step as the form sends it: its keyword, its values (or words) and its table."""
    keyword = form.get(f"{name}.kw", step.keyword)
    keyword = keyword if keyword in scenarios.KEYWORDS else step.keyword
    values = {k[len(name) + 3:]: v.strip() for k, v in form.items()
              if k.startswith(f"{name}.f.")}
    text = specs.with_values(step.text, values) if values else \
        (form.get(f"{name}.text") or step.text).strip()
    table = _table_from_form(form, name, step.table)
    return scenarios.Step(keyword, text, table, step.comments)


def _table_from_form(form: MultiDict, name: str, table: list[list[str]] | None
                     ) -> list[list[str]] | None:
    if not table:
        return table
    out = []
    for r, row in enumerate(table):
        if r and form.get(f"{name}.r{r}.del"):
            continue
        out.append([(form.get(f"{name}.r{r}.c{c}", cell) or "").strip()
                    for c, cell in enumerate(row)])
    if form.get("addrow") == name and len(out) > 0:
        out.append(list(out[-1]) if len(out) > 1 else ["" for _ in out[0]])
    return out


def feature_from_form(feature: scenarios.Feature, form: MultiDict) -> scenarios.Feature:
    """The scenarios with what HR changed on the page: names, values, tables, examples;
    scenarios removed or copied."""
    out = scenarios.Feature(feature.name, feature.description, tags=feature.tags)
    out.background = [_step_from_form(form, f"b.t{j}", st)
                      for j, st in enumerate(feature.background)]
    for i, sc in enumerate(feature.scenarios):
        if form.get(f"s{i}.remove"):
            continue
        new = scenarios.Scenario((form.get(f"s{i}.name") or sc.name).strip(),
                                 description=sc.description, tags=sc.tags,
                                 comments=sc.comments)
        new.steps = [_step_from_form(form, f"s{i}.t{j}", st) for j, st in enumerate(sc.steps)]
        new.examples = [scenarios.Examples(_table_from_form(form, f"s{i}.e{e}", ex.table)
                                           or [], ex.name)
                        for e, ex in enumerate(sc.examples)]
        out.scenarios.append(new)
        if form.get("copy") == f"s{i}":
            twin = scenarios.Scenario(f"{new.name} (2)", [scenarios.Step(
                st.keyword, st.text, [list(r) for r in st.table] if st.table else None)
                for st in new.steps], [scenarios.Examples([list(r) for r in ex.table], ex.name)
                                       for ex in new.examples])
            out.scenarios.append(twin)
    return out


def _acceptances(values: list[str]) -> list[authoring.Acceptance]:
    """The examples HR ticked: "scenario:examples:row:step:figures" each."""
    out = []
    for value in values:
        try:
            sc, ex, row, step, figures = value.split(":", 4)
            where = scenarios.Where(int(sc), int(ex) if ex else None,
                                    int(row) if row else None)
            out.append(authoring.Acceptance(where, int(step), dict(parse_qsl(figures))))
        except ValueError:
            abort(400)
    return out


def acceptance_value(s: specs.ScenarioResult) -> str:
    """How the gate's page names a failing example that HR may accept."""
    w, step = s.where, s.failed_step
    assert w is not None and step is not None and step.index is not None
    return (f"{w.scenario}:{'' if w.examples is None else w.examples}:"
            f"{'' if w.row is None else w.row}:{step.index}:{urlencode(s.figures or {})}")


# --- the views ---------------------------------------------------------------------------------


def _facts() -> list[dict[str, str]]:
    """Every fact a condition may read, metrics from the catalog first."""
    out = []
    for m in _db().scalars(select(Metric).order_by(Metric.key)):
        out.append({"name": m.key, "type": m.type, "group": "metric",
                    "label": f"{m.key} - {i18n.metric_label(m)}"})
    zh = i18n.current_language() == "zh"
    for name, ftype, words in CONTEXT_FACTS:
        label = wording.CONTEXT_ZH.get(name, words) if zh else words
        out.append({"name": name, "type": ftype, "group": "context",
                    "label": f"{name} - {label}"})
    return out


def _reader() -> wording.Reader:
    return reader(_db(), i18n.current_language())


def _types() -> dict[str, str]:
    return dict(reader(_db()).types)


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


def _rule_name(rule: Rule) -> str:
    return plain.name_of(rule.definition, i18n.current_language() == "zh", rule.name)


def _rule_names(rule: Rule, keys: set[str], run_ids: set[int] | None = None) -> dict[str, str]:
    """The names of ``keys`` in the page's language beside a version tried or previewed:
    its own key by that version's name, the others as ``run_ids`` used them, else as
    published (i18n.rule_names, in one query or two)."""
    names = i18n.rule_names(_db(), keys - {rule.key}, run_ids=run_ids or ())
    if rule.key in keys:
        names[rule.key] = _rule_name(rule)
    return names


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
        kwargs.setdefault("rule_name", _rule_name)
        kwargs.setdefault("lang", i18n.current_language())
        return super().render(template, **kwargs)

    # --- list ------------------------------------------------------------------------------

    @expose("/")
    def index(self) -> Any:
        db = _db()
        rows = []
        keys = db.scalars(select(Rule.key).distinct().order_by(Rule.key)).all()
        for key in keys:
            all_versions = authoring.versions(db, key)
            newest = next((r for r in all_versions if r.status != "discarded"),
                          all_versions[0])
            published = next((r for r in all_versions if r.status == "published"), None)
            rows.append({"key": key, "newest": newest, "published": published,
                         "waiting": newest.status == "draft"
                         and newest.publish_requested_by is not None})
        return self.render("laurel/rules/list.html", rows=rows, starts=STARTS,
                           waiting=authoring.awaiting_approval(db))

    # --- the editor ------------------------------------------------------------------------

    def _editor(self, form: RuleForm, errors: dict[str, str], rule: Rule | None,
                message: str | None = None, status: int = 200, base: Rule | None = None,
                copy_of: Rule | None = None) -> Any:
        kind = form.fields.get("kind") or "commission"
        return self.render(
            "laurel/rules/edit.html", form=form, errors=errors, rule=rule, message=message,
            base=base or rule, copy_of=copy_of,
            facts=_facts(), ops=OPS, op_words=OP_WORDS, op_types=OP_TYPES,
            kinds=RULE_KINDS, period_kinds=PERIOD_KINDS, stages=TEAM_STAGES,
            levels=_db().scalars(select(Level.code).order_by(Level.code)).all(),
            action_types=ACTION_TYPES, action_names=ACTION_NAMES, tier_modes=TIER_MODE_NAMES,
            action_fields=ACTION_FIELDS, actions_for_kind=ACTIONS_FOR_KIND,
            allowed=ACTIONS_FOR_KIND.get(kind, ACTION_TYPES),
            confirm_rates=bool(request.form.get("confirm_rates")),
            new_token=lambda: secrets.token_hex(4)), status

    def _save(self, rule: Rule | None) -> Any:
        db = _db()
        form = form_from_request(request.form)
        shown = form_from_request(request.form)  # as typed, if the page comes back
        types = _types()
        unit_errors = to_stored_units(form, types, bool(request.form.get("confirm_rates")))
        base = copy_of = None
        if rule is not None:
            base = self._rule(rule.key, request.form.get("base_version", type=int)
                              or rule.version)
        elif request.form.get("copy_of"):
            key, _sep, version = request.form["copy_of"].partition("@")
            copy_of = self._rule(key, int(version) if version.isdigit() else None)
        if rule is None and not form.fields.get("key", "").strip():
            # made from the name as the page makes it while the name is typed (a rule
            # begun from a starting point, or a browser without the page's script, sent none)
            form.fields["key"] = shown.fields["key"] = key_from_name(
                form.fields.get("kind", ""), form.fields.get("name", ""))
        if not form.fields.get("name", "").strip():
            # its title on every page, statement and export: the key was put in its place
            unit_errors["name"] = _("Write the rule's name, as people read it on statements "
                                    "(the Chinese name is optional).")
        if unit_errors:
            return self._editor(shown, unit_errors, rule, message=next(
                m for m in unit_errors.values() if m), status=400, base=base, copy_of=copy_of)
        doc = definition_from_form(form)
        if base is not None:
            doc = keep_written(doc, dict(base.definition))
        if rule is not None and doc.get("key") != rule.key:
            return self._editor(shown, {"key": _("The key of an existing rule cannot change; "
                                                 "save it as a new rule instead.")}, rule,
                                status=400, base=base)
        if rule is None and doc.get("key") and latest(db, doc["key"]) is not None:
            return self._editor(shown, {"key": _("A rule with this key exists: open it to "
                                                 "change it.")}, rule, status=400,
                                copy_of=copy_of)
        copied = authoring.renamed(copy_of.scenarios or "", copy_of.key, doc.get("key", "")) \
            if copy_of is not None else None
        try:
            saved, created = authoring.save_draft(db, doc, _user(), base=base,
                                                  scenarios=copied)
            db.commit()
        except RuleError as exc:
            db.rollback()
            placed = place_error(form, exc)
            # said beside its field, the reason alone; else where the rule has it
            return self._editor(shown, placed, rule, message=i18n.say(
                exc.reason if "form" not in placed else exc), status=400, base=base,
                copy_of=copy_of)
        except LaurelError as exc:
            db.rollback()
            said = i18n.say(exc)
            return self._editor(shown, {"form": said}, rule, message=said, status=400,
                                base=base, copy_of=copy_of)
        if created:
            flash(_("Saved as version %(v)d, a draft. Ask for publishing when it is ready.",
                    v=saved.version), "success")
        else:
            flash(_("Nothing changed: version %(v)d stays as it is.", v=saved.version), "info")
        return redirect(url_for(".rule", key=saved.key, version=saved.version))

    @expose("/new", methods=("GET", "POST"))
    def new(self) -> Any:
        self._require_write()
        if request.method == "POST":
            return self._save(None)
        types = _types()
        source = request.args.get("from")
        if source:  # a copy of another rule: everything but the key
            copy_of = self._rule(source, request.args.get("version", type=int))
            form = _in_units(form_from_definition(copy_of.definition), types)
            form.fields["key"] = ""
            # each name in its own language, whatever the page's
            form.fields["name"] = i18n.in_each_language(
                _l("Copy of %(name)s", name=copy_of.name))["en"]
            if form.fields.get("name_zh"):
                form.fields["name_zh"] = i18n.in_each_language(
                    _l("Copy of %(name)s", name=form.fields["name_zh"]))["zh"]
            return self._editor(form, {}, None, copy_of=copy_of)
        start = STARTS.get(request.args.get("start", ""))
        if start is not None:
            name, kind, doc = start
            names = i18n.in_each_language(name)  # each name field in its language
            form = _in_units(form_from_definition(
                {"kind": kind, "period_kind": "month", "name": names["en"],
                 "name_zh": names["zh"], **doc}), types)
            return self._editor(form, {}, None)
        kind = request.args.get("kind", "commission")
        return self._editor(blank_form(kind if kind in RULE_KINDS else "commission"), {},
                            None)

    @expose("/<key>/edit", methods=("GET", "POST"))
    def edit(self, key: str) -> Any:
        self._require_write()
        if request.method == "POST":
            return self._save(self._rule(key))
        try:
            base = authoring.starting_version(_db(), key, request.args.get("version", type=int))
        except LaurelError:
            abort(404)
        return self._editor(_in_units(form_from_definition(base.definition), _types()), {},
                            base)

    # --- one rule: versions, scenarios, requests --------------------------------------------

    def _shown_version(self, key: str) -> Rule:
        version = request.args.get("version", type=int)
        if version is not None:
            return self._rule(key, version)
        all_versions = authoring.versions(_db(), key)
        if not all_versions:
            abort(404)
        return next((r for r in all_versions if r.status != "discarded"), all_versions[0])

    @expose("/<key>/")
    def rule(self, key: str) -> Any:
        shown = self._shown_version(key)
        # ?check=1: the version's scenarios run again, as after accepting new figures (the
        # accept form redirects here, so a reload of its result does not post it again)
        if request.args.get("check") and self._can_write():
            try:
                report = authoring.check_scenarios(_db(), shown)
            except LaurelError as exc:
                flash(i18n.say(exc), "error")
            else:
                return self._rule_page(key, shown, report=report)
        return self._rule_page(key, shown)

    def _rule_page(self, key: str, shown: Rule, report: specs.GateReport | None = None,
                   status: int = 200) -> Any:
        db = _db()
        all_versions = authoring.versions(db, key)
        published = next((r for r in all_versions if r.status == "published"), None)
        r = _reader()
        other = reader(db, "en" if r.lang == "zh" else "zh")
        feature = scenarios.read(shown.scenarios or "", f"{key}.feature")
        return self.render("laurel/rules/rule.html", key=key, versions=all_versions,
                           newest=shown, published=published,
                           lines=authoring.readable(shown.definition, r),
                           summary=wording.summary(shown.definition, r),
                           summary_other=wording.summary(shown.definition, other),
                           feature=feature, editing=False, report=report,
                           drafts=[v for v in all_versions if v.status == "draft"],
                           **self._scenario_helpers()), status

    def _scenario_helpers(self) -> dict[str, Any]:
        return {"step_parts": lambda text: specs.parts(text, i18n.current_language()),
                "keyword_words": lambda kw: specs.KEYWORDS_ZH.get(kw, kw)
                if i18n.current_language() == "zh" else kw,
                "acceptance_value": acceptance_value, "vocabulary": specs.vocabulary(),
                "field_words": FIELD_WORDS,
                "keywords": scenarios.KEYWORDS, "kinds": RULE_KINDS}

    @expose("/<key>/v<int:version>/scenarios", methods=("GET", "POST"))
    def scenarios(self, key: str, version: int) -> Any:
        rule = self._rule(key, version)
        if request.method == "GET":
            return self._scenario_editor(rule)
        self._require_write()
        db = _db()
        try:
            if request.form.get("save_text"):
                text = request.form.get("text", "")
            else:
                feature = scenarios.read(rule.scenarios or "", f"{key}.feature")
                text = scenarios.write(feature_from_form(feature, request.form))
            holder = authoring.save_scenarios(db, rule, text, _user())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            flash(_("Scenarios not saved: %(e)s", e=i18n.say(exc)), "error")
            return self._scenario_editor(rule, text=request.form.get("text"), status=400)
        if holder is not rule:
            flash(_("The scenarios are saved in a new draft, version %(v)d.",
                    v=holder.version), "success")
        if request.form.get("run"):
            return self._rule_page(key, holder, report=authoring.check_scenarios(db, holder))
        if request.form.get("done"):
            flash(_("Scenarios saved."), "success")
            return redirect(url_for(".rule", key=key, version=holder.version))
        return redirect(url_for(".scenarios", key=key, version=holder.version))

    def _scenario_editor(self, rule: Rule, text: str | None = None, status: int = 200) -> Any:
        feature = scenarios.read(rule.scenarios or "", f"{rule.key}.feature")
        return self.render("laurel/rules/scenarios.html", rule=rule, feature=feature,
                           text=rule.scenarios if text is None else text, editing=True,
                           **self._scenario_helpers()), status

    @expose("/<key>/v<int:version>/run", methods=("POST",))
    def run_scenarios(self, key: str, version: int) -> Any:
        self._require_write()
        rule = self._rule(key, version)
        try:
            report = authoring.check_scenarios(_db(), rule)
        except LaurelError as exc:
            flash(i18n.say(exc), "error")
            return redirect(url_for(".rule", key=key, version=version))
        return self._rule_page(key, rule, report=report)

    @expose("/<key>/v<int:version>/accept", methods=("POST",))
    def accept(self, key: str, version: int) -> Any:
        """Take the new figures of the ticked examples into the draft's scenarios, and ask
        for publishing when that was what HR was doing."""
        self._require_write()
        db = _db()
        rule = self._rule(key, version)
        chosen = _acceptances(request.form.getlist("accept"))
        if not chosen:
            flash(_("Tick the examples whose new figures are right."), "error")
            return redirect(url_for(".rule", key=key, version=version))
        try:
            holder = authoring.accept_figures(db, rule, chosen, _user())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
            return redirect(url_for(".rule", key=key, version=version))
        flash(_("%(n)d new figures taken into the scenarios of version %(v)d.", n=len(chosen),
                v=holder.version), "success")
        if request.form.get("then") == "request":
            return self._request(holder, changed=True)
        return redirect(url_for(".rule", key=key, version=holder.version, check=1))

    @expose("/<key>/v<int:version>/from-try", methods=("POST",))
    def from_try(self, key: str, version: int) -> Any:
        """Add a scenario made from trying the version on one employee."""
        self._require_write()
        db = _db()
        rule = self._rule(key, version)
        try:
            added = authoring.scenario_from_try(db, rule.definition,
                                                request.form.get("period", ""),
                                                request.form.get("employee", ""))
            holder = authoring.save_scenarios(
                db, rule, authoring.with_scenario(rule.scenarios or "", added), _user())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
            return redirect(url_for(".try_it", key=key, version=version))
        flash(_("A scenario was added from what you tried; it runs before publishing."),
              "success")
        return self._rule_page(key, holder, report=authoring.check_scenarios(db, holder))

    @expose("/<key>/v<int:version>/request", methods=("POST",))
    def request_publish(self, key: str, version: int) -> Any:
        self._require_write()
        return self._request(self._rule(key, version))

    def _request(self, rule: Rule, changed: bool = False) -> Any:
        """Ask for publishing; ``changed``: this request already saved something (accepted
        figures), so a refusal redirects to the gate's page rather than showing it."""
        db = _db()
        try:
            report = authoring.request_publish(db, rule, _user())
            db.commit()
        except authoring.PublishBlocked as exc:
            db.rollback()
            if exc.report.scenarios:
                flash(_("Not sent for approval: a scenario fails. Accept the new figures "
                        "where they are right, or fix the rule."), "error")
            else:
                flash(_("Not sent for approval: this version has no scenario. Write one, or "
                        "make one from try-it."), "error")
            if changed:
                return redirect(url_for(".rule", key=rule.key, version=rule.version, check=1))
            return self._rule_page(rule.key, rule, report=exc.report, status=400)
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
            return redirect(url_for(".rule", key=rule.key, version=rule.version))
        flash(_("Sent for approval: %(gate)s Another HR administrator approves it.",
                gate=_gate_summary(report)), "success")
        return redirect(url_for(".rule", key=rule.key, version=rule.version))

    @expose("/<key>/v<int:version>/withdraw", methods=("POST",))
    def withdraw(self, key: str, version: int) -> Any:
        self._require_write()
        db = _db()
        try:
            authoring.withdraw_request(db, self._rule(key, version), _user())
            db.commit()
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
        return redirect(url_for(".rule", key=key, version=version))

    @expose("/<key>/v<int:version>/discard", methods=("POST",))
    def discard(self, key: str, version: int) -> Any:
        self._require_write()
        db = _db()
        try:
            authoring.discard(db, self._rule(key, version), _user())
            db.commit()
            flash(_("Version %(v)d was discarded.", v=version), "success")
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
        return redirect(url_for(".rule", key=key))

    # --- the impact preview and approval ----------------------------------------------------

    def _impact(self, rule: Rule) -> tuple[Any, list[Any], list[str], str | None]:
        db = _db()
        choices = authoring.preview_periods(db, rule.period_kind)
        offered = {p.code for p in choices}
        codes = [c for c in request.args.getlist("period") if c in offered] or \
            [p.code for p in choices[:1]]
        impacts = error = None
        if codes:
            try:
                impacts = authoring.impact_preview(db, rule.definition, codes)
            except LaurelError as exc:
                error = i18n.say(exc)
        return impacts, choices, codes, error

    @expose("/<key>/v<int:version>/review")
    def review(self, key: str, version: int) -> Any:
        db = _db()
        rule = self._rule(key, version)
        published = authoring.current_published(db, key)
        r = _reader()
        diff = authoring.diff_definitions(published.definition if published else {},
                                          rule.definition, r) if published else \
            [authoring.DiffLine(n, "", w) for n, w in authoring.readable(rule.definition, r)]
        scenario_diff = authoring.diff_scenarios(published.scenarios if published else "",
                                                 rule.scenarios or "", r.lang)
        impacts, choices, codes, error = self._impact(rule)
        me = _user()
        may_approve = self._can_write() and rule.status == "draft" and \
            rule.publish_requested_by is not None and \
            me not in (rule.publish_requested_by, rule.created_by)
        # the rules that change by their names: this version's, the others' as the runs
        # compared with used them
        names = _rule_names(rule, {c.rule_key for i in impacts or [] for e in i.changed
                                   for c in e.changes}, {i.run_id for i in impacts or []})
        return self.render("laurel/rules/review.html", rule=rule, published=published,
                           diff=diff, scenario_diff=scenario_diff, impacts=impacts,
                           rule_names=names,
                           periods=choices, chosen=codes, impact_error=error,
                           may_approve=may_approve, me=me,
                           changes_words=self._change_words)

    @staticmethod
    def _change_words(said: authoring.Said | None) -> str:
        if said is None:
            return str(_("nothing"))
        if said.amount is not None:
            text = i18n.money(said.amount)
            return text if said.status in (None, "payable") else \
                f"{text} {i18n.term(said.status)}"
        return said.value or i18n.term(said.kind)

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
            return self._rule_page(key, rule, report=exc.report, status=400)
        except LaurelError as exc:
            db.rollback()
            flash(i18n.say(exc), "error")
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
        r = _reader()
        return self.render("laurel/rules/compare.html", key=key, versions=all_versions,
                           left=left, right=right,
                           diff=authoring.diff_definitions(left.definition, right.definition,
                                                           r),
                           scenario_diff=authoring.diff_scenarios(
                               left.scenarios or "", right.scenarios or "", r.lang))

    @expose("/<key>/v<int:version>/try")
    def try_it(self, key: str, version: int) -> Any:
        db = _db()
        rule = self._rule(key, version)
        choices = authoring.try_periods(db, rule.period_kind)
        code = request.args.get("period") or (choices[0].code if choices else "")
        employee = (request.args.get("employee") or "").strip()
        outcomes = error = None
        if code and employee:
            try:
                outcomes = authoring.try_rule(db, rule.definition, code, employee,
                                              i18n.current_language())
            except LaurelError as exc:
                error = i18n.say(exc)
        employees = db.execute(select(Employee.code, Employee.name)
                               .order_by(Employee.code)).all()
        return self.render("laurel/rules/try.html", rule=rule, periods=choices, period=code,
                           employee=employee, employees=employees, outcomes=outcomes,
                           rule_names=_rule_names(rule, {o.rule_key for o in outcomes or []}),
                           error=error)


def add_views(admin: Admin) -> None:
    """Add the policies to the back office (category "Policies")."""
    admin.add_view(RulesView(_l("Rules"), _l("Policies"), endpoint="rules",
                             url="/admin/rules"))


__all__ = ["add_views", "definition_from_form", "form_from_definition", "form_from_request",
           "place_error"]
