"""Draws: an amount guaranteed a period for a number of periods, recovered later or not.

A commission rule with ``action: {type: draw, amount, periods, recoverable,
recovery_share}`` guarantees ``amount`` a period for ``periods`` periods of its kind, the
first being the one holding the rule's ``effective_from``. In a period of the draw, where
the rule's scope and condition hold, an employee whose commissions of the run (the other
commission lines, payable or held; draws left out) come to less than the guarantee is
paid the shortfall as the draw's line. A recoverable draw keeps what it paid as a balance
owed; from the commissions of later periods (during the draw, only what is earned above
the guarantee) it takes back up to ``recovery_share`` of them, never more than the
balance, as a negative line of the draw, until the balance is 0.

The balance is never stored apart: it is the sum of the draw's lines (payable and held)
in the approved or locked run of each earlier period of the kind, as the annual cap
counts what was paid (engine.runs.paid_earlier). A period has one such run at most and
never counts itself, so a re-run recovers nothing twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy.orm import Session

from engine import earlier
from engine.exact import round_half_up

CENT = Decimal("0.01")


def ordinal(kind: str, day: dt.date) -> int:
    """The number of the period of a kind holding a day, counting from year 0."""
    if kind == "month":
        return day.year * 12 + day.month - 1
    if kind == "quarter":
        return day.year * 4 + (day.month - 1) // 3
    return day.year


def window(rule: dict[str, Any], period: Any) -> int | None:
    """Which period of the draw this is (1 to ``periods``), or None outside it."""
    start = rule.get("effective_from")
    if start is None:
        return None
    if isinstance(start, str):
        start = dt.date.fromisoformat(start)
    n = ordinal(period.kind, period.start) - ordinal(period.kind, start) + 1
    return n if 1 <= n <= rule["action"]["periods"] else None


def balances(session: Session, period: Any, rules: list[dict[str, Any]]
             ) -> dict[tuple[int, str], dict[str, Any]]:
    """What each recoverable draw is owed by each employee before the period:
    {(employee id, key): {"balance", "runs"}} from the earlier approved or locked runs
    (engine.earlier)."""
    keys = [r["key"] for r in rules if (r.get("action") or {}).get("type") == "draw"
            and r["action"].get("recoverable")]
    found = earlier.totals(session, period, keys)
    return {k: {"balance": f"{v['total']:.2f}", "runs": v["runs"]} for k, v in found.items()}


def draw_line(rule: dict[str, Any], period: Any, earned: Decimal,
              owed: dict[str, Any] | None) -> tuple[Decimal, dict[str, Any]] | None:
    """(amount, calculation) of the draw for one employee whose commissions of the period
    came to ``earned``; None when the draw has nothing to pay, recover or say."""
    action = rule["action"]
    guarantee = Decimal(action["amount"])
    recoverable = bool(action.get("recoverable"))
    balance = Decimal((owed or {}).get("balance") or 0) if recoverable else Decimal(0)
    n = window(rule, period)
    calc: dict[str, Any] = {"type": "draw", "guarantee": f"{guarantee:.2f}",
                            "earned": f"{earned:.2f}", "periods": action["periods"],
                            "period": n, "recoverable": recoverable}
    if recoverable:
        calc.update(share=str(action["recovery_share"]), balance_before=f"{balance:.2f}",
                    runs=(owed or {}).get("runs") or [])
    amount = Decimal(0)
    if n is not None and earned < guarantee:
        amount = guarantee - earned
        calc["shortfall"] = f"{amount:.2f}"
    elif recoverable and balance > 0:
        # during the draw only what is earned above the guarantee; after it, all of it
        over = earned - guarantee if n is not None else earned
        room = round_half_up(Fraction(max(over, Decimal(0)))
                             * Fraction(Decimal(action["recovery_share"])), CENT)
        amount = -min(balance, room) if room > 0 else Decimal("0.00")
        calc["recovered"] = f"{-amount:.2f}"
        calc["from"] = f"{max(over, Decimal(0)):.2f}"
    elif n is None:
        return None  # outside the draw, nothing owed
    if recoverable:
        calc["balance_after"] = f"{balance + amount:.2f}"
    calc["amount"] = f"{amount:.2f}"
    if amount == 0 and not (recoverable and balance > 0) and "shortfall" not in calc:
        return None  # the commissions met the guarantee and nothing is owed
    return amount, calc
