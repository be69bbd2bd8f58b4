"""Policies and explanations in plain words, in English or Chinese.

A run stores each outcome's explanation as data: the checks that held (fact, operator,
the value it read, the value it was compared with), the calculation of the amount, the
decision-table row, the PIP, the flags that hold it. This module turns that data into
sentences such as "attainment 123% >= 120%: tier 4 (120% and above), so 6% of
revenue_total 123,456.00 = 7,407.36", in the reader's language; and a rule's definition
into the lines of its page and a summary ("Each month: 3% of Total revenue where
Attainment is below 80%, ..."). A ratio reads as a percentage wherever it is shown (the
``types`` of the facts say which are ratios); the stored explanation keeps the fraction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from functools import lru_cache, wraps
from typing import Any

from babel.dates import format_date

Label = Callable[[str], str]

OPS = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
# Chinese names of the facts that are not metrics of the catalog.
CONTEXT_ZH = {
    "team": "团队", "team_stage": "团队阶段", "region": "区域", "level": "职级",
    "level_authority": "职级折扣权限", "team_revenue": "团队收入", "team_quota": "团队指标",
    "team_attainment": "团队达成率", "per_capita_output": "人均产出", "team_members": "团队人数",
    "previous_rating": "上期评级", "pips_overlapping": "进行中的改进计划数", "rating": "本期评级",
    "active_days": "在职天数", "period_days": "本期天数", "active_share": "在职天数占比",
}
VALUES_ZH = {"startup": "初创期", "growth": "成长期", "mature": "成熟期"}
# Short English names of the same facts (the catalog's metrics have their own labels).
CONTEXT_EN = {
    "team": "team", "team_stage": "team stage", "region": "region", "level": "level",
    "level_authority": "discount authority of the level", "team_revenue": "team revenue",
    "team_quota": "team quota", "team_attainment": "team attainment",
    "per_capita_output": "output per team member", "team_members": "team members",
    "previous_rating": "previous rating", "pips_overlapping": "PIPs running",
    "rating": "rating of this period", "active_days": "days employed",
    "period_days": "days in the period", "active_share": "share of the period employed",
}
# The words of the domain that pages show for codes: kinds, period kinds, statuses.
TERMS_ZH = {
    "commission": "提成", "bonus": "奖金", "award": "荣誉奖励", "rating": "评级",
    "eligibility": "资格", "pip": "绩效改进计划", "flag": "合规标记", "alert": "预警",
    "warning": "警告", "adjustment": "调整",
    "month": "月度", "quarter": "季度", "year": "年度",
    "draft": "草稿", "published": "已发布", "retired": "已停用", "discarded": "已废弃",
    "payable": "应付", "held": "暂扣", "forfeited": "没收",
    "startup": "初创期", "growth": "成长期", "mature": "成熟期",
    "open": "开放", "resolved": "已处理", "in_review": "审查中", "dismissed": "已驳回",
    "confirmed": "已确认", "active": "进行中", "passed": "通过", "extended": "已延期",
    "closed": "已关闭", "failed": "未通过", "calculated": "已计算", "approved": "已批准",
    "locked": "已锁定", "low": "低", "medium": "中", "high": "高",
    "cleared": "不再触发", "proposed": "待生效", "role_change": "调岗", "exit": "离职",
    "eligible": "符合条件", "nominated": "已提名", "accepted": "已录取", "declined": "未录取",
    "self": "自评", "manager": "经理评估", "customer": "客户评分",
    "hr_admin": "人力资源管理员", "comp_analyst": "薪酬分析师", "compliance_officer": "合规专员",
    "sales_manager": "销售经理", "auditor": "审计员", "sales_rep": "销售人员",
}
TERMS_EN = {"pip": "PIP", "in_review": "in review"}


def term(word: Any, lang: str = "en") -> str:
    """A code of the domain (a kind, a status, a stage) as the reader says it."""
    if word is None:
        return ""
    text = str(word)
    if lang == "zh":
        return TERMS_ZH.get(text, text)
    return TERMS_EN.get(text, text)


def _dec(value: Any) -> Decimal | None:
    if type(value) is Decimal:  # Decimal(str(value)) is the same number, exponent and all
        return value
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _by_text(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    """fn, remembered for the texts it is given: an explanation's numbers are stored as
    text, and a run words the same rates, bounds and values for employee after employee."""
    known = lru_cache(maxsize=4096)(fn)

    @wraps(fn)
    def words(value: Any) -> str:
        return known(value) if type(value) is str else fn(value)

    return words


@_by_text
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


@_by_text
def money(value: Any) -> str:
    d = _dec(value)
    return f"{d:,.2f}" if d is not None else str(value)


@_by_text
def pct(value: Any) -> str:
    """A fraction as a percentage, exact (cut after eight decimals, as ``number``)."""
    d = _dec(value)
    if d is None:
        return str(value)
    return number(d.scaleb(2)) + "%"


# Babel's locale of each language the product speaks (the back office's, admin.i18n, and
# the plain wording's, engine.plain)
LOCALES = {"en": "en", "zh": "zh_Hans_CN"}


def day(value: Any, lang: str = "en") -> str:
    """A day as the back office shows one in the reader's language ("Apr 1, 2026",
    "2026年4月1日"), from a date or a stored ISO day; other text stays as it is."""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, dt.date):
        return "" if value is None else str(value)
    return format_date(value, "medium", locale=LOCALES.get(lang, "en"))


def shown(value: Any, kind: str | None) -> str:
    """A fact's value as people read it by its type: a ratio as a percentage, money with
    two decimals, any other number with its thousands separators."""
    if _dec(value) is None:
        return str(value)
    if kind == "ratio":
        return pct(value)
    if kind == "money":
        return money(value)
    return number(value)


def _plain_label(key: str) -> str:
    return key


def check(c: Mapping[str, Any], lang: str = "en", label: Label = _plain_label,
          types: Mapping[str, str] | None = None) -> str:
    """One condition that held, with the values it read."""
    types = types or {}
    if c.get("negated"):
        if c["op"] == "not":
            inner = c.get("text", "")
        else:
            inner = check({k: v for k, v in c.items() if k != "negated"}, lang, label, types)
        return f"并非（{inner}）" if lang == "zh" else f"not ({inner})"
    name = label(c["fact"])
    actual = c.get("actual")
    kind = types.get(c["fact"])
    shown_ = _shown_actual(actual, kind, lang)
    return _check_words(c, name, shown_, lang, label, types)


def _shown_actual(actual: Any, kind: str | None, lang: str) -> str:
    return shown(actual, kind) if _dec(actual) is not None else (
        ("未定义" if lang == "zh" else "undefined") if actual is None else
        VALUES_ZH.get(str(actual), str(actual)) if lang == "zh" else str(actual))


def _check_words(c: Mapping[str, Any], name: str, read: str, lang: str, label: Label,
                 types: Mapping[str, str]) -> str:
    op = c["op"]
    if op == "defined":
        return f"{name} {read}" + ("（已定义）" if lang == "zh" else " (defined)")
    if op == "undefined":
        return f"{name}" + (" 未定义" if lang == "zh" else " undefined")
    if op == "highest":
        return (f"{name} {read} 为全公司最高" if lang == "zh"
                else f"{name} {read} is the highest in the company")
    if op == "top_share":
        share = pct(c.get("value"))
        higher, n = c.get("higher"), c.get("n")
        if lang == "zh":
            return f"{name} {read}：{n} 人中有 {higher} 人严格更高，少于 {share}"
        return f"{name} {read}: {higher} of {n} have a strictly higher one, fewer than {share}"
    if op in ("in", "not_in"):
        values = c.get("value") or []
        if lang == "zh":
            vals = "、".join(VALUES_ZH.get(str(v), str(v)) for v in values)
            return f"{name} {read} {'属于' if op == 'in' else '不属于'} {vals}"
        return f"{name} {read} {'is one of' if op == 'in' else 'is none of'} " + ", ".join(
            str(v) for v in values)
    if "ref" in c:
        other = f"{label(c['ref'])} {shown_value(c.get('ref_actual'), types.get(c['ref']))}"
    else:
        v = c.get("value")
        other = shown(v, types.get(c["fact"])) if _dec(v) is not None else (
            VALUES_ZH.get(str(v), str(v)) if lang == "zh" else str(v))
    return f"{name} {read} {OPS.get(op, op)} {other}"


def shown_value(value: Any, kind: str | None) -> str:
    return shown(value, kind) if _dec(value) is not None else str(value)


@_by_text
def bound(value: Any) -> str:
    """A tier bound with at least two decimals: 0.80, 1.00, 1.20."""
    d = _dec(value)
    if d is None:
        return str(value)
    if d.as_tuple().exponent >= -2:
        d = d.quantize(Decimal("0.01"))
    return f"{d:,f}"


def band(calc: Mapping[str, Any], lang: str, kind: str | None = None) -> str:
    """A tier's band: "below 0.80", "80% to below 100%" for a ratio."""
    lo, hi = calc.get("from"), calc.get("to")
    show = pct if kind == "ratio" else bound
    lo, hi = (None if lo is None else show(lo)), (None if hi is None else show(hi))
    if lo is None and hi is None:
        return "任何值" if lang == "zh" else "any value"
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


