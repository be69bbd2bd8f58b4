"""Statements in the words of the person being paid.

engine.wording says an outcome as an analyst checks it: every fact and bound exact, the
population counters as they are. This module says the same outcome as the salesperson
reads it, in English or Chinese: the rule's name in the reader's language, a ratio as a
percentage, an amount with its currency and no more decimals than matter, the tier
reached and how far the next one is ("CN¥12,000 more Total revenue this month reaches the
6% tier"), a population rule as the reader's rank and the cut-off, a held or forfeited
line with the flag behind it. A measured value is cut, never rounded, to what it shows
(an attainment of 79.99% reads 79.9%, never 80% next to the tier it missed); a rule's own
numbers (rates, thresholds) show exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency, format_decimal, format_percent
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import wording
from engine.metrics import ratio_parts
from engine.models import Rule, Run

_THIS = {"month": ("this month", "本月"), "quarter": ("this quarter", "本季度"),
         "year": ("this year", "本年度")}


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


@dataclass(frozen=True)
class Voice(wording.Reader):
    """A reader (language, labels, types, currency) as the payee reads numbers."""

    @property
    def locale(self) -> str:
        return wording.LOCALES.get(self.lang, "en")

    def money(self, value: Any, currency: str | None = None) -> str:
        """An amount with its currency: whole amounts without decimals, else two."""
        d = _dec(value)
        if d is None:
            return str(value)
        cur = currency or self.currency
        if d == d.to_integral_value():
            return format_currency(d, cur, format="¤#,##0", locale=self.locale,
                                   currency_digits=False)
        return format_currency(d, cur, locale=self.locale)

    def percent(self, value: Any, measured: bool = True) -> str:
        """A fraction as a percentage: a measured one cut to 0.1%, a rule's exact."""
        d = _dec(value)
        if d is None:
            return str(value)
        if measured:
            d = d.quantize(Decimal("0.001"), rounding=ROUND_DOWN)
            return format_percent(d, "#,##0.#%", locale=self.locale)
        return format_percent(d, "#,##0.######%", locale=self.locale)

    def number(self, value: Any, measured: bool = True) -> str:
        """A number: a measured one cut to two decimals (87.33), a rule's exact."""
        d = _dec(value)
        if d is None:
            return str(value)
        if measured:
            d = d.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
            return format_decimal(d, "#,##0.##", locale=self.locale)
        return format_decimal(d, "#,##0.############", locale=self.locale)

    def value(self, fact: str, value: Any, measured: bool = True) -> str:
        """A fact's value by its type; a text value (a stage) in the reader's words."""
        if isinstance(value, list):
            return ("、" if self.zh else ", ").join(self.value(fact, v, measured)
                                                   for v in value)
        if _dec(value) is None:
            if value is None:
                return "未定义" if self.zh else "undefined"
            return wording.term(value, self.lang) if self.zh else str(value)
        kind = self.types.get(fact)
        if kind == "ratio":
            return self.percent(value, measured)
        if kind == "money":
            return self.money(value)
        return self.number(value, measured)


def voice(session: Session, lang: str = "en") -> Voice:
    """The reader's voice: the catalog's labels in their language (engine.statements)."""
    from engine.statements import reader

    r = reader(session, lang)
    return Voice(r.lang, r.labels, r.types, r.currency)


