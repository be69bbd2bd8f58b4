"""What a cell may hold: values read from an imported file, text written to an export.

Reading: every cell is text of at most MAX_TEXT characters with no control character; a
number is written as spreadsheets write it (ASCII digits, an optional sign, one ``.``, an
optional exponent: ``1234.5``, ``-3``, ``1E+15``) and nothing else: no ``1_000``, no
full-width or Arabic-Indic digits, no ``NaN`` or ``Infinity``, all of which Python's
``Decimal`` would take. Every check is exact: a value is never rounded to fit, and an
exponent of a billion is refused, never turned into 0 or an overflow.

Typing: a person in the back office writes amounts and rates as they read them, and
``typed_amount`` and ``typed_percent`` read those: "1,500", "1500元", "CN¥1,500.00"; "7 %"
or "7" for 7%. Files stay strict: an import never reads a cell this way.

Writing: a spreadsheet runs text that begins with ``=``, ``+``, ``-`` or ``@`` as a
formula, and tab or carriage return lead into one (OWASP, CSV injection). Such text goes
into a CSV file behind an apostrophe, and into an XLSX file as a quote-prefixed string
cell, never a formula.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.messages import msg
from engine.metrics import DECIMALS, decimals, metric_range, range_problem

# The longest cell an import reads; the columns that are stored are shorter still
# (engine.models: a name 200, a code 40).
MAX_TEXT = 1000
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")

# C0 and C1 controls (NUL, tab, line breaks included), the Unicode line and paragraph
# separators, and lone surrogates (which neither database can encode).
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.([0-9]*))?|\.([0-9]+))([eE][+-]?[0-9]+)?", re.ASCII)
NOT_A_NUMBER = msg("is not a number (write the digits 0-9, . as the decimal mark and no "
                   "thousands separator)")


class CellError(ValueError):
    """A refused cell; ``reason`` is what follows the file, row and column in the message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def quoted(text: str, most: int = 40) -> str:
    """The text as a message quotes it: repr, cut short when it is long."""
    return repr(text) if len(text) <= most else repr(text[:most]) + "..."


def text_problem(text: str) -> str | None:
    """Why a cell's text is refused (too long, a control character), or None."""
    if len(text) > MAX_TEXT:
        return msg("the cell has %(n)s characters; a cell holds at most %(most)s",
                   n=f"{len(text):,}", most=f"{MAX_TEXT:,}")
    found = CONTROL.search(text)
    if found:
        return msg("the cell holds the control character U+%(code)s (a line break, tab or "
                   "NUL, for example); remove it", code=f"{ord(found[0]):04X}")
    return None


def formula_problem(text: str) -> str | None:
    """Why a code is refused because a spreadsheet would run it as a formula, or None."""
    if text.startswith(FORMULA_LEADS):
        return ("must not begin with =, +, - or @: a spreadsheet would run it as a formula")
    return None


def number(text: str) -> Decimal:
    """Read a number as spreadsheets write it; raise CellError when the text is not one."""
    if _NUMBER.fullmatch(text) is None:
        raise CellError(msg("%(text)s %(not_a_number)s", text=quoted(text),
                            not_a_number=NOT_A_NUMBER))
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent past what Decimal holds (10**18)
        raise CellError(msg("%(text)s is outside any accepted range", text=quoted(text))) from None


def metric_value(text: str, mtype: str, low: Decimal | None = None,
                 high: Decimal | None = None) -> Decimal:
    """Read a metric's value as an import does; raise CellError saying why it is refused.

    The same reading serves a file's cell and a value typed in the back office.
    """
    match = _NUMBER.fullmatch(text)
    if match is not None and match[3] is None:  # the common case: count the digits
        value = Decimal(text)
        places = len((match[1] or match[2] or "").rstrip("0"))
    else:
        value = number(text)
        places = decimals(value)
    if places > DECIMALS:
        raise CellError(msg("%(text)s has more than %(decimals)s decimals", text=quoted(text),
                            decimals=DECIMALS))
    if mtype == "count":
        if places:
            raise CellError(msg("%(text)s is not a whole number", text=quoted(text)))
        if value < 0:
            raise CellError(msg("%(text)s is negative: a count is 0 or more", text=quoted(text)))
    problem = range_problem(value, mtype, low, high)
    if problem:
        raise CellError(msg("%(text)s %(problem)s", text=quoted(text), problem=problem))
    return value