def calculation(calc: Mapping[str, Any], lang: str = "en", label: Label = _plain_label,
                types: Mapping[str, str] | None = None) -> str:
    """The arithmetic of an amount, then each floor or cap that changed it."""
    text = _arithmetic(calc, lang, label, types or {})
    sep = "；" if lang == "zh" else "; "
    return sep.join([text, *prorate_words(calc, lang), *limit_words(calc, lang),
                     *signing_words(calc, lang)])


def signing_words(calc: Mapping[str, Any], lang: str = "en") -> list[str]:
    """The part paid on signing and the part held until the cash is collected."""
    s = calc.get("on_signing")
    if not s:
        return []
    if lang == "zh":
        return [f"签约时发放 {pct(s['share'])}：{money(s['paid'])}；"
                f"其余 {money(s['held'])} 待回款率达到 {pct(s['release_at'])} 后发放"]
    return [f"{pct(s['share'])} paid on signing: {money(s['paid'])}; {money(s['held'])} held "
            f"until the collection ratio reaches {pct(s['release_at'])}"]


def prorate_words(calc: Mapping[str, Any], lang: str = "en") -> list[str]:
    """The share of the amount paid for the days employed, when the rule prorates."""
    p = calc.get("prorated")
    if not p:
        return []
    if lang == "zh":
        return [f"按在职天数折算：{p['active_days']}/{p['period_days']} 天，"
                f"{money(calc['amount'])} → {money(p['amount'])}"]
    return [f"prorated for {p['active_days']} of {p['period_days']} days: "
            f"{money(calc['amount'])} x {p['active_days']}/{p['period_days']} = "
            f"{money(p['amount'])}"]


