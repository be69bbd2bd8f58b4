"""Engine messages: English text that the back office says in the reader's language."""

from __future__ import annotations

import pickle
from typing import Any

from admin import i18n
from admin.app import create_app
from engine.errors import LaurelError
from engine.messages import Message, message_of, msg, restored


def test_a_message_is_its_english_text_and_keeps_its_template() -> None:
    inner = msg("run %(id)s approved", id=7)
    outer = msg("%(what)s: %(reason)s", what="flag 3", reason=inner)
    assert outer == "flag 3: run 7 approved" and isinstance(outer, str)
    again = restored(outer.stored())
    assert (again, again.template, again.params["reason"].template) == (
        outer, "%(what)s: %(reason)s", "run %(id)s approved")
    copy = pickle.loads(pickle.dumps(LaurelError(outer)))  # across processes
    assert isinstance(message_of(copy), Message) and str(copy) == outer
    assert msg("no parameters, 100%") == "no parameters, 100%"


def test_the_back_office_says_a_message_in_the_pages_language() -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "t"})
    error = LaurelError(msg("flag %(id)s (%(key)s) %(decision)s: %(reason)s", id=3,
                            key="compliance.x", decision="dismissed", reason="ok"))
    with app.test_request_context("/?lang=zh"):
        i18n.remember_switch()
        assert i18n.say(error) == "合规标记 3（compliance.x）已驳回：ok"
        assert i18n.say("plain text") == "plain text"
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert i18n.say(error) == "flag 3 (compliance.x) dismissed: ok" == str(error)


def test_an_error_from_the_rule_engines_process_keeps_its_message() -> None:
    from engine.isolate import _rebuild

    sent = pickle.loads(pickle.dumps(msg("rule %(key)s does not exist", key="x.y")))
    error = _rebuild(LaurelError, sent)
    assert isinstance(message_of(error), Message) and str(error) == "rule x.y does not exist"


def _refuse_a_field(session: object) -> None:
    from engine.errors import RuleError

    raise RuleError("commission.tiered", msg("must be a number"), field="tiers[1].rate", row=2)


def test_an_error_from_the_rule_engines_process_keeps_what_it_names(tmp_path) -> None:
    from engine.errors import RuleError
    from engine.isolate import _child, _rebuild

    kind, payload = _child(f"sqlite:///{tmp_path / 'x.db'}", "hr@x.com", {}, _refuse_a_field,
                           ())
    error = _rebuild(*pickle.loads(pickle.dumps(payload)))  # as it crosses the processes
    assert kind == "error" and type(error) is RuleError
    assert (error.source, error.field, error.row) == ("commission.tiered", "tiers[1].rate", 2)
    assert str(error) == str(RuleError("commission.tiered", "must be a number",
                                       field="tiers[1].rate", row=2))
    assert isinstance(message_of(error.reason), Message)


def _zh_catalog() -> Any:
    from pathlib import Path

    from babel.support import Translations

    return Translations.load(str(Path(__file__).resolve().parent.parent / "admin"
                                 / "translations"), ["zh"], "messages")


def test_a_candidates_status_reads_the_same_in_messages_and_on_pages() -> None:
    """The engine's words for a promotion candidate's, a payout's and a PIP's status (in
    its messages, statements and the audit log) are the catalog's (the status lists and
    options of the pages)."""
    from engine.wording import term

    catalog = _zh_catalog()
    for status in ("eligible", "nominated", "accepted", "declined",  # candidates
                   "payable", "held", "forfeited",  # payouts
                   "proposed", "active", "passed", "extended", "closed", "exit"):  # PIPs
        assert term(status, "zh") == catalog.gettext(status) != status, status


def test_a_kind_period_kind_and_stage_read_the_same_in_messages_and_on_pages() -> None:
    """An outcome's or rule's kind, a period kind and a team stage read the same in the
    engine's words (the rule list, try-it, the impact preview, statements, a rule's scope)
    as in the catalog's (a run's counts and comparison, the periods' and teams' lists and
    choices): the catalog said 奖励, 提醒, 月, 年, 初创 where the engine said 荣誉奖励, 预警,
    月度, 年度, 初创期."""
    from engine.wording import VALUES_ZH, term

    catalog = _zh_catalog()
    for word in ("commission", "bonus", "award", "rating", "eligibility", "alert",
                 "warning", "adjustment",  # kinds
                 "month", "quarter", "year",  # period kinds
                 "startup", "growth", "mature"):  # team stages
        assert term(word, "zh") == catalog.gettext(word) != word, word
    for stage, said in VALUES_ZH.items():  # a rule's scope says a stage so too
        assert said == term(stage, "zh"), stage


def test_a_manual_adjustment_reads_the_same_on_every_page() -> None:
    """A statement's adjustment line and an inquiry about one (the catalog's words) read
    as a run's amounts by rule and the statements' names say it (the engine's): it was
    手动调整 on the ones and 人工调整 on the others."""
    from engine.wording import LINE_NAMES

    english, chinese = LINE_NAMES["adjustment"]
    assert _zh_catalog().gettext(english) == chinese
