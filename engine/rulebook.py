"""Rules as data: the rule document, its validation, YAML files, versions and publishing.

One validation serves the back office and the files: ``validate(doc, source, ...)``
returns the normalised document or raises ``RuleError`` naming the file or rule, the row
and the field. An invalid rule cannot be stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cells import CONTROL
from engine.compiler import check_limits
from engine.conditions import (
    ALL_OPS,
    NUMBER_OPS,
    POPULATION_OPS,
    PRESENCE_OPS,
    FactInfo,
    fact_catalog,
    leaves,
)
from engine.errors import RuleError
from engine.messages import msg
from engine.metrics import RULE_DECIMALS, decimals, range_problem, ratio_parts
from engine.models import OUTCOME_KINDS, PERIOD_KINDS, TEAM_STAGES, Level, Metric, Rule
from engine.reach import Domain, domains_for, satisfiable
from engine.wording import pct

RULE_KINDS = tuple(k for k in OUTCOME_KINDS if k != "warning")
MONEY_KINDS = ("commission", "bonus")
# Which action types fit which kind.
ACTIONS_FOR_KIND = {
    "commission": ("rate", "tiers", "per_unit", "fixed", "draw"),
    "bonus": ("fixed", "rate", "per_unit", "tiers"),
    "award": ("value", "fixed"),
    "rating": ("table",),
    "eligibility": ("value",),
    "pip": ("pip",),
    "flag": ("value",),
    "alert": ("value",),
}
TOP_FIELDS = ("key", "name", "name_zh", "description", "description_zh", "kind", "period_kind",
              "version", "status", "effective_from", "effective_to", "scope", "when", "action",
              "hold")
SCOPE_FIELDS = ("team_stage", "level", "region")


# --- YAML with exact decimals ---------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    pass


def _decimal_constructor(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal | str:
    """A YAML float as an exact Decimal; .inf, .nan and the like stay text, which the
    validation refuses as not a finite number."""
    text = loader.construct_scalar(node)
    if "_" in text:
        return text  # 1_000.5: refused as a number, as an import refuses it
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return value if value.is_finite() else text


_PLAIN_INT = re.compile(r"[-+]?[0-9]+")


def _lenient_constructor(name: str) -> Any:
    """A timestamp or int that does not convert (2026-02-30, 5,000 digits) stays text: the
    validation then names the field, instead of a traceback from the loader."""
    default = yaml.SafeLoader.yaml_constructors[name]

    def construct(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        if name.endswith(":int") and not _PLAIN_INT.fullmatch(str(node.value)):
            # 1:30, 0x10, 0o17, 1_000 stay text (refused where a number is needed), not
            # YAML 1.1's base 60, hexadecimal, octal or grouped integers
            return loader.construct_scalar(node)
        try:
            return default(loader, node)
        except (ValueError, OverflowError):
            return loader.construct_scalar(node)

    return construct


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    """A mapping whose keys are unique: a key given twice is refused, not overwritten."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal_constructor)
for _tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int"):
    _Loader.add_constructor(_tag, _lenient_constructor(_tag))
_Loader.add_constructor("tag:yaml.org,2002:map", _unique_mapping)

# A rule file is small: these bound what a hostile one can cost.
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 40  # nested mappings and lists (a condition nests a few per level)
MAX_NODES = 100_000  # values in the file, every alias counted as what it stands for


class _Dumper(yaml.SafeDumper):
    pass


