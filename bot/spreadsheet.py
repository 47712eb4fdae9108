"""Cells of the CSV files Kefu exports, safe to open in a spreadsheet."""

from __future__ import annotations

from typing import Any

# A cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cell(value: Any) -> str:
    """``value`` as CSV cell text: empty for None, yes/no for a bool, a list joined with
    ``;``. Text a spreadsheet would run as a formula (a shopper can type ``=HYPERLINK(…)``
    as their name) is prefixed with ``'`` so it stays text; a negative number stays a
    number."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    text = str(value)
    if text[:1] in FORMULA_STARTS and not _is_number(text):
        return "'" + text
    return text