# A column's cells that metric_value reads as Decimal(text) at once: a plain number (a
# count: digits only), at most DECIMALS decimals but for trailing zeros; or empty. Checked
# on the column's cells joined by line feeds: the bytes a column may hold at all, then what
# may not be found in it (a sign inside a number, a mark without a digit on each side, two
# marks in a number, a decimal too many).
_PLAIN_BYTES = {True: b"0123456789\n", False: b"0123456789.-\n"}
_NOT_PLAIN = ("--", "-\n", "-.", ".\n", "\n.")
_TWO_MARKS = re.compile(r"\.[0-9]*\.")
_MORE_DECIMALS = re.compile(rf"\.[0-9]{{{DECIMALS + 1}}}")  # then maybe trailing zeros only
_TOO_MANY_DECIMALS = re.compile(rf"\.[0-9]{{{DECIMALS}}}0*[1-9]")


def _plain_column(joined: str, cells: int, count: bool) -> bool:
    """Whether every cell of a column (``joined`` by line feeds, ``cells`` of them) is
    empty or a plain number, in a few passes over the text in C, none a cell."""
    if not joined.isascii() or joined.count("\n") != cells - 1 \
            or joined.encode("ascii").translate(None, _PLAIN_BYTES[count]):
        return False  # a line break within a cell is refused here too
    if count:
        return True
    if "-" in joined and (joined.count("-") != joined.count("\n-") + joined.startswith("-")
                          or joined.endswith("-") or any(s in joined for s in _NOT_PLAIN)):
        return False
    if "." in joined and (joined.startswith(".") or joined.endswith(".")
                          or any(s in joined for s in _NOT_PLAIN[3:])
                          or _TWO_MARKS.search(joined) or (_MORE_DECIMALS.search(joined)
                                                           and _TOO_MANY_DECIMALS.search(joined))):
        return False
    return True


def _inside(joined: str, present: list[str], lo: Decimal, hi: Decimal) -> bool:
    """Whether a column's plain numbers (``present``, ``joined`` by line feeds) are all
    within lo..hi. Most columns show it by the length of their cells alone (a cell of n
    characters is less than 10^n in absolute value); others by floats where every value is
    clearly inside (a double's error is a 10^-16th of the value; the margin a 10^-9th of
    the range's largest bound), exactly on Decimals otherwise; each distinct text once (a
    column of scores holds a hundred at most)."""
    reach = hi if lo <= 0 and "-" not in joined else min(-lo, hi)
    if reach >= 1:  # no cell longer than the digits of reach: each is less than reach
        most = len(str(int(reach))) - 1  # characters: a cell of no more is inside
        first = joined.find("\n")
        if (first if first >= 0 else len(joined)) <= most \
                and re.search(f"\n[^\n]{{{most + 1}}}", joined) is None:
            return True
    distinct = set(present)
    floats = list(map(float, distinct))
    margin = max(abs(float(lo)), abs(float(hi)), 1.0) * 1e-9
    if float(lo) + margin < min(floats) and max(floats) < float(hi) - margin:
        return True
    exact = list(map(Decimal, distinct))
    return lo <= min(exact) and max(exact) <= hi


def metric_column(texts: list[str], mtype: str, low: Decimal | None = None,
                  high: Decimal | None = None) -> tuple[list[str | None], bool] | None:
    """The cells of a column as a row of results keeps them (None for an empty cell), and
    whether one is empty, when every cell is a plain number in the metric's range; else
    None, and metric_value cell by cell says which cell is refused and why.

    A few passes over the column's text and one comparison a column, no call a cell: the
    cell-by-cell checks were most of a large import's time.
    """
    joined = "\n".join(texts)
    if not _plain_column(joined, len(texts), mtype == "count"):
        return None
    empty = joined.startswith("\n") or joined.endswith("\n") or "\n\n" in joined \
        or texts == [""]
    present = [t for t in texts if t] if empty else texts
    if present and not _inside(joined, present, *metric_range(mtype, low, high)):
        return None
    if "-" in joined:  # a negative zero ("-0", "-0.00") is kept as 0
        return [(t if t[0] != "-" or float(t) else "0") if t else None for t in texts], empty
    return ([t or None for t in texts] if empty else texts), empty


# --- typing ------------------------------------------------------------------------------

