"""Exact numbers: decimals, and quotients that keep their exact fraction.

Imported values are decimals with at most six decimals, and sums and products of them are
exact decimals. A quotient such as 2/3 (an attainment, a mean of three months) has no
exact decimal: it is a ``Quotient``, a Decimal of 34 digits for display and arithmetic
that carries its exact ``Fraction`` for every comparison. Compare numbers through
``exact()`` (or ``compare()``) and an attainment of 0.79999... never passes for 0.80,
whatever the magnitudes.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from fractions import Fraction
from typing import Any

Number = Decimal | Fraction
PRECISION = 34

# Contexts made once (a localcontext copies the current one at each use), for the steps
# that only need to know whether a result is exact: Inexact raises instead of being read
# from the flags; the other traps are the default context's. Their flags are never read.
_TRAPS = [Inexact, InvalidOperation, DivisionByZero, Overflow]
_EXACT_34 = Context(prec=PRECISION, traps=_TRAPS)
_EXACT_100 = Context(prec=100, traps=_TRAPS)
_ROUND_100 = Context(prec=100, rounding=ROUND_HALF_UP, traps=_TRAPS[1:])


class Quotient(Decimal):
    """A Decimal rounded to 34 digits that remembers the exact fraction it stands for."""

    __slots__ = ("exact",)
    exact: Fraction

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled with its fraction (a run's worker processes send them): Decimal's own
        # reduction keeps the digits alone
        return (_quotient, (str(self), self.exact))


def _quotient(digits: Decimal | str, fraction: Fraction) -> Quotient:
    """The Quotient of ``digits`` (the fraction rounded to 34 digits) and ``fraction``."""
    q = Quotient(digits)
    q.exact = fraction
    return q


def exact(value: Any) -> Number:
    """The exact value: a Quotient's fraction, else the Decimal itself."""
    if isinstance(value, Quotient):
        return value.exact
    if isinstance(value, Decimal | Fraction):
        return value
    if isinstance(value, bool):
        raise TypeError("a truth value is not a number")
    return Decimal(str(value))


def is_exact_decimal(value: Any) -> bool:
    return isinstance(value, Decimal) and not isinstance(value, Quotient)


def from_fraction(value: Fraction) -> Decimal:
    """A Decimal when the fraction has one of at most 34 digits, else a Quotient."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        ctx.clear_flags()
        d = Decimal(value.numerator) / Decimal(value.denominator)
        if not ctx.flags[Inexact]:
            return d
    return _quotient(d, value)


def ratio_quotient(rounded: Decimal, a: Decimal, b: Decimal) -> Decimal:
    """from_fraction(Fraction(a) / Fraction(b)) of two decimals whose quotient no decimal
    of 34 digits holds, given ``rounded``, a / b worked out to 34 digits (the same number
    from_fraction gives: both round one fraction in one context): its fraction made at
    once from theirs, about a third of the time."""
    na, da = a.as_integer_ratio()
    nb, db = b.as_integer_ratio()
    return _quotient(rounded, Fraction(na * db, da * nb))


def _fraction(value: Number) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(value)


def quotient(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """a / b, exact (a Quotient where no decimal is); undefined when b is undefined or 0."""
    if a is None or b is None:
        return None
    ea, eb = exact(a), exact(b)
    if eb == 0:
        return None
    if isinstance(ea, Decimal) and isinstance(eb, Decimal):
        try:
            return _EXACT_34.divide(ea, eb)
        except Inexact:
            pass
    return from_fraction(_fraction(ea) / _fraction(eb))


def total(values: Iterable[Decimal | Fraction]) -> Decimal:
    """The exact sum of numbers (Quotients included)."""
    s = exact_sum(values)
    return s if isinstance(s, Decimal) else from_fraction(s)


def exact_sum(values: Iterable[Decimal | Fraction]) -> Decimal | Fraction:
    """The sum as total() works it out before it is shown: a Decimal where every number
    is an exact decimal and the sum has at most PRECISION digits, else the Fraction. The
    total() of such sums of parts is the total() of all their numbers, digits and
    exponent alike (a population walked in parts: engine.facts.merge)."""
    items = list(values)
    if all(is_exact_decimal(v) for v in items):
        with localcontext() as ctx:
            ctx.prec = PRECISION
            ctx.clear_flags()
            s = sum(items, Decimal(0))
            if not ctx.flags[Inexact]:
                return s
    return sum((_fraction(exact(v)) for v in items), Fraction(0))


def mean(values: list[Decimal]) -> Decimal:
    return quotient(total(values), Decimal(len(values)))  # type: ignore[return-value]


def product(a: Decimal, b: Decimal) -> Number:
    """a x b exactly, as a Decimal where the digits allow, else as a Fraction."""
    ea, eb = exact(a), exact(b)
    if isinstance(ea, Decimal) and isinstance(eb, Decimal):
        try:
            return _EXACT_100.multiply(ea, eb)
        except Inexact:
            pass
    return _fraction(ea) * _fraction(eb)


def round_half_up(value: Number, quantum: Decimal) -> Decimal:
    """Round an exact number to the quantum (0.01), half away from zero; never -0.00."""
    if isinstance(value, Fraction):
        steps = value / Fraction(quantum)
        whole, rest = divmod(abs(steps.numerator), steps.denominator)
        if 2 * rest >= steps.denominator:
            whole += 1
        if steps < 0:
            whole = -whole
        out = _ROUND_100.multiply(Decimal(whole), quantum)
    else:
        out = value.quantize(quantum, context=_ROUND_100)
    if out == 0:
        out = abs(out)
    return out