def signed(value: Any) -> str:
    d = _dec(value)
    return f"{d:+,.2f}" if d is not None else str(value)


def _runs_said(runs: list[Mapping[str, Any]], lang: str) -> str:
    sep = "、" if lang == "zh" else ", "
    return sep.join(f"{r['run_id']} ({r['period']})" for r in runs)


def limit_words(calc: Mapping[str, Any], lang: str = "en") -> list[str]:
    """Each floor or cap that changed the amount, and by how much; an annual cap that did
    not, with what was paid earlier in the year."""
    zh = lang == "zh"
    out = []
    for lim in calc.get("limits") or []:
        value, after, change = money(lim["value"]), money(lim["after"]), signed(lim["change"])
        if lim["limit"] == "floor":
            out.append(f"按每期保底 {value} 提高至 {after}（{change}）" if zh else
                       f"raised to the floor of {value} a period: {after} ({change})")
        elif lim["limit"] == "cap":
            out.append(f"按每期上限 {value} 封顶为 {after}（{change}）" if zh else
                       f"capped at {value} a period: {after} ({change})")
    annual = calc.get("annual_cap")
    if annual:
        hit = next((x for x in calc.get("limits") or [] if x["limit"] == "annual_cap"), None)
        paid, value = money(annual["paid_earlier"]), money(annual["value"])
        runs = _runs_said(annual.get("runs") or [], lang)
        earlier = (f"本年此前已由该规则发放 {paid}" + (f"，批次 {runs}" if runs else "") if zh
                   else f"{paid} paid earlier this year by this rule"
                   + (f", runs {runs}" if runs else ""))
        if hit:
            after, change = money(hit["after"]), signed(hit["change"])
            out.append(f"按年度上限 {value} 封顶（{earlier}）为 {after}（{change}）" if zh else
                       f"capped by the annual cap of {value} ({earlier}): {after} ({change})")
        else:
            out.append(f"未超过年度上限 {value}（{earlier}）" if zh else
                       f"within the annual cap of {value} ({earlier})")
    return out


def signing_said(part: Mapping[str, Any] | None, zh: bool) -> str:
    """A rule paid in part on signing, in words (all at once when it is not)."""
    if not part:
        return "全部当期发放" if zh else "all at once"
    share, at = pct(part["share"]), pct(part["release_at"])
    return (f"签约时发放 {share}，其余在回款率达到 {at} 的期间发放" if zh else
            f"{share} paid on signing, the rest in the period the collection ratio reaches {at}")


def clawback_said(claw: Mapping[str, Any] | None, zh: bool) -> str:
    """A rule's clawback in words (none when it has none)."""
    if not claw:
        return "无" if zh else "none"
    share, below, n = pct(claw.get("share") or 1), pct(claw["below"]), claw["within"]
    return (f"若之后 {n} 期内某期回款率低于 {below}，追回本规则所发金额的 {share}" if zh else
            f"{share} of what it paid is clawed back when the collection ratio of one of the "
            f"{n} periods after falls below {below}")


