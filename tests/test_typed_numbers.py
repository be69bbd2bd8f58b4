"""Amounts and percentages as people type them in the back office (engine.cells)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.cells import CellError, metric_value, typed_amount, typed_percent


@pytest.mark.parametrize("typed, value", [
    ("1,500", "1500"), ("1500元", "1500"), ("CN¥1,500.00", "1500.00"), ("¥1,500", "1500"),
    ("￥ 1500", "1500"), ("1500 CNY", "1500"), ("RMB1500", "1500"), ("-¥30", "-30"),
    ("¥-30", "-30"), ("12,345,678.90", "12345678.90"), (".5", "0.5"), (" 7 ", "7")])
def test_an_amount_reads_in_the_currency_s_usual_forms(typed: str, value: str) -> None:
    assert typed_amount(typed) == Decimal(value)


@pytest.mark.parametrize("typed", [
    "", "¥", "-", "abc", "1,50", "1,5000", "1.500,00", "15 00", "1e3", "１５００", "$1,500",
    "--5", "+¥-3", "1500元元", "12.", "NaN"])
def test_an_amount_in_another_form_is_refused(typed: str) -> None:
    with pytest.raises(CellError, match="is not an amount in CNY"):
        typed_amount(typed)


def test_another_currency_has_its_own_marks() -> None:
    assert typed_amount("US$1,500.25", "USD") == Decimal("1500.25")
    with pytest.raises(CellError, match="is not an amount in USD"):
        typed_amount("1500元", "USD")


@pytest.mark.parametrize("typed, fraction", [
    ("7", "0.07"), ("7 %", "0.07"), ("7%", "0.07"), ("7％", "0.07"), ("12.5", "0.125"),
    ("0.5 %", "0.005"), ("150", "1.50"), ("-3", "-0.03")])
def test_a_percentage_reads_as_its_fraction(typed: str, fraction: str) -> None:
    assert str(typed_percent(typed)) == fraction


@pytest.mark.parametrize("typed", ["", "%", "7%%", "abc", "7 percent", "７%", "1e2"])
def test_a_percentage_in_another_form_is_refused(typed: str) -> None:
    with pytest.raises(CellError, match="is not a percentage"):
        typed_percent(typed)


def test_imports_stay_strict() -> None:
    with pytest.raises(CellError):
        metric_value("1,500", "money")
