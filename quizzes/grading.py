"""Answer checking for quiz questions. Pure Python and NumPy: no Django, no database.

Every parser either returns a value or raises `AnswerInvalid` with a message meant
for the learner; the caller stores an attempt only when grading returned a
`QuizGrade`, so bad input never uses up an attempt.

Scoring rules (stated to learners on the quiz page):
- single choice: 1 for the correct choice, 0 otherwise;
- multiple choice: (correct choices picked - wrong choices picked) / correct choices
  in total, floored at 0;
- numeric, vector and matrix answers: 1 when every entry is within the tolerance of
  the expected value, 0 otherwise. An entry passes when |given - expected| <=
  max(absolute, relative * |expected|); a value exactly at the tolerance passes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

# A longer answer is refused before any parsing (a 6x6 matrix of long decimals fits easily).
MAX_ANSWER_CHARS = 2000
# Slack that absorbs binary rounding of decimal input: 0.26 - 0.25 is 0.010000000000000009.
TOLERANCE_ROUNDING_SLACK = 1e-9

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class AnswerInvalid(ValueError):
    """The answer cannot be graded as typed; `message` tells the learner what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Tolerance:
    """How far a numeric entry may be from the expected value: max(absolute, relative * |expected|)."""

    absolute: float = 0.0
    relative: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, float] | None) -> Tolerance:
        data = data or {}
        return cls(absolute=float(data.get("absolute", 0.0)), relative=float(data.get("relative", 0.0)))

    def allowed(self, expected: float) -> float:
        return max(self.absolute, self.relative * abs(expected))

    def accepts(self, given: float, expected: float) -> bool:
        allowed = self.allowed(expected)
        return abs(given - expected) <= allowed + TOLERANCE_ROUNDING_SLACK * max(allowed, 1e-12)

    def describe(self) -> str:
        """The tolerance in the words shown next to the answer box."""
        parts = []
        if self.relative:
            parts.append(f"within {format_number(self.relative * 100)}% of the exact value")
        if self.absolute:
            parts.append(f"within ±{format_number(self.absolute)}")
        if not parts:
            return "exact value"
        return " or ".join(parts)


@dataclass(frozen=True)
class QuizGrade:
    """The outcome of a well-formed answer: a score in [0, 1] and what to tell the learner."""

    score: float
    message: str
    expected_text: str

    @property
    def is_correct(self) -> bool:
        return self.score >= 1.0


def format_number(value: float) -> str:
    """Format a number without a trailing `.0` or float noise (0.01 -> '0.01', 2.0 -> '2')."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def format_matrix(values: np.ndarray) -> str:
    """Write a scalar, vector or matrix the way a learner would type it: `1, 2; 3, 4`."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        return format_number(float(array))
    if array.ndim == 1:
        return ", ".join(format_number(float(v)) for v in array)
    return "; ".join(", ".join(format_number(float(v)) for v in row) for row in array)


def _check_length(text: str) -> str:
    if len(text) > MAX_ANSWER_CHARS:
        raise AnswerInvalid(f"That answer is {len(text)} characters long; the limit is {MAX_ANSWER_CHARS}.")
    stripped = text.strip()
    if not stripped:
        raise AnswerInvalid("The answer is empty: type a value before checking.")
    return stripped


def _parse_entry(token: str) -> float:
    if not _NUMBER.fullmatch(token):
        shown = token if len(token) <= 20 else token[:20] + "…"
        raise AnswerInvalid(f"'{shown}' is not a number. Use digits, a decimal point and optionally e-notation.")
    value = float(token)
    if not math.isfinite(value):
        raise AnswerInvalid(f"'{token}' is too large to be a finite number.")
    return value


def parse_number(text: str) -> float:
    """Parse one finite number; raise AnswerInvalid for empty, non-numeric or overlong input."""
    stripped = _check_length(text)
    tokens = stripped.replace(",", " ").split()
    values = [_parse_entry(token) for token in tokens]
    if len(values) > 1:
        raise AnswerInvalid("Type a single number here, not a list.")
    return values[0]


