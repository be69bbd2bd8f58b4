"""Languages of the back office and the formatting of amounts, percents and labels.

English and Simplified Chinese. The locale comes from the user's own setting (User.locale),
else the language switch (``?lang=zh``, kept in the session), else the browser. Chinese is
the babel locale ``zh_Hans_CN``: Flask-Admin ships its catalog under that name, and gettext
falls back from it to our own ``translations/zh``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import request, session
from flask_babel import (
    format_currency,
    format_date,
    format_datetime,
    format_decimal,
    format_percent,
    get_locale,
)
from flask_login import current_user

from engine import wording

LANGUAGES = {"en": "English", "zh": "中文"}
_BABEL_LOCALE = wording.LOCALES
DEFAULT_CURRENCY = "CNY"


def in_each_language(text: Any) -> dict[str, str]:
    """A catalog text (lazy) in each language, whatever the page's: for a form's field per
    language (a rule's English and Chinese names)."""
    from flask_babel import force_locale

    out = {}
    for code, locale in _BABEL_LOCALE.items():
        with force_locale(locale):
            out[code] = str(text)
    return out


def language_code(value: str | None) -> str | None:
    """Map a locale string (``zh``, ``zh-CN``, ``zh_Hans_CN``, ``en-GB``) to en or zh."""
    if not value:
        return None
    value = value.strip().lower().replace("-", "_")
    for code in LANGUAGES:
        if value == code or value.startswith(code + "_"):
            return code
    return None


def remember_switch() -> None:
    """Keep ``?lang=xx`` of this request in the session (the language switch)."""
    code = language_code(request.args.get("lang"))
    if code:
        session["lang"] = code


def switch_languages() -> dict[str, str]:
    """The languages a page offers to switch to: none where the user's own language
    setting wins over the switch (current_language), else every other one."""
    if current_user and current_user.is_authenticated and language_code(current_user.locale):
        return {}
    here = current_language()
    return {code: label for code, label in LANGUAGES.items() if code != here}


def current_language() -> str:
    """Return en or zh for this request."""
    user_code = None
    if current_user and current_user.is_authenticated:
        user_code = language_code(current_user.locale)
    if user_code:
        return user_code
    code = language_code(session.get("lang"))
    if code:
        return code
    for value, _quality in request.accept_languages:
        code = language_code(value)
        if code:
            return code
    return "en"


def select_locale() -> str:
    """Return the babel locale for Flask-Babel's locale selector."""
    return _BABEL_LOCALE[current_language()]


def is_chinese() -> bool:
    locale = get_locale()
    return locale is not None and locale.language == "zh"


def metric_label(metric: Any) -> str:
    """Return the metric's label in the current language (Chinese falls back to English)."""
    if metric is None:
        return ""
    if is_chinese() and metric.label_zh:
        return metric.label_zh
    return metric.label_en or metric.key


def money(amount: Decimal | None, currency: str | None = None) -> str:
    """Format an amount with its currency (CNY by default): CN¥1,234.50, ¥1,234.50."""
    if amount is None:
        return ""
    return format_currency(amount, currency or DEFAULT_CURRENCY)


def percent(fraction: Decimal | None) -> str:
    """Format a fraction as a percent: 0.05 -> 5%."""
    if fraction is None:
        return ""
    return format_percent(fraction, "#,##0.##%")


def metric_value(value: Decimal | None, metric_type: str | None) -> str:
    """Format a result value by its metric type: money, ratio (percent), count, score."""
    if value is None:
        return ""
    if metric_type == "money":
        return money(value)
    if metric_type == "ratio":
        return percent(value)
    if metric_type == "count":
        return format_decimal(value, "#,##0")
    return format_decimal(value, "#,##0.######")


def byte_size(size: int) -> str:
    """A number of bytes as a reader takes it in: in kB or MB (of 1,000), in the page's
    language's digits."""
    for unit, bytes_ in (("MB", 1_000_000), ("kB", 1_000)):
        if size >= bytes_:
            return f"{format_decimal(Decimal(size) / bytes_, '#,##0.#')} {unit}"
    return f"{format_decimal(size, '#,##0')} B"


def term(word: Any) -> str:
    """A code of the domain (kind, period kind, status, stage) in the page's language."""
    from engine.wording import term as say

    return say(word, current_language())


def outcome_value(kind: str, value: Any) -> str:
    """An outcome's value as its pages show it: a PIP's end as a day, a flag's or an
    alert's severity in the page's language (it read "high" on Chinese statements), any
    other (a rating, a program) as it is."""
    if value in (None, ""):
        return ""
    if kind == "pip":
        return day(value)
    if kind in ("flag", "alert"):
        return term(value)
    return str(value)


def rule_names(db: Any, keys: Any, used_rules: list[Any] | None = None,
               run_ids: Any = ()) -> dict[str, str]:
    """Rule keys by their names in the page's language (engine.plain.rule_names: the
    version a run used, the lines no rule names), in one query or two."""
    from engine import plain

    return plain.rule_names(db, keys, current_language(), used_rules, run_ids)


def pip_target(text: str) -> str:
    """A PIP's target ("monthly attainment >= 0.80") in the page's language, the metric by
    its catalog label and a ratio as a percentage."""
    from flask import current_app

    from engine.statements import reader
    from engine.wording import pip_target as words

    r = reader(current_app.extensions["laurel_db"], current_language())
    return words(text, r.lang, r.label, r.types)


def pip_figure(metric: str, value: Decimal | None, op: str | None = None) -> str:
    """A month of a PIP against its target: the figure by its metric's type (a ratio as a
    percentage, money with its currency), after the comparison's sign when given (≥)."""
    from flask import current_app, g

    from engine.statements import reader
    from engine.wording import OPS

    types = getattr(g, "laurel_metric_types", None)
    if types is None:  # once a request: a PIP page shows a figure or two a month
        types = g.laurel_metric_types = reader(current_app.extensions["laurel_db"]).types
    shown = metric_value(value, types.get(metric))
    return f"{OPS.get(op, op)} {shown}" if op else shown


# Parameters of engine messages that are codes of the domain (statuses, kinds, roles): a
# reader reads them in their language (term). A second one of a message is numbered
# (status2: "is accepted; it cannot become declined").
WORD_PARAMS = {"status", "decision", "kind", "role"}
_NUMBERED = re.compile(r"\d+$")


def say(value: Any) -> str:
    """An engine message (engine.messages: an error's, an audit entry's) in the page's
    language, its parameters filled in; any other text as it is."""
    from flask_babel import gettext

    from engine.messages import Message, message_of

    value = message_of(value)
    if not isinstance(value, Message):
        return str(value)
    params = {k: say(v) if isinstance(v, Message) else
              term(v) if _NUMBERED.sub("", k) in WORD_PARAMS and isinstance(v, str) else v
              for k, v in value.params.items()}
    return gettext(value.template, **params) if params else gettext(value.template)


def audit_summary(entry: Any) -> str:
    """An audit entry's summary in the page's language (its stored message), else as
    written (a record's name, or an entry older than stored messages)."""
    from engine.messages import restored

    return say(restored(entry.message)) if entry.message else entry.summary


_RANKED = re.compile(r"^(\S+) \((strictly higher|defined, N|company maximum)\)$")


def fact_name(name: str, label: Callable[[str], str] | None = None) -> str:
    """A fact a rule read, as its explanation names it: a ranked fact's figures ("revenue
    (company maximum)") with their words in the page's language; ``label`` (a
    statements.reader's) names the fact itself, a metric by its label, else its key."""
    from flask_babel import gettext

    named = label or (lambda key: key)
    found = _RANKED.match(name)
    if not found:
        return named(name)
    words = {"strictly higher": gettext("strictly higher"),
             "defined, N": gettext("defined, N"),
             "company maximum": gettext("company maximum")}
    return gettext("%(fact)s (%(figure)s)", fact=named(found.group(1)),
                   figure=words[found.group(2)])


def when(at: Any) -> str:
    """A moment in the reader's language and the back office's time zone (never ISO)."""
    return format_datetime(at, "medium") if at else ""


def day(value: Any) -> str:
    """A day in the reader's language ("Apr 1, 2026", "2026年4月1日"); a stored ISO day
    (a one-to-one's action) too (engine.wording.day); a moment's day in the back office's
    time zone."""
    if isinstance(value, dt.datetime):
        return format_date(value, "medium")
    return wording.day(value, current_language())


def lang_url(code: str) -> str:
    """Return this page's address with the language switched to ``code``."""
    from urllib.parse import urlencode

    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return f"{request.path}?{urlencode(args, doseq=True)}"