def definitions(session: Session, used_rules: list[Any] | None,
                keys: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """The definitions of the rule versions a run used (``Run.rules``, of one run or of
    several: the highest version used), by key, in one query; a key of ``keys`` that no
    run used, its latest published version's, else its latest retired, else its latest
    (a retired or discarded rule keeps its name)."""
    used: dict[str, set[Any]] = {}
    for x in used_rules or []:
        if isinstance(x, dict) and x.get("key"):
            used.setdefault(x["key"], set()).add(x.get("version"))
    wanted = set(used) | {k for k in keys if k}
    out: dict[str, dict[str, Any]] = {}
    best: dict[str, tuple[bool, bool, bool, int]] = {}
    if not wanted:
        return out
    for key, version, status, definition in session.execute(
            select(Rule.key, Rule.version, Rule.status, Rule.definition)
            .where(Rule.key.in_(wanted))):
        rank = (version in used.get(key, ()), status == "published", status == "retired",
                version)
        if key in used and not rank[0]:
            continue
        if key not in best or rank > best[key]:
            best[key], out[key] = rank, definition or {}
    return out


def name_of(definition: Mapping[str, Any] | None, zh: bool, fallback: str = "") -> str:
    """A rule's name in the reader's language, from its definition (the English one where
    it has no Chinese one; ``fallback`` where it has none)."""
    d = definition or {}
    return (zh and d.get("name_zh")) or d.get("name") or fallback


def rule_name(key: str, definitions: Mapping[str, Mapping[str, Any]], v: wording.Reader,
              fallback: str = "") -> str:
    """A rule key's name in the reader's language: a rule's from its definition, a line
    that no rule names (a clawback, an adjustment: wording.LINE_NAMES) by its words, any
    other key as itself."""
    if key not in definitions and key in wording.LINE_NAMES:
        return wording.LINE_NAMES[key][v.zh]
    return name_of(definitions.get(key), v.zh, fallback or key)


def rule_names(session: Session, keys: Iterable[str], lang: str = "en",
               used_rules: list[Any] | None = None,
               run_ids: Iterable[int] = ()) -> dict[str, str]:
    """Rule keys as a reader reads them, in ``lang``, by key, in one or two queries
    whatever their number: each rule's name from the version a run used (``used_rules``:
    a run's ``Run.rules``; ``run_ids``: runs whose rules are read here), else from its
    latest version (definitions); the lines no rule names by their words (rule_name)."""
    keys = {k for k in keys if k}
    used = list(used_rules or [])
    run_ids = set(run_ids)
    if keys and run_ids:
        for rules in session.scalars(select(Run.rules).where(Run.id.in_(run_ids))):
            used.extend(rules or [])
    defs = definitions(session, used, keys) if keys else {}
    v = wording.Reader(lang)
    return {k: rule_name(k, defs, v) for k in keys}


# --- one check -------------------------------------------------------------------------------


def check(c: Mapping[str, Any], v: Voice) -> str | None:
    """One condition that held, as the payee reads it; None where it says nothing to them
    (a fact being defined)."""
    op = c.get("op")
    if c.get("negated"):
        inner = c.get("text", "") if op == "not" else check(
            {k: x for k, x in c.items() if k != "negated"}, v)
        if not inner:
            return None
        return f"并非：{inner}" if v.zh else f"not: {inner}"
    fact = c["fact"]
    name = v.label(fact)
    actual = v.value(fact, c.get("actual"))
    if op in ("defined", "undefined"):
        return None
    if op == "highest":
        n = _dec(c.get("n"))
        of = f"（{v.number(n)} 人中第 1 名）" if v.zh else f" (rank 1 of {v.number(n)})"
        return (f"{name} {actual} 为全公司最高{of if n is not None else ''}" if v.zh
                else f"{name} {actual} is the highest in the company"
                f"{of if n is not None else ''}")
    if op == "top_share":
        return _rank(c, name, actual, v)
    if op in ("in", "not_in"):
        values = v.value(fact, c.get("value") or [])
        if v.zh:
            return f"{name}为{actual}" if op == "in" else f"{name}为{actual}（不属于 {values}）"
        return f"{name} is {actual}" if op == "in" else f"{name} is {actual}, none of {values}"
    if "ref" in c:
        other = f"{v.label(c['ref'])} {v.value(c['ref'], c.get('ref_actual'))}"
    else:
        other = v.value(fact, c.get("value"), measured=False)
        if op == "==":  # "rating of this period is D", not "D = D"
            return f"{name}为{other}" if v.zh else f"{name} is {other}"
    return f"{name} {actual} {wording.OPS.get(op, op)} {other}"


def cut_off(share: Decimal, n: Decimal) -> int:
    """The last rank within a top share of n: fewer than share x n strictly above."""
    return max(0, math.ceil(share * n))


def _rank(c: Mapping[str, Any], name: str, actual: str, v: Voice) -> str:
    higher, n, share = _dec(c.get("higher")), _dec(c.get("n")), _dec(c.get("value"))
    if higher is None or n is None or share is None:
        return f"{name} {actual}"
    rank, last = int(higher) + 1, cut_off(share, n)
    top = v.percent(share, measured=False)
    if v.zh:
        return (f"{name} {actual}：{v.number(n)} 人中排名第 {rank}；前 {top} 为第 1 至 "
                f"{last} 名")
    return f"{name} {actual}: rank {rank} of {v.number(n)}; the top {top} are ranks 1 to {last}"


# --- the arithmetic ----------------------------------------------------------------------------


def next_tier(calc: Mapping[str, Any], definition: Mapping[str, Any], catalog_formula: str | None,
              facts: Mapping[str, Any], v: Voice, period_kind: str) -> str:
    """How far the next tier is, or that this is the top one."""
    tiers = ((definition.get("action") or {}).get("tiers") or [])
    index = int(calc.get("tier") or 0)
    if not tiers or index >= len(tiers):
        return "已是最高档。" if v.zh else "This is the top tier."
    nxt = tiers[index]
    start, value = _dec(nxt.get("from")), _dec(calc.get("metric_value"))
    rate = v.percent(nxt.get("rate"), measured=False)
    if start is None or value is None:
        return ""
    this = _THIS.get(period_kind, ("", ""))[1 if v.zh else 0]
    metric = calc["metric"]
    parts = ratio_parts(catalog_formula)
    if parts is not None and value > 0:
        numerator, denominator = parts
        base = _dec(facts.get(numerator))
        if base is None and numerator == calc.get("base"):
            base = _dec(calc.get("base_value"))
        den = _dec(facts.get(denominator))
        if base is not None:
            if den is None:
                den = base / value  # the metric is numerator / denominator
            more = (start * den - base).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
            if more > 0:
                amount = v.value(numerator, more)
                if v.zh:
                    return f"{this}{v.label(numerator)}再增加 {amount} 即可达到 {rate} 档。"
                return f"{amount} more {v.label(numerator)} {this} reaches the {rate} tier."
    gap = start - value
    if gap <= 0:
        return ""
    shown = (v.percent(gap, measured=False) if v.types.get(metric) == "ratio"
             else v.value(metric, gap, measured=False))
    if v.zh:
        return f"{v.label(metric)}再提高 {shown} 即可达到 {rate} 档。"
    return f"{shown} more {v.label(metric)} reaches the {rate} tier."


def arithmetic(calc: Mapping[str, Any], kind: str, v: Voice) -> str:
    """The amount's arithmetic in the payee's words."""
    t, amount = calc["type"], v.money(calc.get("amount"))
    if t == "draw":
        return _draw_said(calc, v)
    if t == "fixed":
        return (f"固定{wording.term(kind, 'zh')} {amount}" if v.zh
                else f"A fixed {wording.term(kind)} of {amount}")
    if t == "per_unit":
        per = f"{v.label(calc['per'])} {v.value(calc['per'], calc.get('per_value'))}"
        return f"{per} × {v.money(calc.get('unit'))} = {amount}"
    rate = v.percent(calc.get("rate"), measured=False)
    base = f"{v.label(calc['base'])} {v.money(calc.get('base_value'))}"
    words = f"{base} × {rate} = {amount}" if v.zh else f"{rate} of {base} = {amount}"
    if calc.get("mode") == "marginal":
        words = _slices(calc, amount, v)
    if t == "tiers":
        metric = calc["metric"]
        band = wording.band(calc, v.lang, v.types.get(metric))
        reached = v.value(metric, calc.get("metric_value"))
        words += (f"：{v.label(metric)}为 {reached}，处于第 {calc.get('tier')} 档（{band}）"
                  if v.zh else
                  f": {v.label(metric)} {reached} is in tier {calc.get('tier')} ({band})")
    return words


def _draw_said(calc: Mapping[str, Any], v: Voice) -> str:
    """A draw as the payee reads it: the guarantee, the top-up or the part recovered, and
    what is still owed."""
    zh, n = v.zh, calc.get("period")
    guarantee, earned = v.money(calc["guarantee"]), v.money(calc["earned"])
    if "shortfall" in calc:
        said = (f"保底第 {n}/{calc['periods']} 期：提成 {earned} 低于保底 {guarantee}，预支补足 "
                f"{v.money(calc['shortfall'])}" if zh else
                f"Draw period {n} of {calc['periods']}: your commissions of {earned} are below "
                f"the {guarantee} guaranteed, so {v.money(calc['shortfall'])} is paid as a "
                "draw")
    elif "recovered" in calc:
        said = (f"从提成中收回此前预支 {v.money(calc['recovered'])}" if zh else
                f"{v.money(calc['recovered'])} of your earlier draw is recovered from your "
                "commissions")
    else:
        said = (f"提成 {earned}，达到保底 {guarantee}" if zh else
                f"Your commissions of {earned} meet the {guarantee} guaranteed")
    if calc.get("recoverable"):
        owed = v.money(calc["balance_after"])
        said += f"；尚待收回 {owed}" if zh else f"; still owed: {owed}"
    return said


def _slices(calc: Mapping[str, Any], amount: str, v: Voice) -> str:
    """Marginal tiers slice by slice: "3% of CN¥80,000 (below 80%) = CN¥2,400; ...; in
    all CN¥3,450"."""
    kind = v.types.get(calc["metric"])
    parts = []
    for i, s in enumerate(calc.get("slices") or []):
        d = _dec(s.get("amount"))
        paid = v.money(d) if d is not None and d == d.quantize(Decimal("0.01")) \
            else v.number(d, measured=False)
        of = (f"{v.label(calc['base'])} " if i == 0 else "") + v.money(s.get("base"))
        rate = v.percent(s.get("rate"), measured=False)
        band = wording.band(s, v.lang, kind)
        parts.append(f"{of}（{band}）× {rate} = {paid}" if v.zh
                     else f"{rate} of {of} ({band}) = {paid}")
    if v.zh:
        return "分段计提：" + "；".join(parts) + f"；合计 {amount}"
    return "; ".join(parts) + f"; in all {amount}"


def signing_said(calc: Mapping[str, Any], v: Voice) -> list[str]:
    """The part paid on signing and the part waiting for the cash, as the payee reads it."""
    s = calc.get("on_signing")
    if not s:
        return []
    at = v.percent(s["release_at"], measured=False)
    return [f"签约时发放 {v.money(s['paid'])}，其余 {v.money(s['held'])} 在回款率达到 {at} 后发放"
            if v.zh else f"{v.money(s['paid'])} paid on signing; the other "
            f"{v.money(s['held'])} is paid once your collection ratio reaches {at}"]


def prorated_said(calc: Mapping[str, Any], v: Voice) -> list[str]:
    """The share paid for the days employed in the period, as the payee reads it."""
    p = calc.get("prorated")
    if not p:
        return []
    paid = v.money(p["amount"])
    return [f"本期在职 {p['active_days']} 天（共 {p['period_days']} 天），按比例发放 {paid}"
            if v.zh else f"Employed {p['active_days']} of the {p['period_days']} days of the "
            f"period: {paid} paid for them"]


_A_PERIOD = {"month": ("a month", "每月"), "quarter": ("a quarter", "每季度"),
             "year": ("a year", "每年")}


def limits_said(calc: Mapping[str, Any], v: Voice, period_kind: str) -> list[str]:
    """Each floor or cap that changed the amount, and by how much, as the payee reads it;
    an annual cap not reached, with what was paid earlier in the year."""
    zh = v.zh
    each = _A_PERIOD.get(period_kind, ("a period", "每期"))[1 if zh else 0]
    out = []
    for lim in calc.get("limits") or []:
        d = _dec(lim["change"]) or Decimal(0)
        value, by = v.money(lim["value"]), v.money(abs(d))
        more = ("多发" if d > 0 else "少发") if zh else ("more" if d > 0 else "less")
        if lim["limit"] == "floor":
            out.append(f"按{each}保底 {value} 提高，{more} {by}" if zh
                       else f"Raised to the minimum of {value} {each}: {by} {more}")
        elif lim["limit"] == "cap":
            out.append(f"按{each}上限 {value} 封顶，{more} {by}" if zh
                       else f"Capped at {value} {each}: {by} {more}")
        else:
            paid = v.money(lim.get("paid_earlier"))
            out.append(f"按年度上限 {value} 封顶（本年此前已发 {paid}），{more} {by}" if zh
                       else f"Capped by the yearly limit of {value} ({paid} paid earlier "
                       f"this year): {by} {more}")
    annual = calc.get("annual_cap")
    if annual and not any(x["limit"] == "annual_cap" for x in calc.get("limits") or []):
        value, paid = v.money(annual["value"]), v.money(annual["paid_earlier"])
        out.append(f"未超过年度上限 {value}（本年此前已发 {paid}）" if zh
                   else f"Within the yearly limit of {value} ({paid} paid earlier this year)")
    return out


# --- one line --------------------------------------------------------------------------------


def line_words(kind: str, exp: Mapping[str, Any], status: str | None, value: str | None,
               v: Voice, definitions: Mapping[str, Mapping[str, Any]],
               formulas: Mapping[str, str | None], period_kind: str,
               rule_key: str = "") -> list[str]:
    """One statement line in the payee's words: what it is, why, and what comes next."""
    zh = v.zh
    words: list[str] = []
    if kind == "adjustment":
        return [f"人工调整：{exp.get('reason', '')}" if zh
                else f"A manual adjustment: {exp.get('reason', '')}"]
    if exp.get("released"):
        rel = exp["released"]
        name = rule_name(rel.get("rule_key", ""), definitions, v)
        return [f"{rel.get('period')} 暂扣的{name}，合规审核解除后在此发放" if zh else
                f"{name} held in {rel.get('period')}, paid here after the compliance review "
                "released it"]
    if exp.get("collected"):
        c = exp["collected"]
        name = rule_name(c.get("rule_key", ""), definitions, v)
        return [f"{c.get('period')} 的{name}签约时暂缓的 {v.money(c.get('held'))}，回款率达到 "
                f"{v.percent(c.get('release_at'), measured=False)} 后在此发放" if zh else
                f"The {v.money(c.get('held'))} of the {name} for {c.get('period')} held until "
                f"the cash was collected, paid now: your collection ratio reached "
                f"{v.percent(c.get('release_at'), measured=False)}"]
    if exp.get("clawback"):
        c = exp["clawback"]
        name = rule_name(c.get("rule_key", ""), definitions, v)
        ratio, below = v.percent(c.get("ratio"), measured=False), v.percent(
            c.get("below"), measured=False)
        return [f"追回 {c.get('period')} 发放的{name} {v.money(c.get('paid'))} 中的 "
                f"{v.money(-Decimal(c['amount']))}：本期回款率 {ratio} 低于 {below}" if zh else
                f"{v.money(-Decimal(c['amount']))} of the {name} of {v.money(c.get('paid'))} "
                f"paid for {c.get('period')} is taken back: your collection ratio this period, "
                f"{ratio}, is below {below}"]
    if kind == "warning":
        missing = v.label(exp.get("missing", ""))
        name = rule_name(exp.get("rule_key") or rule_key, definitions, v)
        return [f"无法计算{name}：本期{missing}缺失" if zh
                else f"{name} could not be worked out: {missing} is missing for this period"]
    calc = exp.get("calc")
    checks = [c for c in (exp.get("checks") or []) if c.get("fact") != (calc or {}).get(
        "metric") or (calc or {}).get("type") != "tiers"]
    because = [w for w in (check(c, v) for c in checks) if w]
    if calc:
        words.append(arithmetic(calc, kind, v))
        words.extend(prorated_said(calc, v))
        words.extend(signing_said(calc, v))
        capped = any(x["limit"] != "floor" for x in calc.get("limits") or [])
        words.extend(limits_said(calc, v, period_kind))
        if calc.get("type") == "tiers" and not capped:  # more would not pay more
            definition = definitions.get(rule_key) or {}
            step = next_tier(calc, definition, formulas.get(calc["metric"]),
                             exp.get("facts") or {}, v, period_kind)
            if step:
                words.append(step)
    elif exp.get("pip"):
        pip = exp["pip"]
        target = wording.pip_target(pip.get("target", ""), v.lang, v.label, v.types)
        start, end = wording.day(pip["start"], v.lang), wording.day(pip["end"], v.lang)
        words.append(f"绩效改进计划：{start} 至 {end}，目标：{target}" if zh
                     else f"A performance improvement plan from {start} to {end}, "
                     f"target: {target}")
    elif value:
        words.append(f"{wording.term(kind, 'zh')}：{wording.term(value, 'zh')}" if zh
                     else f"{wording.term(kind).capitalize()}: {value}")
    if because:
        words.append(("因为" + "；".join(because)) if zh else "because " + "; ".join(because))
    held = exp.get("held_by") or []
    if held:
        names = ("、" if zh else ", ").join(rule_name(k, definitions, v) for k in held)
        if status == "held":
            words.append(f"暂扣，待合规审核（{names}）完成" if zh
                         else f"held until compliance has reviewed: {names}")
        elif status == "forfeited":
            words.append(f"不予发放：合规审核确认了{names}" if zh
                         else f"not paid: the compliance review confirmed {names}")
        elif status == "payable":
            words.append(f"合规审核驳回了{names}，可发放" if zh
                         else f"payable: the compliance review dismissed {names}")
    return words


def formulas_of(session: Session) -> dict[str, str | None]:
    """Each metric's formula (None for an imported one)."""
    from engine.models import Metric

    return dict(session.execute(select(Metric.key, Metric.formula)).all())


def statement(session: Session, run: Run, employee_code: str, lang: str = "en") -> Any:
    """engine.statements.statement, each line with its payee's words (``line.plain``)."""
    from engine import statements

    st = statements.statement(session, run, employee_code, lang)
    v = voice(session, lang)
    defs = definitions(session, run.rules)
    formulas = formulas_of(session)
    for line in st.lines:  # named as statements.statement names them (rule_names)
        line.plain = line_words(line.kind, line.explanation, line.status, line.value, v, defs,
                                formulas, run.period.kind, line.rule_key)
    return st