# The marks of a currency people put before or after an amount; an ISO code always counts.
CURRENCY_MARKS = {
    "CNY": (("CN¥", "RMB", "¥", "￥"), ("元", "RMB")),
    "USD": (("US$", "$"), ()), "EUR": (("€",), ("€",)), "GBP": (("£",), ()),
    "JPY": (("JP¥", "¥", "￥"), ("円",)), "HKD": (("HK$",), ()),
}
_TYPED = re.compile(r"(?P<sign>[+-]?)(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?"
                    r"(?:\.(?P<dec>[0-9]+))?", re.ASCII)


def _typed_number(text: str, what: str) -> Decimal:
    m = _TYPED.fullmatch(text)
    if m is None or (m["int"] is None and m["dec"] is None):
        raise CellError(msg("%(text)s is not %(what)s", text=quoted(text), what=what))
    digits = (m["int"] or "0").replace(",", "") + ("." + m["dec"] if m["dec"] else "")
    return Decimal(m["sign"] + digits)


def typed_amount(text: str, currency: str = "CNY") -> Decimal:
    """Read an amount as a person types it: thousands separators in groups of three, the
    currency's symbol or code before it or its mark after it ("1,500", "1500元",
    "CN¥1,500.00", "-¥30", "1500 CNY"). Raise CellError saying why it is refused."""
    raw = text
    text = text.strip().replace("\u00a0", " ")
    before, after = CURRENCY_MARKS.get(currency, ((), ()))
    sign = ""
    if text and text[0] in "+-":
        sign, text = text[0], text[1:].lstrip()
    for mark in sorted({*before, currency}, key=len, reverse=True):
        if text.upper().startswith(mark.upper()):
            text = text[len(mark):].strip()
            break
    else:
        for mark in sorted({*after, currency}, key=len, reverse=True):
            if text.upper().endswith(mark.upper()):
                text = text[: -len(mark)].strip()
                break
    refused = CellError(msg("%(raw)s is not an amount in %(currency)s (write 1500, 1,500.00 or "
                            "1500元, for example)", raw=quoted(raw), currency=currency))
    if sign and text and text[0] in "+-":
        raise refused
    try:
        return _typed_number(sign + text, msg("an amount"))
    except CellError:
        raise refused from None


def typed_percent(text: str) -> Decimal:
    """Read a percentage as a person types it and return the fraction: "7 %", "7%" and
    "7" are 0.07, "12.5" is 0.125. Raise CellError saying why it is refused."""
    raw = text
    text = text.strip().replace("\u00a0", " ")
    if text.endswith(("%", "％")):
        text = text[:-1].rstrip()
    try:
        return _typed_number(text, msg("a percentage")).scaleb(-2)
    except CellError:
        raise CellError(msg("%(raw)s is not a percentage (write 7 or 7 %% for 7%%)",
                            raw=quoted(raw))) from None


# --- writing ------------------------------------------------------------------------------


def _risky(text: str) -> bool:
    # A plain number such as -12.50 is a value, not a formula: it stays as it is. A leading
    # line feed counts too: in a CSV cell it is what a carriage return becomes.
    return text.startswith((*FORMULA_LEADS, "\n")) and _NUMBER.fullmatch(text) is None


def csv_cell(value: Any) -> Any:
    """A value for a CSV export: text a spreadsheet would run gets a leading apostrophe.

    A carriage return is written as a line feed: the csv module quotes a cell holding a
    line feed, but not one holding a bare carriage return, which readers take for the end
    of the row.
    """
    if isinstance(value, str):
        if "\r" in value:
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        if _risky(value):
            return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


def csv_text(rows: Iterable[Iterable[Any]], batch: int = 1000) -> Iterator[str]:
    """CSV text of rows (each through csv_row), ``batch`` rows a piece: a file written
    piece by piece holds a batch in memory, whatever its length."""
    import csv
    import io

    rows = iter(rows)
    while chunk := list(itertools.islice(rows, batch)):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(csv_row(r) for r in chunk)
        yield buf.getvalue()


def xlsx_append(sheet: Any, values: Iterable[Any], bold: bool = False,
                money: dict[int, str | None] | None = None) -> None:
    """Append a row to an openpyxl sheet (a write-only one too) with every text as a string
    cell, never a formula; the columns in ``money`` are amounts in the currency given,
    as xlsx_amount writes them.

    openpyxl makes a formula of text that begins with ``=`` and an error cell of ``#N/A``;
    here text stays text, and text a spreadsheet would run is quote-prefixed, as Excel
    stores what a person types after an apostrophe. A control character openpyxl refuses
    is written as U+FFFD.
    """
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    money = money or {}
    cells = []
    for i, value in enumerate(values):
        if i in money:
            cell = WriteOnlyCell(sheet)
            xlsx_amount(cell, value, money[i])
        elif isinstance(value, str):
            cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
            cell.data_type = "s"
            if _risky(value):
                cell.quotePrefix = True
        else:
            cell = WriteOnlyCell(sheet, value)
        if bold:
            cell.font = Font(bold=True)
        cells.append(cell)
    sheet.append(cells)