def draw_words(calc: Mapping[str, Any], lang: str = "en") -> str:
    """A draw's line: the guarantee and what was earned, the shortfall paid or the part
    of the balance recovered, and the balance before and after."""
    zh = lang == "zh"
    n, of = calc.get("period"), calc["periods"]
    guarantee, earned = money(calc["guarantee"]), money(calc["earned"])
    if n is not None:
        head = (f"保底第 {n}/{of} 期：每期保底 {guarantee}，本期提成 {earned}" if zh else
                f"draw period {n} of {of}: {guarantee} guaranteed, commissions {earned}")
    else:
        head = (f"保底期（{of} 期）已结束，本期提成 {earned}" if zh else
                f"after the {of} periods of the draw: commissions {earned}")
    parts = [head]
    if "shortfall" in calc:
        parts.append(f"预支补足 {money(calc['shortfall'])}" if zh
                     else f"shortfall paid as a draw {money(calc['shortfall'])}")
    if "recovered" in calc:
        share = pct(calc["share"])
        parts.append(f"从 {money(calc['from'])} 的 {share} 中收回预支 {money(calc['recovered'])}"
                     if zh else f"recovered {money(calc['recovered'])} ({share} of "
                     f"{money(calc['from'])}, at most the balance)")
    if calc.get("recoverable"):
        runs = _runs_said(calc.get("runs") or [], lang)
        parts.append((f"待收回余额 {money(calc['balance_before'])} → "
                      f"{money(calc['balance_after'])}" + (f"（批次 {runs}）" if runs else ""))
                     if zh else (f"balance owed {money(calc['balance_before'])} -> "
                                 f"{money(calc['balance_after'])}"
                                 + (f" (runs {runs})" if runs else "")))
    return ("；" if zh else "; ").join(parts)


def _arithmetic(calc: Mapping[str, Any], lang: str, label: Label,
                types: Mapping[str, str]) -> str:
    if calc["type"] == "draw":
        return draw_words(calc, lang)
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
    kind = types.get(calc["metric"])
    metric = f"{label(calc['metric'])} {shown_value(calc['metric_value'], kind)}"
    base = f"{label(calc['base'])} {money(calc['base_value'])}"
    if calc.get("mode") == "marginal":
        return _marginal(calc, metric, lang, label, kind)
    if lang == "zh":
        return (f"{metric}：第 {calc['tier']} 档（{band(calc, lang, kind)}），按 {base} 的 "
                f"{pct(calc['rate'])} 计 = {amount}")
    return (f"{metric}: tier {calc['tier']} ({band(calc, lang, kind)}), so {pct(calc['rate'])} "
            f"of {base} = {amount}")


# what calculation() words after the arithmetic, when a calculation holds it
_AFTER_ARITHMETIC = frozenset({"prorated", "limits", "annual_cap", "on_signing"})


def calculation_template(calc: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], str]:
    """calculation(calc) in English for the calculations of one rule's firing, its words
    that are alike for every employee (rate, unit, names, tier and band) worked out once
    from ``calc``, the part they share: the function returned words a calculation of that
    shape from its own values (base_value, per_value, metric_value, amount). A draw, a
    marginal tier, and a calculation with a prorated share, a limit or a part paid on
    signing are worded by calculation() itself."""
    t = calc["type"]
    # (words before a value, its key, how it is worded), as _arithmetic words them
    amount = (" = ", "amount", money)
    if t == "fixed":
        pieces = [("fixed amount ", "amount", money)]
    elif t == "rate":
        pieces = [(f"{pct(calc['rate'])} of {calc['base']} ", "base_value", money), amount]
    elif t == "per_unit":
        pieces = [(f"{money(calc['unit'])} x {calc['per']} ", "per_value", number), amount]
    elif t == "tiers" and calc.get("mode") != "marginal":
        # shown_value(value, None) is number(value), a text or not
        pieces = [(f"{calc['metric']} ", "metric_value", number),
                  (f": tier {calc['tier']} ({band(calc, 'en')}), so {pct(calc['rate'])} "
                   f"of {calc['base']} ", "base_value", money), amount]
    else:
        return calculation

    def words(c: Mapping[str, Any]) -> str:
        if _AFTER_ARITHMETIC.isdisjoint(c):
            return "".join([before + how(c[key]) for before, key, how in pieces])
        return calculation(c)

    return words


def exact_money(value: Any) -> str:
    """An amount with two decimals, or all of its decimals when it has more (a slice of a
    marginal tier before the line is rounded: 37.035)."""
    d = _dec(value)
    if d is None or d == d.quantize(Decimal("0.01")):
        return money(value)
    return number(d)


def _marginal(calc: Mapping[str, Any], metric: str, lang: str, label: Label,
              kind: str | None) -> str:
    """Marginal tiers: each slice of the base at its own tier's rate, then the total."""
    base = label(calc["base"])
    slices = []
    for i, s in enumerate(calc.get("slices") or []):
        of = (f"{base} " if i == 0 else "") + exact_money(s["base"])
        slices.append(f"{of}（{band(s, lang, kind)}）× {pct(s['rate'])} = "
                      f"{exact_money(s['amount'])}" if lang == "zh" else
                      f"{pct(s['rate'])} of {of} ({band(s, lang, kind)}) = "
                      f"{exact_money(s['amount'])}")
    amount = money(calc["amount"])
    if lang == "zh":
        return (f"{metric}：达到第 {calc['tier']} 档（{band(calc, lang, kind)}），分段计提："
                + "；".join(slices) + f"；合计 {amount}")
    return (f"{metric}: tier {calc['tier']} ({band(calc, lang, kind)}) reached, paid slice by "
            f"slice: " + "; ".join(slices) + f"; total {amount}")


