"""Answer checking (quizzes/grading.py): every question type, tolerance edges, parsing, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from quizzes.grading import (
    MAX_ANSWER_CHARS,
    AnswerInvalid,
    Tolerance,
    format_matrix,
    grade_matrix,
    grade_multiple_choice,
    grade_numeric,
    grade_single_choice,
    parse_matrix,
    parse_number,
)

KEYS = ["a", "b", "c", "d", "e"]


# --- single choice -----------------------------------------------------------------


def test_it_gives_full_marks_for_the_correct_single_choice() -> None:
    result = grade_single_choice(["b"], KEYS, "b")
    assert result.score == 1.0
    assert result.is_correct


def test_it_gives_zero_for_a_wrong_single_choice_and_names_the_right_one() -> None:
    result = grade_single_choice(["a"], KEYS, "b")
    assert result.score == 0.0
    assert not result.is_correct
    assert result.expected_text == "b"


@pytest.mark.parametrize(
    ("picked", "message"),
    [([], "Pick one"), (["a", "b"], "only one"), (["z"], "does not belong")],
)
def test_it_refuses_a_malformed_single_choice(picked: list[str], message: str) -> None:
    with pytest.raises(AnswerInvalid, match=message):
        grade_single_choice(picked, KEYS, "b")


# --- multiple choice ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("picked", "score"),
    [
        (["a", "b", "c"], 1.0),  # all three right
        (["a", "b"], 2 / 3),  # two of three right
        (["a", "b", "c", "d"], 2 / 3),  # all right, one wrong: (3 - 1) / 3
        (["a", "d"], 0.0),  # (1 - 1) / 3
        (["d", "e"], 0.0),  # negative, floored at zero
        (["a", "d", "e"], 0.0),  # (1 - 2) / 3 floored
    ],
)
def test_it_gives_partial_credit_for_multiple_choice(picked: list[str], score: float) -> None:
    result = grade_multiple_choice(picked, KEYS, {"a", "b", "c"})
    assert result.score == pytest.approx(score)
    assert result.is_correct is (score == 1.0)


def test_it_counts_a_repeated_multiple_choice_key_once() -> None:
    assert grade_multiple_choice(["a", "a", "a"], KEYS, {"a", "b"}).score == pytest.approx(0.5)


def test_it_refuses_an_empty_multiple_choice_and_a_foreign_key() -> None:
    with pytest.raises(AnswerInvalid, match="at least one"):
        grade_multiple_choice([], KEYS, {"a"})
    with pytest.raises(AnswerInvalid, match="does not belong"):
        grade_multiple_choice(["a", "x"], KEYS, {"a"})


# --- numeric -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("0.25", 1.0),
        ("0.26", 1.0),  # exactly at the absolute tolerance (0.26 - 0.25 is 0.010000000000000009 in binary)
        ("0.24", 1.0),
        ("0.2601", 0.0),  # just outside
        ("0.2399", 0.0),
        ("2.5e-1", 1.0),
        (" +0.25 ", 1.0),
    ],
)
def test_it_accepts_numbers_up_to_and_including_the_absolute_tolerance(text: str, score: float) -> None:
    assert grade_numeric(text, 0.25, Tolerance(absolute=0.01)).score == score


@pytest.mark.parametrize(("text", "score"), [("101", 1.0), ("99", 1.0), ("101.01", 0.0), ("98.99", 0.0)])
def test_it_applies_a_relative_tolerance_to_the_expected_value(text: str, score: float) -> None:
    assert grade_numeric(text, 100.0, Tolerance(relative=0.01)).score == score


def test_it_uses_the_larger_of_absolute_and_relative_tolerance() -> None:
    tolerance = Tolerance(absolute=1e-3, relative=0.01)
    assert grade_numeric("0.0009", 0.0, tolerance).is_correct  # relative alone would demand exactly 0
    assert not grade_numeric("0.0011", 0.0, tolerance).is_correct
    assert grade_numeric("50.5", 50.0, tolerance).is_correct  # absolute alone would refuse


def test_an_exact_tolerance_accepts_only_the_value() -> None:
    assert grade_numeric("73728", 73728.0, Tolerance()).is_correct
    assert not grade_numeric("73729", 73728.0, Tolerance()).is_correct


def test_it_states_the_tolerance_in_words() -> None:
    assert Tolerance(absolute=0.01).describe() == "within ±0.01"
    assert Tolerance(relative=0.01).describe() == "within 1% of the exact value"
    assert Tolerance(absolute=0.001, relative=0.05).describe() == "within 5% of the exact value or within ±0.001"
    assert Tolerance().describe() == "exact value"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("abc", "'abc' is not a number"),
        ("1/4", "not a number"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("1e999", "too large"),
        ("1, 2", "single number"),
        ("0x10", "not a number"),
    ],
)
def test_it_refuses_a_number_it_cannot_read(text: str, message: str) -> None:
    with pytest.raises(AnswerInvalid, match=message):
        parse_number(text)


def test_it_refuses_a_huge_answer_before_parsing_it() -> None:
    with pytest.raises(AnswerInvalid, match=f"limit is {MAX_ANSWER_CHARS}"):
        parse_number("1" * (MAX_ANSWER_CHARS + 1))
    with pytest.raises(AnswerInvalid, match="limit"):
        parse_matrix("1, " * MAX_ANSWER_CHARS, (2, 3))


# --- vectors and matrices ------------------------------------------------------------

EXPECTED = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


@pytest.mark.parametrize(
    "text",
    [
        "1, 2, 3; 4, 5, 6",
        "1 2 3\n4 5 6",
        "1,2,3\n\n4,5,6\n",
        "[[1, 2, 3], [4, 5, 6]]",
        "[1, 2, 3]\n[4, 5, 6]",
        "1, 2, 3;\n4, 5, 6;",
        "(1, 2, 3), (4, 5, 6)",
        "1.0, 2e0, 3; 4, 5.00, 6",
    ],
)
def test_it_reads_a_matrix_typed_in_any_usual_way(text: str) -> None:
    np.testing.assert_array_equal(parse_matrix(text, (2, 3)), EXPECTED)


@pytest.mark.parametrize("text", ["1, 2, 3", "1\n2\n3", "[1, 2, 3]", "1 2 3", "1; 2; 3"])
def test_it_reads_a_vector_on_one_line_or_one_entry_per_line(text: str) -> None:
    np.testing.assert_array_equal(parse_matrix(text, (3,)), [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1, 2, 3", "Expected 2 rows of 3 numbers, got 1 row"),
        ("1, 2, 3; 4, 5, 6; 7, 8, 9", "got 3 row"),
        ("1, 2, 3; 4, 5", "Row 2 has 2 number"),
        ("1, 2, x; 4, 5, 6", "'x' is not a number"),
        ("", "empty"),
    ],
)
def test_it_says_what_is_wrong_with_a_malformed_matrix(text: str, message: str) -> None:
    with pytest.raises(AnswerInvalid, match=message):
        parse_matrix(text, (2, 3))


def test_it_refuses_a_vector_with_the_wrong_number_of_entries() -> None:
    with pytest.raises(AnswerInvalid, match="Expected 3 numbers, got 4"):
        parse_matrix("1, 2, 3, 4", (3,))


def test_it_grades_a_matrix_entry_by_entry_and_names_the_entries_that_are_off() -> None:
    tolerance = Tolerance(absolute=0.01)
    assert grade_matrix("1, 2, 3; 4, 5, 6.01", EXPECTED, tolerance).is_correct
    result = grade_matrix("1, 2, 3; 4, 5.5, 6", EXPECTED, tolerance)
    assert result.score == 0.0
    assert "row 2, column 2" in result.message
    assert result.expected_text == "1, 2, 3; 4, 5, 6"


def test_it_rejects_a_transposed_weight_gradient() -> None:
    """A (3, 2) answer typed for a (2, 3) gradient is a shape error, not a silent zero."""
    with pytest.raises(AnswerInvalid, match="Expected 2 rows"):
        grade_matrix("1, 4; 2, 5; 3, 6", EXPECTED, Tolerance(absolute=0.01))


def test_it_grades_a_scalar_answer_through_the_matrix_path() -> None:
    assert grade_matrix("4", np.asarray(4.0), Tolerance()).is_correct


def test_it_formats_answers_the_way_a_learner_types_them() -> None:
    assert format_matrix(np.array([[1.0, -0.5], [2.25, 3.0]])) == "1, -0.5; 2.25, 3"
    assert format_matrix(np.array([0.1 + 0.2, 2.0])) == "0.3, 2"
    assert format_matrix(np.asarray(7.0)) == "7"