def xlsx_book() -> Any:
    """A write-only workbook: each row is written to a temporary file as it is added."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    book.properties.created = dt.datetime(2000, 1, 1)
    return book


def xlsx_pieces(book: Any, size: int = 1 << 20) -> Iterator[bytes]:
    """The saved workbook, ``size`` bytes a piece, from a temporary file."""
    import tempfile

    with tempfile.TemporaryFile() as fh:
        book.save(fh)
        fh.seek(0)
        while piece := fh.read(size):
            yield piece


# A spreadsheet number is a binary double: 15 significant digits hold exactly. An amount
# with more (more than 13 digits before the point) is written as text with its exact digits
# rather than as a number that would lose cents.
EXACT_DIGITS = 15
CURRENCY_FORMATS = {"CNY": '[$¥-804]#,##0.00;-[$¥-804]#,##0.00',
                    "USD": '[$$-409]#,##0.00;-[$$-409]#,##0.00',
                    "EUR": '[$€-x-euro2] #,##0.00;-[$€-x-euro2] #,##0.00'}


def amount_format(currency: str | None) -> str:
    """The number format of an amount in this currency (two decimals, its sign)."""
    code = currency or "CNY"
    return CURRENCY_FORMATS.get(code, f'#,##0.00 "{code}";-#,##0.00 "{code}"')


def xlsx_amount(cell: Any, amount: Decimal | None, currency: str | None) -> None:
    """Write an amount into an openpyxl cell: an exact number with two decimals in the
    currency's format, or its exact digits as text where a spreadsheet number cannot hold
    them (more than EXACT_DIGITS significant digits)."""
    if amount is None:
        cell.value = None
        return
    amount = amount.quantize(Decimal("0.01"))
    if len(amount.as_tuple().digits) <= EXACT_DIGITS:
        cell.value = amount  # openpyxl writes it with 16 significant digits: exact here
        cell.number_format = amount_format(currency)
    else:
        cell.value = f"{amount:.2f}"
        cell.data_type = "s"
        cell.alignment = _right()


def _right() -> Any:
    from openpyxl.styles import Alignment

    return Alignment(horizontal="right")


def xlsx_table(sheet: Any, keys: list[str], labels: list[str],
               rows: Callable[[], Iterable[list[Any]]],
               money: dict[int, int | str] | None = None,
               totals: Sequence[list[Any]] = ()) -> None:
    """Fill a sheet: the column keys in a hidden first row, the labels (bold, frozen) in
    the second, then the rows, then the ``totals`` rows in bold, each column as wide as its
    content (8 to 60 characters).

    ``rows`` gives the rows each time it is called: it is read twice, for the widths and
    then for the cells, so that a write-only sheet (openpyxl's, which writes each row as
    it comes) holds no row in memory. ``money`` maps an amount column (0-based) to the
    column of its currency, or to the currency itself.
    """
    from openpyxl.utils import get_column_letter

    money = money or {}
    widths = [max(len(str(label)), 6) for label in labels]
    for row in itertools.chain(rows(), totals):
        for i, v in enumerate(row):
            text = f"{v:,.2f}  " if i in money and v is not None else str(v or "")
            widths[i] = max(widths[i], len(text) + (text != "" and 1))
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(max(width, 8), 60)
    sheet.row_dimensions[1].hidden = True
    sheet.freeze_panes = "A3"
    sheet.append(keys)
    xlsx_append(sheet, labels, bold=True)
    xlsx_rows(sheet, rows(), money)
    xlsx_rows(sheet, totals, money, bold=True)


def xlsx_rows(sheet: Any, rows: Iterable[list[Any]], money: dict[int, int | str],
              bold: bool = False) -> None:
    """Append rows to a sheet, amounts as xlsx_amount writes them (``money`` as in
    xlsx_table), every text as xlsx_append writes it."""
    for row in rows:
        xlsx_append(sheet, row, bold=bold, money={
            i: row[cur] if isinstance(cur, int) else cur for i, cur in money.items()})