def explain(kind: str, exp: Mapping[str, Any], lang: str = "en",
            label: Label = _plain_label, types: Mapping[str, str] | None = None) -> list[str]:
    """The explanation of one outcome as sentences in the reader's language."""
    zh = lang == "zh"
    types = types or {}
    if kind == "warning" and exp.get("missing"):
        who, rule = exp.get("employee", ""), exp.get("rule_key", "")
        name = label(exp["missing"])
        if zh:
            return [f"员工 {who}，规则 {rule}：{name} 未定义，该规则无法给出结果"]
        return [f"employee {who}, rule {rule}: {name} is undefined, so the rule cannot give "
                "its outcome"]
    moved = _moved_words(exp, lang, label, types)
    if moved is not None:
        return moved
    if "checks" not in exp and "calc" not in exp:
        return _stored_words(exp)
    words: list[str] = []
    checks = [check(c, lang, label, types) for c in exp.get("checks") or []]
    calc = exp.get("calc")
    if calc and calc.get("type") == "tiers":
        words.append(calculation(calc, lang, label, types))
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
            words.append(calculation(calc, lang, label, types))
    if exp.get("pip"):
        pip = exp["pip"]
        start, end = day(pip["start"], lang), day(pip["end"], lang)
        words.append(f"改进计划自 {start} 至 {end}（{pip['months']} 个月），"
                     f"目标：{pip_target(pip['target'], lang, label)}" if zh else
                     f"PIP from {start} to {end} ({pip['months']} months), "
                     f"target: {pip['target']}")
    if exp.get("held_by"):
        rules = ", ".join(exp["held_by"])
        words.append(f"因 {rules} 暂扣，待合规审核" if zh
                     else f"held by {rules} until compliance review")
    return words


# The lines a run adds besides its rules' own, by rule key: (English name, Chinese name).
MOVED_NAMES = {"clawback": ("Clawback", "提成追回"),
               "collected_release": ("Paid once collected", "回款后发放"),
               "released_hold": ("Released hold", "解除的暂扣")}
# Every line of a statement that no rule names: those a run adds and an analyst's
# adjustment (engine.plain.rule_names).
LINE_NAMES = {**MOVED_NAMES, "adjustment": ("Manual adjustment", "人工调整")}


def _moved_words(exp: Mapping[str, Any], lang: str, label: Label,
                 types: Mapping[str, str]) -> list[str] | None:
    """A clawback, a part paid once the cash is collected, or a hold released after the
    lock, in the reader's language: the collection ratio's test and what was moved. None
    for any other line."""
    from engine import clawbacks

    zh = lang == "zh"
    because = "因为 " if zh else "because "
    if exp.get("clawback") or exp.get("collected"):
        part = exp.get("clawback") or exp["collected"]
        test = {"fact": clawbacks.METRIC, "actual": part.get("ratio")}
        test.update({"op": "<", "value": part.get("below")} if exp.get("clawback")
                    else {"op": ">=", "value": part.get("release_at")})
        said = clawbacks.words(part, lang) if exp.get("clawback") \
            else clawbacks.release_words(part, lang)
        return [because + check(test, lang, label, types), said]
    if exp.get("released") and zh:
        rel = exp["released"]
        flags = "、".join(str(i) for i in rel.get("flags") or [])
        amount = (exp.get("facts") or {}).get("amount")
        return [f"因为 暂扣它的标记（{flags}）均在计算批次 {rel.get('run_id')} 锁定后被驳回",
                f"发放计算批次 {rel.get('run_id')}（{rel.get('period')}）中暂扣的 {money(amount)}"]
    return None


def moved_value(rule_key: str, exp: Mapping[str, Any], value: str | None,
                lang: str = "en") -> str | None:
    """The value of a line MOVED_NAMES names (the payment it moves) in the reader's
    language; any other line's value as stored."""
    part = exp.get("clawback") or exp.get("collected") or exp.get("released")
    if rule_key not in MOVED_NAMES or not part or lang != "zh":
        return value
    flags = "、".join(str(i) for i in part.get("flags") or [])
    return (f"{part.get('rule_key')}，{part.get('period')}（计算批次 {part.get('run_id')}"
            + (f"，标记 {flags}" if flags else "") + "）")


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


# --- PIP targets ------------------------------------------------------------------------------

# A PIP's target as a rule states it: "monthly attainment >= 0.80".
PIP_TARGET = re.compile(r"^\s*monthly\s+([a-z_][a-z0-9_]*)\s*(>=|>|<=|<)\s*([0-9.]+)\s*$")


def pip_target(text: str, lang: str = "en", label: Label = _plain_label,
               types: Mapping[str, str] | None = None) -> str:
    """A PIP's target in words: "monthly Attainment ≥ 80%", "每月指标达成率 ≥ 80%"."""
    m = PIP_TARGET.match(text or "")
    if not m:
        return text
    types = types or {"attainment": "ratio"}
    value = shown(m[3], types.get(m[1]))
    if lang == "zh":
        return f"每月{label(m[1])} {OPS[m[2]]} {value}"
    return f"monthly {label(m[1])} {OPS[m[2]]} {value}"


