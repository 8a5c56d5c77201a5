"""CSV cells that a spreadsheet cannot run: every CSV export writes its cells through `csv_cell`.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula
by Excel, LibreOffice and Google Sheets (CSV injection): a username such as `=HYPERLINK(...)` or
`@SUM(...)` would run on the instructor's machine. Such a cell gets a leading apostrophe, which
the spreadsheet shows as text. Numbers (and text that is exactly a number, like `-0.5`) are kept.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(values: list[Any]) -> list[Any]:
    return [csv_cell(value) for value in values]
