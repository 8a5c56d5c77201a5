"""Parsing of lesson files and the numerical checks behind their display formulas.

A display formula in `content/lessons/*.md` is followed by `<!-- check: NAME -->`;
NAME is a key of CHECKS. Each check receives the formula's LaTeX source, asserts
that the formula still says what the check verifies (a few fragments of it), then
verifies the mathematics numerically in float64 with PyTorch, usually against
autograd or a PyTorch reference implementation. A check raises AssertionError
when the formula is wrong or no longer matches the check.

The checks of each lesson live in the module named after it; importing them here
registers them in CHECKS.
"""

from . import (
    activation_functions,
    attention_mechanisms,
    backpropagation,
    batch_normalization,
    cnn_architecture,
)
from .parsing import LESSONS_DIR, CodeBlock, DisplayFormula, Lesson, load_lessons, parse_lesson, scan_body
from .registry import CHECKS, FormulaCheck

__all__ = [
    "CHECKS",
    "LESSONS_DIR",
    "CodeBlock",
    "DisplayFormula",
    "FormulaCheck",
    "Lesson",
    "activation_functions",
    "attention_mechanisms",
    "backpropagation",
    "batch_normalization",
    "cnn_architecture",
    "load_lessons",
    "parse_lesson",
    "scan_body",
]