# --- a rule in words: its page's lines and its summary ----------------------------------------

_LINES_ZH = {
    "Key": "键", "Name": "英文名称", "Name (Chinese)": "中文名称", "Description": "英文说明",
    "Description (Chinese)": "中文说明", "Kind": "类型", "Period kind": "周期",
    "Scope: Team stage": "范围：团队阶段", "Scope: Level": "范围：职级",
    "Scope: Region": "范围：区域", "When": "条件", "Amount or value": "金额或值",
    "Amount": "金额", "Rate": "比例", "Of metric": "计算基数", "Per unit of": "每单位",
    "Tier metric": "分档指标", "Value": "值", "PIP months": "改进计划月数",
    "PIP target": "改进计划目标", "Holds payouts": "暂扣奖金", "Effective from": "生效日期",
    "Effective to": "失效日期", "Tier": "第 {n} 档", "Row": "第 {n} 行",
    "Tier mode": "分档方式", "Floor per period": "每期保底", "Cap per period": "每期上限",
    "Annual cap per employee": "每人年度上限", "Prorated": "按在职天数折算",
    "Draw periods": "保底期数", "Recoverable": "可收回", "Clawback": "提成追回",
    "Paid on signing": "签约时发放",
}
_MODES = {"retroactive": ("retroactive: the rate reached applies to the whole base",
                          "追溯：所达档位的比例适用于全部基数"),
          "marginal": ("marginal: each slice of the base at its own tier's rate",
                       "分段：每一段基数按其所在档位的比例")}
_ACTIONS = {"fixed": ("a fixed amount", "固定金额"), "rate": ("a rate of a metric", "指标的比例"),
            "per_unit": ("an amount per unit", "按单位计的金额"),
            "tiers": ("a tier table", "分档表"), "value": ("a value", "一个值"),
            "table": ("a decision table", "决策表"), "pip": ("a PIP", "绩效改进计划"),
            "draw": ("a draw against commissions", "提成预支保底")}


@dataclass(frozen=True)
class Reader:
    """How a reader reads a rule: the language, the facts' names and types, the currency."""

    lang: str = "en"
    labels: Mapping[str, str] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    currency: str = "CNY"

    @property
    def zh(self) -> bool:
        return self.lang == "zh"

    def label(self, fact: str) -> str:
        return self.labels.get(fact, fact)

    def value(self, fact: str, value: Any) -> str:
        if isinstance(value, list):
            return ("、" if self.zh else ", ").join(self.value(fact, v) for v in value)
        if _dec(value) is None:
            return term(value, self.lang) if self.zh else str(value)
        return shown(value, self.types.get(fact))

    def line(self, name: str, n: int | None = None) -> str:
        if n is not None:
            return _LINES_ZH[name].format(n=n) if self.zh else f"{name} {n}"
        return _LINES_ZH.get(name, name) if self.zh else name


def condition(cond: Mapping[str, Any] | None, r: Reader) -> str:
    """A condition tree in words: "Attainment ≥ 120% and Evaluation score ≥ 80"."""
    zh = r.zh
    if not cond:
        return "总是" if zh else "always"
    if isinstance(cond, list):
        cond = {"all": cond}
    if "all" in cond:
        parts = [condition(c, r) for c in cond["all"]]
        joined = ("且" if zh else " and ").join(
            f"({p})" if (" or " in p or "或" in p) else p for p in parts)
        return joined or ("总是" if zh else "always")
    if "any" in cond:
        return ("或" if zh else " or ").join(condition(c, r) for c in cond["any"]) or (
            "从不" if zh else "never")
    if "not" in cond:
        inner = condition(cond["not"], r)
        return f"并非（{inner}）" if zh else f"not ({inner})"
    op, fact = cond["op"], cond["fact"]
    name = r.label(fact)
    if op == "defined":
        return f"{name}已定义" if zh else f"{name} is defined"
    if op == "undefined":
        return f"{name}未定义" if zh else f"{name} is undefined"
    if op == "highest":
        return f"{name}为全公司最高" if zh else f"{name} is the highest in the company"
    if op == "top_share":
        share = pct(cond["value"])
        return (f"{name}严格高于本人的员工少于 {share}" if zh else
                f"fewer than {share} of the employees have a higher {name}")
    if op in ("in", "not_in"):
        values = r.value(fact, cond["value"])
        if zh:
            return f"{name}{'属于' if op == 'in' else '不属于'} {values}"
        return f"{name} is {'one' if op == 'in' else 'none'} of {values}"
    other = r.label(cond["ref"]) if "ref" in cond else r.value(fact, cond["value"])
    return f"{name} {OPS.get(op, op)} {other}"


def tier_band(tier: Mapping[str, Any], metric: str, r: Reader) -> str:
    return band(tier, r.lang, r.types.get(metric))


