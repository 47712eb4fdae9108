from __future__ import annotations

import pytest

from bot.spreadsheet import cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "yes"),
        (False, "no"),
        (["vip", "complainer"], "vip;complainer"),
        (3, "3"),
        ("张伟", "张伟"),
        ("-0.5", "-0.5"),  # a negative number stays a number
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+86 138", "'+86 138"),
        ("-rm", "'-rm"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_stays_text(value: object, expected: str) -> None:
    assert cell(value) == expected
