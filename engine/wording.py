"""Explanations in plain words, in English or Chinese.

A run stores each outcome's explanation as data: the checks that held (fact, operator,
the value it read, the value it was compared with), the calculation of the amount, the
decision-table row, the PIP, the flags that hold it. This module turns that data into
sentences such as "attainment 1.23 >= 1.20: tier 4 (1.20 and above), so 6% of
revenue_total 123,456.00 = 7,407.36", in the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

Label = Callable[[str], str]

OPS = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
# Chinese names of the facts that are not metrics of the catalog.
CONTEXT_ZH = {
    "team": "团队", "team_stage": "团队阶段", "region": "区域", "level": "职级",
    "level_authority": "职级折扣权限", "team_revenue": "团队收入", "team_quota": "团队指标",
    "team_attainment": "团队达成率", "per_capita_output": "人均产出", "team_members": "团队人数",
    "previous_rating": "上期评级", "pips_overlapping": "进行中的改进计划数", "rating": "本期评级",
}
VALUES_ZH = {"startup": "初创期", "growth": "成长期", "mature": "成熟期"}


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def number(value: Any) -> str:
    """A number as people read it: thousands separators, exact up to eight decimals.

    Longer values are cut (never rounded) after eight decimals and end in "…", so that an
    attainment of 0.79999999999 never reads as 0.8 next to the tier it missed.
    """
    d = _dec(value)
    if d is None:
        return str(value)
    if d == d.to_integral_value():
        return f"{d:,.0f}"
    d = d.normalize()
    if d.as_tuple().exponent < -8:
        cut = d.quantize(Decimal("1E-8"), rounding=ROUND_DOWN)
        return f"{cut:,f}…"
    return f"{d:,f}"


def money(value: Any) -> str:
    d = _dec(value)
    return f"{d:,.2f}" if d is not None else str(value)


def pct(value: Any) -> str:
    d = _dec(value)
    if d is None:
        return str(value)
    return format((d * 100).normalize(), "f") + "%"


def _plain_label(key: str) -> str:
    return key


def check(c: Mapping[str, Any], lang: str = "en", label: Label = _plain_label) -> str:
    """One condition that held, with the values it read."""
    if c.get("negated"):
        if c["op"] == "not":
            inner = c.get("text", "")
        else:
            inner = check({k: v for k, v in c.items() if k != "negated"}, lang, label)
        return f"并非（{inner}）" if lang == "zh" else f"not ({inner})"
    name = label(c["fact"])
    op = c["op"]
    actual = c.get("actual")
    shown = number(actual) if _dec(actual) is not None else (
        ("未定义" if lang == "zh" else "undefined") if actual is None else
        VALUES_ZH.get(str(actual), str(actual)) if lang == "zh" else str(actual))
    if op == "defined":
        return f"{name} {shown}" + ("（已定义）" if lang == "zh" else " (defined)")
    if op == "undefined":
        return f"{name}" + (" 未定义" if lang == "zh" else " undefined")
    if op == "highest":
        return (f"{name} {shown} 为全公司最高" if lang == "zh"
                else f"{name} {shown} is the highest in the company")
    if op == "top_share":
        share = pct(c.get("value"))
        higher, n = c.get("higher"), c.get("n")
        if lang == "zh":
            return f"{name} {shown}：{n} 人中有 {higher} 人严格更高，少于 {share}"
        return f"{name} {shown}: {higher} of {n} have a strictly higher one, fewer than {share}"
    if op in ("in", "not_in"):
        values = c.get("value") or []
        if lang == "zh":
            vals = "、".join(VALUES_ZH.get(str(v), str(v)) for v in values)
            return f"{name} {shown} {'属于' if op == 'in' else '不属于'} {vals}"
        return f"{name} {shown} {'is one of' if op == 'in' else 'is none of'} " + ", ".join(
            str(v) for v in values)
    if "ref" in c:
        other = f"{label(c['ref'])} {number(c.get('ref_actual'))}"
    else:
        v = c.get("value")
        other = number(v) if _dec(v) is not None else (
            VALUES_ZH.get(str(v), str(v)) if lang == "zh" else str(v))
    return f"{name} {shown} {OPS.get(op, op)} {other}"


def bound(value: Any) -> str:
    """A tier bound with at least two decimals: 0.80, 1.00, 1.20."""
    d = _dec(value)
    if d is None:
        return str(value)
    if d.as_tuple().exponent >= -2:
        d = d.quantize(Decimal("0.01"))
    return f"{d:,f}"


def band(calc: Mapping[str, Any], lang: str) -> str:
    lo, hi = calc.get("from"), calc.get("to")
    lo, hi = (None if lo is None else bound(lo)), (None if hi is None else bound(hi))
    if lang == "zh":
        if lo is None:
            return f"低于 {hi}"
        if hi is None:
            return f"{lo} 及以上"
        return f"{lo} 至低于 {hi}"
    if lo is None:
        return f"below {hi}"
    if hi is None:
        return f"{lo} and above"
    return f"{lo} to below {hi}"


def calculation(calc: Mapping[str, Any], lang: str = "en", label: Label = _plain_label) -> str:
    """The arithmetic of an amount."""
    t, amount = calc["type"], money(calc["amount"])
    if t == "fixed":
        return f"固定金额 {amount}" if lang == "zh" else f"fixed amount {amount}"
    if t == "rate":
        base = f"{label(calc['base'])} {money(calc['base_value'])}"
        return (f"{base} × {pct(calc['rate'])} = {amount}" if lang == "zh"
                else f"{pct(calc['rate'])} of {base} = {amount}")
    if t == "per_unit":
        per = f"{label(calc['per'])} {number(calc['per_value'])}"
        return (f"{money(calc['unit'])} × {per} = {amount}" if lang == "zh"
                else f"{money(calc['unit'])} x {per} = {amount}")
    metric = f"{label(calc['metric'])} {number(calc['metric_value'])}"
    base = f"{label(calc['base'])} {money(calc['base_value'])}"
    if lang == "zh":
        return (f"{metric}：第 {calc['tier']} 档（{band(calc, lang)}），按 {base} 的 "
                f"{pct(calc['rate'])} 计 = {amount}")
    return (f"{metric}: tier {calc['tier']} ({band(calc, lang)}), so {pct(calc['rate'])} "
            f"of {base} = {amount}")


def explain(kind: str, exp: Mapping[str, Any], lang: str = "en",
            label: Label = _plain_label) -> list[str]:
    """The explanation of one outcome as sentences in the reader's language."""
    zh = lang == "zh"
    if kind == "warning" and exp.get("missing"):
        who, rule = exp.get("employee", ""), exp.get("rule_key", "")
        name = label(exp["missing"])
        if zh:
            return [f"员工 {who}，规则 {rule}：{name} 未定义，该规则无法给出结果"]
        return [f"employee {who}, rule {rule}: {name} is undefined, so the rule cannot give "
                "its outcome"]
    if "checks" not in exp and "calc" not in exp:
        return _stored_words(exp)
    words: list[str] = []
    checks = [check(c, lang, label) for c in exp.get("checks") or []]
    calc = exp.get("calc")
    if calc and calc.get("type") == "tiers":
        words.append(calculation(calc, lang, label))
        # the tier's own band and the base being defined are said by the calculation
        checks = [c for c, raw in zip(checks, exp.get("checks") or [], strict=False)
                  if raw["fact"] != calc["metric"]
                  and not (raw["fact"] == calc["base"] and raw["op"] == "defined")]
        if checks:
            words.append(("且 " + "；".join(checks)) if zh else "and " + "; ".join(checks))
    else:
        if checks:
            words.append(("因为 " + "；".join(checks)) if zh else "because " + "; ".join(checks))
        if exp.get("row"):
            row = exp["row"]
            words.append(f"第 {row['index']} 行（{row['value']}）：第一个满足的行" if zh
                         else f"row {row['index']} ({row['value']}), the first that matches")
        if calc:
            words.append(calculation(calc, lang, label))
    if exp.get("pip"):
        pip = exp["pip"]
        words.append(f"改进计划自 {pip['start']} 至 {pip['end']}（{pip['months']} 个月），"
                     f"目标：{pip['target']}" if zh else
                     f"PIP from {pip['start']} to {pip['end']} ({pip['months']} months), "
                     f"target: {pip['target']}")
    if exp.get("held_by"):
        rules = ", ".join(exp["held_by"])
        words.append(f"因 {rules} 暂扣，待合规审核" if zh
                     else f"held by {rules} until compliance review")
    return words


def _stored_words(exp: Mapping[str, Any]) -> list[str]:
    """Explanations stored without structure (released holds, older runs): their text."""
    if exp.get("message"):
        return [exp["message"]]
    words = []
    if exp.get("conditions"):
        words.append("because " + "; ".join(exp["conditions"]))
    for key in ("matched", "arithmetic"):
        if exp.get(key):
            words.append(exp[key])
    if exp.get("held_by"):
        words.append(f"held by {', '.join(exp['held_by'])} until compliance review")
    return words