def rule_lines(d: Mapping[str, Any], r: Reader) -> list[tuple[str, str]]:
    """A definition as (field, words) lines in the editor's order, for the rule's page
    and for comparing versions: no JSON, ratios as percentages."""
    zh = r.zh
    L = r.line  # noqa: N806 - the field's name in the reader's language
    out = [(L("Key"), d.get("key", "")), (L("Name"), d.get("name", "")),
           (L("Name (Chinese)"), d.get("name_zh") or ""),
           (L("Description"), d.get("description") or ""),
           (L("Description (Chinese)"), d.get("description_zh") or ""),
           (L("Kind"), term(d.get("kind", ""), r.lang)),
           (L("Period kind"), term(d.get("period_kind", ""), r.lang))]
    scope = d.get("scope") or {}
    for f, name in (("team_stage", "Scope: Team stage"), ("level", "Scope: Level"),
                    ("region", "Scope: Region")):
        values = scope.get(f)
        out.append((L(name), r.value(f, values) if values else ("全部" if zh else "all")))
    out.append((L("When"), condition(d.get("when"), r)))
    action = d.get("action") or {}
    atype = action.get("type", "")
    out.append((L("Amount or value"), _ACTIONS.get(atype, (atype, atype))[1 if zh else 0]))
    if "amount" in action:
        out.append((L("Amount"), f"{money(action['amount'])} {r.currency}"))
    if "rate" in action:
        out.append((L("Rate"), pct(action["rate"])))
    for k, name in (("base", "Of metric"), ("per", "Per unit of"), ("metric", "Tier metric")):
        if k in action:
            out.append((L(name), r.label(action[k])))
    if "value" in action:
        out.append((L("Value"), str(action["value"])))
    if "months" in action:
        out.append((L("PIP months"), str(action["months"])))
    if atype == "draw":
        out.append((L("Draw periods"), str(action["periods"])))
        share = pct(action.get("recovery_share") or 0)
        out.append((L("Recoverable"), (f"是：以后各期提成的 {share} 用于收回" if zh else
                                       f"yes: {share} of later commissions recovers it")
                    if action.get("recoverable") else ("否" if zh else "no")))
    if "target" in action:
        out.append((L("PIP target"), pip_target(action["target"], r.lang, r.label, r.types)))
    if atype in ("fixed", "rate", "per_unit", "tiers"):
        for k, name in (("floor", "Floor per period"), ("cap", "Cap per period"),
                        ("annual_cap", "Annual cap per employee")):
            out.append((L(name), f"{money(action[k])} {r.currency}" if action.get(k)
                        is not None else ("无" if zh else "none")))
        out.append((L("Clawback"), clawback_said(action.get("clawback"), zh)))
        out.append((L("Paid on signing"), signing_said(action.get("on_signing"), zh)))
        out.append((L("Prorated"), ("是：按本期在职天数占比发放" if zh else
                                    "yes: the share of the period the employee was employed")
                    if action.get("prorate") else ("否" if zh else "no")))
    if atype == "tiers":
        out.append((L("Tier mode"), _MODES[action.get("mode") or "retroactive"][1 if zh else 0]))
    for i, tier in enumerate(action.get("tiers") or [], start=1):
        words = tier_band(tier, action.get("metric", ""), r)
        out.append((L("Tier", i), f"{words}：{pct(tier.get('rate'))}" if zh
                    else f"{words}: {pct(tier.get('rate'))}"))
    for i, row in enumerate(action.get("rows") or [], start=1):
        when = condition(row.get("when"), r)
        out.append((L("Row", i), f"{row.get('value')}：{when}" if zh
                    else f"{row.get('value')} when {when}"))
    out.append((L("Holds payouts"), ("是" if zh else "yes") if d.get("hold")
                else ("否" if zh else "no")))
    out.append((L("Effective from"), str(d.get("effective_from") or "")
                or ("一直" if zh else "always")))
    out.append((L("Effective to"), str(d.get("effective_to") or "")
                or ("长期" if zh else "open-ended")))
    return out


_EACH = {"month": ("Each month", "每月"), "quarter": ("Each quarter", "每季度"),
         "year": ("Each year", "每年")}


