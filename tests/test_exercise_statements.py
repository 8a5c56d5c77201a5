"""Statements set the task (signature, shapes, conventions, what is tested); the hints carry the method.

A statement that prints the gradient formulas, or a pitfall list naming the bug, turns an
exercise into copying (issue 12). The three hints go from the idea, through shapes and the
chain rule, to the formula, revealed one at a time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grader.kinds import KINDS
from grader.spec import ExerciseSpec

EXERCISES = Path(__file__).resolve().parent.parent / "content" / "exercises"
FOLDERS = sorted(path for path in EXERCISES.iterdir() if (path / "exercise.yaml").is_file())
DISPLAY_MATH = re.compile(r"\$\$(.*?)\$\$", re.DOTALL)
GRADIENT_ON_THE_LEFT = re.compile(r"\\frac\{\\partial L\}\{\\partial|\bd[a-zA-Z_]+\s*=|\\delta_")


@pytest.mark.parametrize("folder", FOLDERS, ids=[folder.name for folder in FOLDERS])
def test_the_statement_states_the_task_without_the_gradient_formulas(folder: Path) -> None:
    statement = (folder / "statement.md").read_text(encoding="utf-8")
    kind = KINDS[ExerciseSpec.from_folder(folder).kind]
    assert f"def {kind.function_name}(" in statement, "the signature"
    assert "| argument | shape | meaning |" in statement, "the shapes"
    assert "## What is tested" in statement and "## What to return" in statement
    for heading in ("## What to derive", "## Pitfalls"):
        assert heading not in statement, f"{folder.name}: '{heading}' gives the answer away"
    for formula in DISPLAY_MATH.findall(statement):
        assert not GRADIENT_ON_THE_LEFT.search(formula), f"{folder.name} prints a gradient: {formula.strip()}"


@pytest.mark.parametrize("folder", FOLDERS, ids=[folder.name for folder in FOLDERS])
def test_three_hints_go_from_the_idea_to_the_formula(folder: Path) -> None:
    idea, shapes, formula = ExerciseSpec.from_folder(folder).hints
    assert all(len(hint.split()) >= 12 for hint in (idea, shapes)), "the first two hints explain in words"
    assert "$" in formula or "`" in formula, "the last hint states the formula"
    assert "shape" in shapes.lower() or re.search(r"\(\w+, \w+", shapes), "the second hint is about shapes"


def test_the_check_catches_a_statement_that_prints_a_gradient() -> None:
    leaked = r"$$\frac{\partial L}{\partial w} = x^\top \, dout$$"
    assert GRADIENT_ON_THE_LEFT.search(DISPLAY_MATH.findall(leaked)[0])