def parse_matrix(text: str, shape: Sequence[int]) -> np.ndarray:
    """Parse a vector or matrix typed as rows and check it has `shape`.

    Rows are separated by `;` or new lines (or `],` between bracketed rows);
    entries by commas or spaces; brackets are optional. A vector (1-D shape) may
    be typed on one line or one entry per line.
    """
    stripped = _check_length(text)
    body = stripped.replace("[", " ").replace("]", " ;").replace("(", " ").replace(")", " ;")
    rows = [row for row in re.split(r"[;\n]", body) if row.strip().strip(",").strip()]
    parsed = [[_parse_entry(token) for token in re.split(r"[,\s]+", row.strip().strip(",").strip())] for row in rows]
    if len(shape) == 1:
        flat = [value for row in parsed for value in row]
        if len(flat) != shape[0]:
            raise AnswerInvalid(f"Expected {shape[0]} numbers, got {len(flat)}.")
        return np.array(flat, dtype=float)
    expected_rows, expected_cols = shape
    if len(parsed) != expected_rows:
        raise AnswerInvalid(
            f"Expected {expected_rows} rows of {expected_cols} numbers, got {len(parsed)} row(s). "
            "Separate rows with ';' or a new line."
        )
    for number, row in enumerate(parsed, start=1):
        if len(row) != expected_cols:
            raise AnswerInvalid(f"Row {number} has {len(row)} number(s); every row needs {expected_cols}.")
    return np.array(parsed, dtype=float)


def grade_single_choice(picked: Collection[str], choice_keys: Sequence[str], correct_key: str) -> QuizGrade:
    """Grade a single-choice answer; `picked` is what the form sent (must be exactly one known key)."""
    picked = list(picked)
    if not picked:
        raise AnswerInvalid("Pick one of the choices before checking.")
    if len(picked) > 1:
        raise AnswerInvalid("Pick only one choice.")
    if picked[0] not in choice_keys:
        raise AnswerInvalid("That choice does not belong to this question. Reload the page and try again.")
    if picked[0] == correct_key:
        return QuizGrade(1.0, "", correct_key)
    return QuizGrade(0.0, "The right choice is marked below.", correct_key)


def grade_multiple_choice(
    picked: Collection[str], choice_keys: Sequence[str], correct_keys: Collection[str]
) -> QuizGrade:
    """Grade with partial credit: (right picks - wrong picks) / number of correct choices, floored at 0."""
    picked_set = set(picked)
    if not picked_set:
        raise AnswerInvalid("Pick at least one choice before checking.")
    unknown = picked_set - set(choice_keys)
    if unknown:
        raise AnswerInvalid("A choice you sent does not belong to this question. Reload the page and try again.")
    correct = set(correct_keys)
    right = len(picked_set & correct)
    wrong = len(picked_set - correct)
    score = max(0.0, (right - wrong) / len(correct))
    expected = ", ".join(key for key in choice_keys if key in correct)
    if score >= 1.0:
        message = "You picked every right choice and no wrong one."
    elif score > 0:
        message = f"You picked {right} of {len(correct)} right choice(s) and {wrong} wrong one(s)."
    else:
        message = (
            f"You picked {right} of {len(correct)} right choice(s) and {wrong} wrong one(s): "
            f"({right} - {wrong}) / {len(correct)} is floored at 0."
        )
    return QuizGrade(score, message, expected)


def grade_numeric(text: str, expected: float, tolerance: Tolerance) -> QuizGrade:
    """Grade one number against `expected` within `tolerance`."""
    given = parse_number(text)
    shown = format_matrix(np.asarray(expected))
    if tolerance.accepts(given, expected):
        return QuizGrade(1.0, "", shown)
    return QuizGrade(0.0, f"{format_number(given)} is not {tolerance.describe()} of the answer.", shown)


def grade_matrix(text: str, expected: np.ndarray, tolerance: Tolerance) -> QuizGrade:
    """Grade a vector or matrix entry by entry; the result names the first entries that are off."""
    expected = np.asarray(expected, dtype=float)
    if expected.ndim == 0:
        return grade_numeric(text, float(expected), tolerance)
    given = parse_matrix(text, expected.shape)
    off = [
        index
        for index in np.ndindex(*expected.shape)
        if not tolerance.accepts(float(given[index]), float(expected[index]))
    ]
    shown = format_matrix(expected)
    if not off:
        return QuizGrade(1.0, "", shown)
    where = ", ".join(_describe_index(index, expected.ndim) for index in off[:3])
    more = f" and {len(off) - 3} more" if len(off) > 3 else ""
    return QuizGrade(0.0, f"{len(off)} of {expected.size} entries are off ({where}{more}).", shown)


def _describe_index(index: tuple[int, ...], ndim: int) -> str:
    if ndim == 1:
        return f"entry {index[0] + 1}"
    return f"row {index[0] + 1}, column {index[1] + 1}"