def summary(d: Mapping[str, Any], r: Reader) -> str:
    """The rule in one paragraph, generated from its data, in the reader's language."""
    zh = r.zh
    action = d.get("action") or {}
    atype, kind = action.get("type"), d.get("kind", "")
    each = _EACH.get(d.get("period_kind", ""), (d.get("period_kind", ""),) * 2)[1 if zh else 0]
    when = d.get("when")
    scope = d.get("scope") or {}
    scoped = [f"{r.label(f)} {r.value(f, v)}" if not zh else f"{r.label(f)}为{r.value(f, v)}"
              for f, v in scope.items() if v]
    if atype == "tiers":
        metric, base = action["metric"], r.label(action["base"])
        bands = []
        for i, tier in enumerate(action["tiers"]):
            lo, hi, rate = tier.get("from"), tier.get("to"), pct(tier["rate"])
            of = f" of {base}" if i == 0 else ""
            m, lo_, hi_ = r.label(metric), r.value(metric, lo), r.value(metric, hi)
            if lo is None and hi is None:
                bands.append(rate if zh else f"{rate}{of}")
            elif lo is None:
                bands.append(f"{m}低于 {hi_} 为 {rate}" if zh
                             else f"{rate}{of} where {m} is below {hi_}")
            elif hi is None:
                bands.append(f"{lo_} 及以上为 {rate}" if zh else f"{rate}{of} from {lo_}")
            else:
                bands.append(f"{lo_} 至低于 {hi_} 为 {rate}" if zh
                             else f"{rate}{of} from {lo_} to below {hi_}")
        marginal = action.get("mode") == "marginal"
        if zh:
            what = f"按{base}计提，比例随{r.label(metric)}分档：" + "；".join(bands) + (
                f"；{base}分段计提，每一段按其所在档位的比例" if marginal
                else f"；所达档位的比例适用于全部{base}")
        else:
            what = ", ".join(bands) + (
                f"; each slice of the {base} is paid at its own tier's rate (marginal tiers)"
                if marginal else f"; the rate reached applies to all of the {base}")
    elif atype == "rate":
        what = (f"按{r.label(action['base'])}的 {pct(action['rate'])} 计" if zh
                else f"{pct(action['rate'])} of {r.label(action['base'])}")
    elif atype == "per_unit":
        what = (f"每单位{r.label(action['per'])} {money(action['amount'])} {r.currency}" if zh
                else f"{money(action['amount'])} {r.currency} per unit of "
                f"{r.label(action['per'])}")
    elif atype == "fixed":
        what = f"{money(action['amount'])} {r.currency}"
        if action.get("value"):
            what += f"（{action['value']}）" if zh else f" ({action['value']})"
        what = (f"{term(kind, 'zh')} " if zh else f"a {kind} of ") + what
    elif atype == "value":
        what = (f"{term(kind, 'zh')}“{term(action['value'], 'zh')}”" if zh
                else f"the {term(kind)} \u201c{action['value']}\u201d")
    elif atype == "table":
        rows = [(f"{row['value']}：{condition(row.get('when'), r)}" if zh else
                 f"{row['value']} when {condition(row.get('when'), r)}")
                for row in action.get("rows") or []]
        what = ("按第一个满足的行给出" + term(kind, "zh") + "：" + "；".join(rows) if zh
                else f"the {term(kind)} of the first row that matches: " + "; ".join(rows))
    elif atype == "draw":
        said = f"{money(action['amount'])} {r.currency}"
        start = d.get("effective_from") or ""
        what = (f"自 {start} 起 {action['periods']} 期内每期提成至少 {said}，不足部分预支补足"
                if zh else f"commissions of at least {said} a period for {action['periods']} "
                f"periods from {start}, the shortfall paid as a draw")
        if action.get("recoverable"):
            share = pct(action["recovery_share"])
            what += (f"；预支额可收回：以后各期提成（保底期内为超出保底的部分）的 {share} 用于收回"
                     if zh else f"; recoverable: {share} of later commissions (during the "
                     "draw, of what is earned above it) recovers what was drawn")
    elif atype == "pip":
        target = pip_target(action.get("target", ""), r.lang, r.label, r.types)
        what = (f"自下一周期首日起为期 {action['months']} 个月的绩效改进计划，目标：{target}" if zh
                else f"a PIP of {action['months']} months from the first day of the next "
                f"period, target: {target}")
    else:
        what = str(atype)
    if action.get("prorate"):
        what += "；按本期在职天数折算" if zh else "; prorated by the days employed in the period"
    if action.get("clawback"):
        what += ("；" if zh else "; ") + clawback_said(action["clawback"], zh)
    if action.get("on_signing"):
        what += ("；" if zh else "; ") + signing_said(action["on_signing"], zh)
    for k, en, cn in (("floor", "at least {} a period", "每期至少 {}"),
                      ("cap", "at most {} a period", "每期至多 {}"),
                      ("annual_cap", "at most {} per employee a year", "每人每年至多 {}")):
        if action.get(k) is not None:
            said = f"{money(action[k])} {r.currency}"
            what += f"；{cn.format(said)}" if zh else f"; {en.format(said)}"
    text = f"{each}：{what}" if zh else f"{each}: {what}"
    if when:
        text += f"；条件：{condition(when, r)}" if zh else f"; when {condition(when, r)}"
    if scoped:
        text += ("；仅限" + "，".join(scoped)) if zh else "; only for " + ", ".join(scoped)
    if d.get("hold"):
        text += "；暂扣该员工本计算批次的提成和奖金" if zh else \
            "; holds the employee's commissions and bonuses of the run"
    if d.get("effective_from") or d.get("effective_to"):
        span = f"{d.get('effective_from') or '…'} – {d.get('effective_to') or '…'}"
        text += f"；有效期 {span}" if zh else f"; in force {span}"
    return text + ("。" if zh else ".")