def _decimal_representer(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format(value, "f")
    if "." not in text:  # a whole number reads back as the same whole number
        return dumper.represent_scalar("tag:yaml.org,2002:int", text)
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(Decimal, _decimal_representer)


def read_yaml(text: str, source: str) -> dict[str, Any]:
    if len(text) > MAX_FILE_BYTES:
        raise RuleError(source, msg("is larger than %(max_file_bytes)s characters: a rule file "
                                    "holds one rule", max_file_bytes=format(MAX_FILE_BYTES, ',')))
    try:
        _check_shape(text, source)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark else None
        raise RuleError(source, msg("is not valid YAML: %(exc)s",
                                    exc=getattr(exc, 'problem', exc)),
                        row=row) from None
    if not isinstance(data, dict):
        raise RuleError(source, msg("a rule file holds one mapping (key: value lines)"))
    return data


def _check_shape(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, and more than MAX_NODES values once aliases
    are expanded (a "billion laughs" file), before anything is built from the text."""
    depth = 0
    sizes: dict[str, int] = {}  # anchor -> values it stands for
    open_: list[tuple[str | None, int]] = []  # (anchor, values so far) per open collection
    total = 0

    def add(n: int, line: int) -> None:
        nonlocal total
        total += n
        if total > MAX_NODES:
            raise RuleError(source, msg("holds more than %(max_nodes)s values (aliases counted "
                                        "in full)", max_nodes=format(MAX_NODES, ',')), row=line)
        if open_:
            anchor, count = open_[-1]
            open_[-1] = (anchor, count + n)

    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise RuleError(source, msg("is nested more than %(max_depth)s levels deep",
                                            max_depth=MAX_DEPTH),
                                row=line)
            open_.append((event.anchor, 0))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, count = open_.pop()
            if anchor:
                sizes[anchor] = count
            if open_:
                parent, so_far = open_[-1]
                open_[-1] = (parent, so_far + count)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            add(1, line)
        elif isinstance(event, yaml.AliasEvent):
            add(sizes.get(event.anchor, 1), line)


# --- canonical form -----------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    """Decimals become canonical strings, dates ISO strings: the stored form."""
    if isinstance(value, Decimal):
        return format(value, "f")  # as written: 1.00 stays 1.00
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def content_hash(doc: Mapping[str, Any]) -> str:
    """Hash the rule's content (not its version or status)."""
    body = {k: v for k, v in doc.items() if k not in ("version", "status")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def num(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


# --- validation ---------------------------------------------------------------------------


# The largest rate a rule may pay (100 is 10,000%), so an amount fits its column.
MAX_RATE = Decimal(100)
MAX_CONDITION_DEPTH = 12  # all/any/not inside each other


class _Validator:
    def __init__(self, source: str, facts: Mapping[str, FactInfo], metrics: set[str],
                 levels: set[str] | None, domains: Mapping[str, Domain],
                 formulas: Mapping[str, str | None] | None = None):
        self.source, self.facts, self.metrics, self.levels = source, facts, metrics, levels
        self.domains, self.formulas = domains, formulas

    def fail(self, reason: str, field: str | None = None, row: int | None = None) -> None:
        raise RuleError(self.source, reason, field=field, row=row)

    def number(self, value: Any, field: str, row: int | None = None,
               kind: str | None = None) -> Decimal:
        """A number of the rule: finite, at most RULE_DECIMALS decimals, and in the range of
        ``kind`` (a metric type) when given."""
        if value is None or value == "":  # left out, or a field left empty
            self.fail(msg("is missing"), field, row)
        if isinstance(value, bool) or isinstance(value, list | dict) or "_" in str(value):
            self.fail(msg("%(value)s is not a number", value=repr(str(value)[:40])), field, row)
        try:
            d = Decimal(str(value))
        except (InvalidOperation, ValueError):
            self.fail(msg("%(value)s is not a number", value=repr(str(value)[:40])), field, row)
        if not d.is_finite():
            self.fail(msg("%(value)s is not a finite number", value=repr(value)), field, row)
        if decimals(d) > RULE_DECIMALS:
            self.fail(msg("%(value)s has more than %(rule_decimals)s decimals",
                          value=str(value)[:40], rule_decimals=RULE_DECIMALS), field, row)
        problem = range_problem(d, kind or "money")
        if problem:
            self.fail(msg("%(value)s %(problem)s", value=str(value)[:40], problem=problem), field,
                      row)
        return d

    def text(self, value: Any, field: str, row: int | None = None, required: bool = True,
             most: int = 200, lines: bool = False) -> str:
        """Text of at most ``most`` characters, without control characters (line breaks
        only where ``lines``): what both databases store and an export writes."""
        if value is None or value == "":
            if required:
                self.fail(msg("is missing"), field, row)
            return ""
        if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
            self.fail(msg("%(value)s is not text", value=repr(value)), field, row)
        text = str(value)
        if len(text) > most:
            self.fail(msg("is %(text)s characters long; at most %(most)s",
                          text=format(len(text), ','), most=format(most, ',')), field, row)
        found = CONTROL.search(text.replace("\n", "").replace("\t", "") if lines else text)
        if found:
            self.fail(msg("holds the control character U+%(found)s; remove it",
                          found=format(ord(found[0]), '04X')),
                      field, row)
        return text

    def metric(self, value: Any, field: str, row: int | None = None,
               numeric: bool = True) -> str:
        name = self.text(value, field, row)
        if name not in self.facts:
            self.fail(msg("unknown metric or fact %(name)s", name=repr(name)), field, row)
        if numeric and not self.facts[name].numeric:
            self.fail(msg("%(name)s is text, a number is needed here", name=name), field, row)
        return name

    def condition(self, cond: Any, field: str, row: int | None = None,
                  depth: int = 0) -> dict[str, Any] | None:
        if cond is None or cond == {} or cond == []:
            return None
        if depth > MAX_CONDITION_DEPTH:
            self.fail(msg("conditions are nested more than %(max_condition_depth)s levels deep",
                          max_condition_depth=MAX_CONDITION_DEPTH),
                      field, row)
        if isinstance(cond, list):  # a plain list means all of them
            return {"all": [self.condition(c, f"{field}[{i + 1}]", row, depth + 1)
                            or {"all": []} for i, c in enumerate(cond)]}
        if not isinstance(cond, dict):
            self.fail(msg("a condition is a mapping (fact, op, value) or all/any/not of them"),
                      field, row)
        groups = [k for k in ("all", "any", "not") if k in cond]
        if groups:
            if len(cond) != 1:
                self.fail(msg("%(groups)s stands alone in its mapping", groups=groups[0]), field,
                          row)
            key = groups[0]
            if key == "not":
                inner = self.condition(cond["not"], f"{field}.not", row, depth + 1)
                if inner is None:
                    self.fail(msg("not needs a condition"), f"{field}.not", row)
                return {"not": inner}
            items = cond[key]
            if not isinstance(items, list) or not items:
                self.fail(msg("%(key)s needs a list of conditions", key=key), f"{field}.{key}", row)
            return {key: [self.condition(c, f"{field}.{key}[{i + 1}]", row, depth + 1)
                          or {"all": []} for i, c in enumerate(items)]}
        return self.leaf(cond, field, row)

    def leaf(self, cond: dict[str, Any], field: str, row: int | None) -> dict[str, Any]:
        extra = set(cond) - {"fact", "metric", "op", "value", "ref"}
        if extra:
            self.fail(msg("unknown field %(extra)s", extra=repr(sorted(extra)[0])), field, row)
        name = cond.get("fact", cond.get("metric"))
        if name is None:
            self.fail(msg("is missing"), f"{field}.fact", row)
        name = self.metric(name, f"{field}.fact", row, numeric=False)
        info = self.facts[name]
        op = cond.get("op")
        if op is None:
            self.fail(msg("is missing"), f"{field}.op", row)
        if op not in ALL_OPS:
            self.fail(msg("unknown operator %(op)s; the operators are %(value)s", op=repr(op),
                          value=', '.join(ALL_OPS)),
                      f"{field}.op", row)
        out: dict[str, Any] = {"fact": name, "op": op}
        if op in PRESENCE_OPS:
            if "value" in cond or "ref" in cond:
                self.fail(msg("%(op)s takes no value", op=op), f"{field}.value", row)
            return out
        if op in POPULATION_OPS:
            if name not in self.metrics or not info.numeric:
                self.fail(msg("%(op)s needs a numeric metric, not %(name)s", op=op, name=name),
                          f"{field}.op", row)
            if op == "top_share":
                share = self.number(cond.get("value"), f"{field}.value", row, "ratio")
                if not Decimal(0) < share <= Decimal(1):
                    self.fail(msg("a top share is above 0% and at most 100% (0 to 1 in a "
                                  "rule file)"), f"{field}.value", row)
                out["value"] = share
            elif "value" in cond:
                self.fail(msg("highest takes no value"), f"{field}.value", row)
            return out
        if "ref" in cond:
            if "value" in cond:
                self.fail(msg("give a value or a ref, not both"), f"{field}.ref", row)
            ref = self.metric(cond["ref"], f"{field}.ref", row, numeric=False)
            if self.facts[ref].numeric != info.numeric:
                self.fail(msg("%(name)s and %(ref)s cannot be compared (a number and text)",
                              name=name, ref=ref),
                          f"{field}.ref", row)
            if not info.numeric and op not in ("==", "!="):
                self.fail(msg("operator %(op)s does not fit text fact %(name)s", op=op,
                              name=name), f"{field}.op", row)
            out["ref"] = ref
            return out
        if "value" not in cond:
            self.fail(msg("is missing"), f"{field}.value", row)
        value = cond["value"]
        if info.numeric:
            if op not in NUMBER_OPS:
                self.fail(msg("operator %(op)s does not fit %(type)s metric %(name)s; use one "
                              "of %(ops)s", op=op, type=info.type, name=name,
                              ops=", ".join(NUMBER_OPS + PRESENCE_OPS)), f"{field}.op", row)
            out["value"] = self.number(value, f"{field}.value", row, info.type)
        else:
            if op not in ("==", "!=", "in", "not_in"):
                self.fail(msg("operator %(op)s does not fit text fact %(name)s; use ==, !=, in, "
                              "not_in, defined or undefined", op=op, name=name), f"{field}.op", row)
            if op in ("in", "not_in"):
                if not isinstance(value, list) or not value:
                    self.fail(msg("%(op)s needs a list of values", op=op), f"{field}.value", row)
                out["value"] = [self.text(v, f"{field}.value", row) for v in value]
            else:
                out["value"] = self.text(value, f"{field}.value", row)
        return out


def _rate(v: _Validator, value: Any, field: str, row: int | None = None) -> Decimal:
    rate = v.number(value, field, row, "ratio")
    if rate < 0:
        v.fail(msg("a rate cannot be negative"), field, row)
    if rate > MAX_RATE:
        v.fail(msg("a rate is at most %(max_rate)s (10,000%%)", max_rate=MAX_RATE), field, row)
    return rate


def _validate_tiers(v: _Validator, tiers: Any, field: str, kind: str
                    ) -> list[dict[str, Any]]:
    if not isinstance(tiers, list) or not tiers:
        v.fail(msg("a tier table needs at least one tier"), field)

    def said(bound: Decimal) -> str:  # a ratio's bound as HR types it: 1.00 (100%)
        return f"{bound} ({pct(bound)})" if kind == "ratio" else str(bound)

    out = []
    for i, tier in enumerate(tiers, start=1):
        if not isinstance(tier, dict):
            v.fail(msg("a tier is a mapping with from, to and rate"), field, row=i)
        extra = set(tier) - {"from", "to", "rate"}
        if extra:
            v.fail(msg("unknown field %(extra)s", extra=repr(sorted(extra)[0])), f"{field}[{i}]",
                   row=i)
        lo = None if tier.get("from") is None else v.number(tier["from"], f"{field}.from", i,
                                                             kind)
        hi = None if tier.get("to") is None else v.number(tier["to"], f"{field}.to", i, kind)
        if "rate" not in tier:
            v.fail(msg("is missing"), f"{field}.rate", i)
        rate = _rate(v, tier["rate"], f"{field}.rate", i)
        if lo is not None and hi is not None and lo >= hi:
            v.fail(msg("from %(lo)s is not below to %(hi)s", lo=said(lo), hi=said(hi)),
                   f"{field}.to", i)
        if i > 1:
            prev_hi = out[-1]["to"]
            if prev_hi is None:
                v.fail(msg("tier %(value)s has no upper bound, so tier %(i)s overlaps it",
                           value=i - 1, i=i),
                       f"{field}.from", i)
            if lo is None:
                v.fail(msg("overlaps tier %(value)s: only the first tier may be open below",
                           value=i - 1),
                       f"{field}.from", i)
            if lo > prev_hi:
                v.fail(msg("gap between %(prev_hi)s (tier %(value)s) and %(lo)s",
                           prev_hi=said(prev_hi), value=i - 1, lo=said(lo)),
                       f"{field}.from", i)
            if lo < prev_hi:
                v.fail(msg("overlaps tier %(value)s, which runs to %(prev_hi)s", value=i - 1,
                           prev_hi=said(prev_hi)),
                       f"{field}.from", i)
        out.append({"from": lo, "to": hi, "rate": rate})
    return out


AMOUNT_ACTIONS = ("fixed", "rate", "per_unit", "tiers")
# The limits an amount rule may have: per period (cap, floor), and per employee over a
# calendar year across the periods of the rule (annual_cap).
LIMITS = ("floor", "cap", "annual_cap")
CENTS = Decimal("0.01")


def _validate_limits(v: _Validator, action: Mapping[str, Any], out: dict[str, Any]) -> None:
    """The caps and floor of an amount rule: amounts in whole cents, 0 or more, the floor
    not above the cap. Only the limits given are written."""
    for name in LIMITS:
        if action.get(name) in (None, ""):
            continue
        amount = v.number(action[name], f"action.{name}", kind="money")
        if amount < 0:
            v.fail(msg("%(value)s is below 0: a limit is an amount of 0 or more",
                       value=amount), f"action.{name}")
        if amount != amount.quantize(CENTS):
            v.fail(msg("%(value)s has more than 2 decimals: a limit is an amount in cents",
                       value=amount), f"action.{name}")
        out[name] = amount
    if "floor" in out and "cap" in out and out["floor"] > out["cap"]:
        v.fail(msg("the floor %(floor)s is above the cap %(cap)s", floor=out["floor"],
                   cap=out["cap"]), "action.floor")


def _flag(v: _Validator, value: Any, field: str) -> bool:
    """A yes-or-no field: true or false (the editor sends "true" or nothing)."""
    if value in (None, "", False, "false"):
        return False
    if value in (True, "true"):
        return True
    v.fail(f"{field.split('.')[-1]} is true or false, not {value!r}", field)
    return False


def _validate_clawback(v: _Validator, claw: Any) -> dict[str, Any]:
    """A clawback: the collection ratio below which (above 0) a later period takes back
    the payments of the ``within`` periods before it (1 to 24), ``share`` of each (above
    0, at most 1; all of it when not given)."""
    if not isinstance(claw, dict):
        v.fail("a clawback is a mapping of below, within and share", "action.clawback")
    extra = set(claw) - {"below", "within", "share"}
    if extra:
        v.fail(f"unknown field {sorted(extra)[0]!r} for a clawback",
               f"action.clawback.{sorted(extra)[0]}")
    if "collection_ratio" not in v.facts:
        v.fail("a clawback reads collection_ratio, which the catalog does not have",
               "action.clawback")
    below = v.number(claw.get("below"), "action.clawback.below", kind="ratio")
    if below <= 0:
        v.fail(msg("a clawback applies below a collection ratio above 0% (above 0 in a "
                   "rule file)"), "action.clawback.below")
    within = v.number(claw.get("within"), "action.clawback.within")
    if within != within.to_integral_value() or not 1 <= within <= 24:
        v.fail(msg("a clawback looks back a whole number of periods, 1 to 24"),
               "action.clawback.within")
    out: dict[str, Any] = {"below": below, "within": int(within)}
    if claw.get("share") not in (None, ""):
        share = v.number(claw["share"], "action.clawback.share", kind="ratio")
        if not 0 < share <= 1:
            v.fail(msg("the share clawed back is above 0% and at most 100% (at most 1 "
                       "in a rule file)"), "action.clawback.share")
        out["share"] = share
    return out


def _validate_on_signing(v: _Validator, part: Any) -> dict[str, Any]:
    """Paid in part on signing: the share paid at once (above 0, below 1) and the
    collection ratio (above 0) at which a later period pays the rest."""
    if not isinstance(part, dict):
        v.fail("on_signing is a mapping of share and release_at", "action.on_signing")
    extra = set(part) - {"share", "release_at"}
    if extra:
        v.fail(f"unknown field {sorted(extra)[0]!r} for on_signing",
               f"action.on_signing.{sorted(extra)[0]}")
    if "collection_ratio" not in v.facts:
        v.fail("paying on collection reads collection_ratio, which the catalog does not "
               "have", "action.on_signing")
    share = v.number(part.get("share"), "action.on_signing.share", kind="ratio")
    if not 0 < share < 1:
        v.fail(msg("the share paid on signing is above 0% and below 100% (below 1 in a "
                   "rule file; the rest waits for the cash)"), "action.on_signing.share")
    release = v.number(part.get("release_at"), "action.on_signing.release_at", kind="ratio")
    if release <= 0:
        v.fail(msg("the rest is paid at a collection ratio above 0% (above 0 in a rule "
                   "file)"), "action.on_signing.release_at")
    return {"share": share, "release_at": release}


def _validate_draw(v: _Validator, action: Mapping[str, Any], out: dict[str, Any]) -> None:
    """A draw: an amount guaranteed a period (in cents, above 0) for a number of periods
    (1 to 120); a recoverable one says the share of later commissions (above 0, at most
    1) that recovers its balance."""
    amount = v.number(action.get("amount"), "action.amount", kind="money")
    if amount <= 0:
        v.fail(msg("a draw guarantees an amount above 0"), "action.amount")
    if amount != amount.quantize(CENTS):
        v.fail(msg("%(value)s has more than 2 decimals: a draw is an amount in cents",
                   value=amount),
               "action.amount")
    periods_n = v.number(action.get("periods"), "action.periods")
    if periods_n != periods_n.to_integral_value() or not 1 <= periods_n <= 120:
        v.fail(msg("a draw lasts a whole number of periods, 1 to 120"), "action.periods")
    out.update(amount=amount, periods=int(periods_n))
    if _flag(v, action.get("recoverable"), "action.recoverable"):
        out["recoverable"] = True  # false, the default, is not written
        if action.get("recovery_share") in (None, ""):
            v.fail(msg("a recoverable draw needs the share of later commissions that "
                       "recovers it (half is 50%, 0.5 in a rule file)"),
                   "action.recovery_share")
        share = v.number(action["recovery_share"], "action.recovery_share", kind="ratio")
        if not 0 < share <= 1:
            v.fail(msg("the recovery share is above 0% and at most 100% (at most 1 in a "
                       "rule file)"), "action.recovery_share")
        out["recovery_share"] = share
    elif action.get("recovery_share") not in (None, ""):
        v.fail(msg("only a recoverable draw is recovered: make it recoverable or leave "
                   "the share out"), "action.recovery_share")


def _prorate(v: _Validator, value: Any) -> bool:
    """Whether an amount is paid for the share of the period the employee was employed
    (true or false; the editor sends "true" or nothing)."""
    return _flag(v, value, "action.prorate")


TIER_MODES = ("retroactive", "marginal")
# Context facts that are a ratio of another fact: (numerator, denominator).
CONTEXT_RATIOS = {"team_attainment": ("team_revenue", "team_quota"),
                  "per_capita_output": ("team_revenue", "team_members")}


def _tier_mode(v: _Validator, action: Mapping[str, Any], metric: str, base: str) -> str:
    """The tier table's mode. Marginal tiers cut the base into slices by the tier metric,
    so the metric must be the base itself or a ratio of it (attainment = revenue_total /
    quota): each slice of the metric is then a slice of the base."""
    mode = action.get("mode") or "retroactive"
    if mode not in TIER_MODES:
        v.fail(f"unknown tier mode {str(mode)[:40]!r}; use retroactive (the rate reached "
               "applies to the whole base) or marginal (each slice of the base at its own "
               "tier's rate)", "action.mode")
    if mode == "marginal" and metric != base:
        parts = CONTEXT_RATIOS.get(metric)
        if parts is None and v.formulas is not None:
            parts = ratio_parts(v.formulas.get(metric))
        if (parts is None and v.formulas is not None) or (parts and parts[0] != base):
            v.fail(f"marginal tiers pay each slice of {base} at its tier's rate, so the tier "
                   f"metric must be {base} itself or a ratio of it ({base} / something); "
                   f"{metric} is neither", "action.mode")
    return mode


def _validate_action(v: _Validator, kind: str, action: Any,
                     base: list[dict[str, Any]]) -> dict[str, Any]:
    """The action, checked; ``base`` is the rule's scope and condition (a table's rows are
    reached only where they hold)."""
    if not isinstance(action, dict):
        v.fail(msg("is missing (a mapping with a type)"), "action")
    atype = action.get("type")
    allowed = ACTIONS_FOR_KIND[kind]
    if atype is None:
        v.fail(msg("is missing"), "action.type")
    if atype not in allowed:
        v.fail(msg("action %(atype)s does not fit a %(kind)s rule; use %(value)s",
                   atype=repr(atype), kind=kind, value=', '.join(allowed)),
               "action.type")
    fields_for = {
        "fixed": {"type", "amount", "value"}, "rate": {"type", "rate", "base"},
        "per_unit": {"type", "amount", "per"},
        "tiers": {"type", "metric", "base", "tiers", "mode"},
        "value": {"type", "value"}, "table": {"type", "rows"},
        "pip": {"type", "start", "months", "target"},
        "draw": {"type", "amount", "periods", "recoverable", "recovery_share"},
    }
    if atype in AMOUNT_ACTIONS:
        fields_for[atype] |= {*LIMITS, "prorate", "clawback", "on_signing"}
    extra = set(action) - fields_for[atype]
    if extra:
        v.fail(msg("unknown field %(extra)s for a %(atype)s action", extra=repr(sorted(extra)[0]),
                   atype=atype),
               f"action.{sorted(extra)[0]}")
    out: dict[str, Any] = {"type": atype}
    if atype == "fixed":
        out["amount"] = v.number(action.get("amount"), "action.amount", kind="money")
        if "value" in action:
            out["value"] = v.text(action["value"], "action.value")
    elif atype == "rate":
        out["rate"] = _rate(v, action.get("rate"), "action.rate")
        out["base"] = v.metric(action.get("base"), "action.base")
    elif atype == "per_unit":
        out["amount"] = v.number(action.get("amount"), "action.amount", kind="money")
        out["per"] = v.metric(action.get("per"), "action.per")
    elif atype == "tiers":
        out["metric"] = v.metric(action.get("metric"), "action.metric")
        out["base"] = v.metric(action.get("base"), "action.base")
        out["tiers"] = _validate_tiers(v, action.get("tiers"), "action.tiers",
                                       v.facts[out["metric"]].type)
        if _tier_mode(v, action, out["metric"], out["base"]) == "marginal":
            out["mode"] = "marginal"  # retroactive, the default, is not written
    elif atype == "value":
        out["value"] = v.text(action.get("value"), "action.value")
    elif atype == "draw":
        _validate_draw(v, action, out)
    if atype in AMOUNT_ACTIONS:
        if _prorate(v, action.get("prorate")):
            out["prorate"] = True  # false, the default, is not written
        if action.get("clawback") not in (None, "", {}):
            out["clawback"] = _validate_clawback(v, action["clawback"])
        if action.get("on_signing") not in (None, "", {}):
            out["on_signing"] = _validate_on_signing(v, action["on_signing"])
        _validate_limits(v, action, out)
    if atype == "pip":
        start = action.get("start", "next_period")
        if start != "next_period":
            v.fail(msg("a PIP starts on the first day of the next period: next_period"),
                   "action.start")
        months = v.number(action.get("months"), "action.months")
        if months != months.to_integral_value() or not 1 <= months <= 24:
            v.fail(msg("a PIP lasts a whole number of months, 1 to 24"), "action.months")
        out.update(start=start, months=int(months),
                   target=v.text(action.get("target"), "action.target"))
    elif atype == "table":
        rows = action.get("rows")
        if not isinstance(rows, list) or not rows:
            v.fail(msg("a decision table needs at least one row"), "action.rows")
        out_rows = []
        for i, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                v.fail(msg("a row is a mapping with when and value"), "action.rows", row=i)
            extra = set(row) - {"when", "value"}
            if extra:
                v.fail(msg("unknown field %(extra)s", extra=repr(sorted(extra)[0])),
                       f"action.rows.{sorted(extra)[0]}",
                       row=i)
            when = v.condition(row.get("when"), "action.rows.when", row=i)
            value = v.text(row.get("value"), "action.rows.value", row=i)
            out_rows.append({"when": when, "value": value})
        _check_rows_reachable(v, base, [r["when"] or {"all": []} for r in out_rows])
        out["rows"] = out_rows
    return out


def _check_rows_reachable(v: _Validator, base: list[dict[str, Any]],
                          rows: list[dict[str, Any]]) -> None:
    """Refuse a row no input reaches: where the rule applies, its conditions hold only
    where a row above matches first, or never (engine.reach decides, exactly)."""
    for i, this in enumerate(rows, start=1):
        above = rows[: i - 1]
        cond = {"all": [*base, this, *({"not": a} for a in above)]}
        if satisfiable(cond, v.domains):
            continue
        if not satisfiable({"all": [*base, this]}, v.domains):
            v.fail(msg("this row's conditions contradict each other (or the rule's scope and "
                       "condition), so it can never match"), "action.rows.when", row=i)
        alone = [j for j, a in enumerate(above, start=1)
                 if not satisfiable({"all": [*base, this, {"not": a}]}, v.domains)]
        first = (f"row {alone[0]}" if alone else
                 "rows " + ", ".join(str(j) for j in range(1, i)) + " together")
        v.fail(msg("this row can never match: every case it covers matches %(first)s first",
                   first=first),
               "action.rows.when", row=i)


def validate(doc: Mapping[str, Any], source: str, metric_types: Mapping[str, str],
             levels: Iterable[str] | None = None,
             inputs: Mapping[str, tuple[str, Decimal | None, Decimal | None, str]] | None = None,
             formulas: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Check a rule document and return it normalised; raise RuleError naming the field.

    ``inputs`` (the imported metrics, their type and own bounds) lets the check of a
    decision table know what values each metric can take (engine.reach.domains_for);
    ``formulas`` (each metric's formula, None for an imported one) lets the check of
    marginal tiers know which metrics are a ratio of their base.
    """
    facts = fact_catalog(metric_types)
    level_set = set(levels) if levels else None
    period_kind = doc.get("period_kind") if isinstance(doc, Mapping) else None
    v = _Validator(source, facts, set(metric_types), level_set,
                   domains_for(metric_types, level_set, inputs,
                               period_kind if period_kind in PERIOD_KINDS else "year"),
                   formulas)
    if not isinstance(doc, Mapping):
        v.fail(msg("a rule is a mapping of fields"))
    extra = set(doc) - set(TOP_FIELDS)
    if extra:
        name = sorted(extra)[0]
        v.fail(msg("unknown field %(name)s; the fields are %(value)s", name=repr(name),
                   value=', '.join(TOP_FIELDS)), name)
    key = v.text(doc.get("key"), "key")
    if len(key) > 100 or not all(c.isalnum() or c in "._-" for c in key):
        v.fail(msg("a key is letters, digits, '.', '_' or '-' (at most 100)"), "key")
    if source.startswith("rule ") is False and source == "":
        source = f"rule {key}"
    kind = v.text(doc.get("kind"), "kind")
    if kind not in RULE_KINDS:
        v.fail(msg("unknown kind %(kind)s; the kinds are %(value)s", kind=repr(kind),
                   value=', '.join(RULE_KINDS)), "kind")
    period_kind = v.text(doc.get("period_kind"), "period_kind")
    if period_kind not in PERIOD_KINDS:
        v.fail(msg("unknown period kind %(period_kind)s; use month, quarter or year",
                   period_kind=repr(period_kind)),
               "period_kind")
    out: dict[str, Any] = {
        "key": key, "name": v.text(doc.get("name"), "name", required=False) or key,
        "description": v.text(doc.get("description"), "description", required=False,
                              most=4000, lines=True),
        "kind": kind, "period_kind": period_kind,
    }
    # The Chinese name and description are kept only when given: a rule without them keeps
    # the content hash it had before they existed.
    for f, most in (("name_zh", 200), ("description_zh", 4000)):
        text = v.text(doc.get(f), f, required=False, most=most, lines=f == "description_zh")
        if text:
            out[f] = text
    for f in ("effective_from", "effective_to"):
        value = doc.get(f)
        if value in (None, ""):
            out[f] = None
            continue
        if isinstance(value, dt.date):
            out[f] = value
        else:
            try:
                out[f] = dt.date.fromisoformat(str(value))
            except ValueError:
                v.fail(msg("%(value)s is not a date (YYYY-MM-DD)", value=repr(value)), f)
    if out["effective_from"] and out["effective_to"] and \
            out["effective_to"] < out["effective_from"]:
        v.fail(msg("ends before effective_from"), "effective_to")
    scope = doc.get("scope") or {}
    if not isinstance(scope, dict):
        v.fail(msg("scope is a mapping of team_stage, level, region"), "scope")
    extra = set(scope) - set(SCOPE_FIELDS)
    if extra:
        v.fail(msg("unknown scope %(extra)s; use team_stage, level, region",
                   extra=repr(sorted(extra)[0])),
               f"scope.{sorted(extra)[0]}")
    out_scope = {}
    for f in SCOPE_FIELDS:
        values = scope.get(f) or []
        if isinstance(values, str):
            values = [values]
        values = [v.text(x, f"scope.{f}") for x in values]
        if f == "team_stage":
            for x in values:
                if x not in TEAM_STAGES:
                    v.fail(msg("unknown team stage %(x)s; use startup, growth, mature", x=repr(x)),
                           "scope.team_stage")
        if f == "level" and v.levels is not None:
            for x in values:
                if x not in v.levels:
                    v.fail(msg("unknown level %(x)s", x=repr(x)), "scope.level")
        if values:
            out_scope[f] = values
    out["scope"] = out_scope
    out["when"] = v.condition(doc.get("when"), "when")
    base = [{"fact": f, "op": "in", "value": list(values)} for f, values in out_scope.items()]
    if out["when"]:
        base.append(out["when"])
    out["action"] = _validate_action(v, kind, doc.get("action"), base)
    if out["action"]["type"] == "draw" and out["effective_from"] is None:
        v.fail(msg("a draw counts its periods from its first day: give the date it takes "
                   "effect"), "effective_from")
    hold = doc.get("hold", False)
    if not isinstance(hold, bool):
        v.fail(msg("hold is true or false"), "hold")
    if hold and kind != "flag":
        v.fail(msg("only a flag can hold payouts"), "hold")
    out["hold"] = hold
    for leaf in leaves(out["when"]):
        if leaf["fact"] == "rating" and kind == "rating":
            v.fail(msg("a rating rule cannot read the rating it sets"), "when")
    limit = check_limits(out)
    if limit:
        v.fail(limit[1], limit[0])
    return out


# --- storage ------------------------------------------------------------------------------


def catalog_types(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Metric.key, Metric.type)).all())


def validate_for_session(session: Session, doc: Mapping[str, Any], source: str
                         ) -> dict[str, Any]:
    levels = session.scalars(select(Level.code)).all()
    inputs = {m.key: (m.type, m.min_value, m.max_value, m.rollup)
              for m in session.scalars(select(Metric).where(Metric.formula.is_(None)))}
    formulas = dict(session.execute(select(Metric.key, Metric.formula)).all())
    return validate(doc, source, catalog_types(session), levels, inputs, formulas)


def stored_form(doc: Mapping[str, Any]) -> dict[str, Any]:
    return _to_json(dict(doc))


def latest(session: Session, key: str) -> Rule | None:
    return session.scalar(select(Rule).where(Rule.key == key).order_by(Rule.version.desc())
                          .limit(1))


def save_rule(session: Session, doc: Mapping[str, Any], source: str, publish: bool = False,
              scenarios: str | None = None, base: Rule | None = None) -> tuple[Rule, bool]:
    """Validate and store a rule as a new version unless its content is unchanged.

    ``scenarios`` (a feature text, engine.scenarios) are the new version's; None keeps
    those of ``base``, the version the change starts from (default: the newest). A version
    is new when its definition or its scenarios differ from the base's and the newest's.
    Publishing a version retires the key's earlier published version. Returns the rule
    and whether a new version was written.
    """
    from engine.scenarios import same

    clean = validate_for_session(session, doc, source)
    stored = stored_form(clean)
    digest = content_hash(stored)
    current = latest(session, clean["key"])
    base = base or current
    if scenarios is None:
        scenarios = base.scenarios if base is not None else ""
    created = False
    unchanged = [r for r in (base, current) if r is not None and r.content_hash == digest
                 and r.status != "discarded" and same(r.scenarios or "", scenarios)]
    if unchanged:
        rule = unchanged[0]
    else:
        rule = Rule(key=clean["key"], version=(current.version + 1) if current else 1,
                    name=clean["name"], kind=clean["kind"], period_kind=clean["period_kind"],
                    status="draft", effective_from=clean["effective_from"],
                    effective_to=clean["effective_to"], definition=stored,
                    content_hash=digest, scenarios=scenarios)
        session.add(rule)
        created = True
    if publish and rule.status != "published":
        publish_rule(session, rule)
    session.flush()
    return rule, created


def publish_rule(session: Session, rule: Rule) -> None:
    """Publish a version; the key's published version retires.

    A version that starts on a date (effective_from) retires its predecessor from that
    date only: the predecessor's effective_to becomes the day before, so a run of an
    earlier period still uses it (published_rules with ``on``).
    """
    for other in session.scalars(select(Rule).where(Rule.key == rule.key,
                                                    Rule.status == "published")):
        if other is not rule:
            other.status = "retired"
            if rule.effective_from is not None:
                last = rule.effective_from - dt.timedelta(days=1)
                if other.effective_to is None or other.effective_to > last:
                    other.effective_to = last
    rule.status = "published"
    session.flush()


def published_rules(session: Session, period_kind: str | None = None,
                    on: dt.date | None = None) -> list[Rule]:
    """Return the published rules (of a period kind, in force on a date), by key.

    On a date, the newest version of each key in force that day wins; a retired version
    counts when it was retired as of a date (it has an effective_to), so an older period
    keeps the version that was in force on its last day.
    """
    statuses = ("published",) if on is None else ("published", "retired")
    stmt = select(Rule).where(Rule.status.in_(statuses))
    if period_kind:
        stmt = stmt.where(Rule.period_kind == period_kind)
    rules = list(session.scalars(stmt.order_by(Rule.key, Rule.version)))
    if on is not None:
        newest: dict[str, Rule] = {}
        for r in rules:
            if r.status == "retired" and r.effective_to is None:
                continue
            if (r.effective_from is None or r.effective_from <= on) \
                    and (r.effective_to is None or r.effective_to >= on):
                newest[r.key] = r
        rules = [newest[k] for k in sorted(newest)]
    return rules


def rule_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


def read_rule_file(path: Path) -> dict[str, Any]:
    return read_yaml(_read_text(path), str(path))


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RuleError(str(path), msg("is larger than %(max_file_bytes)s bytes: a rule "
                                           "file holds one rule",
                                           max_file_bytes=format(MAX_FILE_BYTES, ',')))
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise RuleError(str(path), msg("cannot be read: %(strerror)s",
                                       strerror=exc.strerror)) from None
    except UnicodeDecodeError:
        raise RuleError(str(path), msg("is not UTF-8 text (save it as UTF-8)")) from None


def read_feature_file(path: Path) -> str | None:
    """A rule's scenarios from its feature file, checked (engine.specs.checked); None when
    there is no such file."""
    from engine.specs import SpecSyntaxError, checked

    if not path.is_file():
        return None
    try:
        return checked(_read_text(path), str(path))
    except SpecSyntaxError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise RuleError(str(path), reason, row=exc.line) from None


def feature_path(path: Path, key: str, features: Path | None = None) -> Path:
    """Where a rule file's scenarios are: KEY.feature beside it, else in ``features``."""
    beside = path.with_name(f"{key}.feature")
    if beside.is_file() or features is None:
        return beside
    return features / f"{key}.feature"


def validate_files(session: Session, path: Path, features: Path | None = None
                   ) -> list[tuple[Path, dict[str, Any], str | None]]:
    """Validate every rule file under path and its scenarios (KEY.feature beside it, or in
    ``features``); keys must be unique across the files."""
    files = rule_files(path)
    if not files:
        raise RuleError(str(path), msg("holds no rule files (*.yaml)"))
    docs, seen = [], {}
    for f in files:
        doc = validate_for_session(session, read_rule_file(f), str(f))
        if doc["key"] in seen:
            raise RuleError(str(f), msg("key %(doc)s is also in %(seen)s", doc=doc['key'],
                                        seen=seen[doc['key']]),
                            field="key")
        seen[doc["key"]] = str(f)
        docs.append((f, doc, read_feature_file(feature_path(f, doc["key"], features))))
    return docs


def load_files(session: Session, path: Path, publish: bool = False) -> list[tuple[Rule, bool]]:
    """Load rule files and their scenarios as drafts (or published); all of them or none.

    A rule file without a feature file keeps the scenarios its key has.
    """
    out = []
    for f, doc, scenarios in validate_files(session, path):
        out.append(save_rule(session, doc, str(f), publish=publish, scenarios=scenarios))
    return out


def load_library(session: Session, directory: Path, features: Path | None = None) -> int:
    """Publish the reference library's rules whose keys the database does not have yet,
    each with its scenarios (``features``, by default the ``features`` folder beside
    ``directory``).

    A key already present is left alone: HR may have changed it in the back office.
    """
    if not directory.is_dir() or not rule_files(directory):
        return 0
    features = features or directory.parent / "features"
    have = set(session.scalars(select(Rule.key).distinct()))
    count = 0
    for f, doc, scenarios in validate_files(session, directory, features):
        if doc["key"] not in have:
            save_rule(session, doc, str(f), publish=True, scenarios=scenarios or "")
            count += 1
    return count


def to_document(rule: Rule) -> dict[str, Any]:
    """The rule as a file holds it (version and status for the reader; load ignores them)."""
    d = dict(rule.definition)
    ordered: dict[str, Any] = {}
    for k in TOP_FIELDS:
        if k == "version":
            ordered[k] = rule.version
        elif k == "status":
            ordered[k] = rule.status
        elif k in d and d[k] not in (None, {}, "") or k in ("when",) and d.get(k):
            ordered[k] = d[k]
    return _with_decimals(ordered)


def _with_decimals(value: Any, key: str = "") -> Any:
    numeric_keys = {"value", "amount", "rate", "from", "to", "cap", "floor", "annual_cap",
                    "recovery_share", "below", "share", "release_at"}
    if isinstance(value, dict):
        return {k: _with_decimals(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_decimals(v, key) for v in value]
    if key in numeric_keys and isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def dump_yaml(doc: Mapping[str, Any]) -> str:
    return yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=None, width=100)


def export_rules(session: Session, directory: Path) -> list[Path]:
    """Write every published rule as YAML, one file per rule, and its scenarios as
    KEY.feature beside it (the Gherkin of ``features/``)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for rule in published_rules(session):
        path = directory / f"{rule.key}.yaml"
        path.write_text(dump_yaml(to_document(rule)), encoding="utf-8")
        out.append(path)
        feature = directory / f"{rule.key}.feature"
        if rule.scenarios:
            feature.write_text(rule.scenarios, encoding="utf-8")
        elif feature.exists():  # an older export's scenarios are no longer the rule's
            feature.unlink()
    return out

