"""The failing case as a learner reads it: inputs, expected and got as plain JSON numbers, and text rows.

Shared by the diagnosis (grader/diagnosis.py), the checks that attach an example to a wrong
answer (grader/checks/diagnose.py) and the stored result (grader/result.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Arrays with more entries than this are not shown (the verdict page stays readable).
EXAMPLE_MAX_ENTRIES = 400


def json_number(value: float) -> float | str:
    """JSON has no NaN or infinity: those travel as the strings "nan", "inf", "-inf"."""
    if np.isfinite(value):
        return value
    return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")


def example_of(case_label: str, case_args: dict[str, Any], expected: Any, got: Any) -> dict[str, Any] | None:
    """The failing case as the learner can read it: inputs, expected, got and which entries differ."""
    expected_array = np.asarray(expected, dtype=np.float64)
    got_array = np.asarray(got, dtype=np.float64) if _numeric(got) else None
    if expected_array.size > EXAMPLE_MAX_ENTRIES or got_array is None or got_array.size > EXAMPLE_MAX_ENTRIES:
        return None
    inputs: dict[str, Any] = {}
    for name, value in case_args.items():
        if isinstance(value, np.ndarray) and value.size <= EXAMPLE_MAX_ENTRIES:
            inputs[name] = _plain(value)
        elif isinstance(value, bool | int | float):
            inputs[name] = value
        else:
            inputs[name] = f"array of shape {tuple(np.shape(value))}" if hasattr(value, "shape") else "(not shown)"
    example: dict[str, Any] = {
        "case": case_label,
        "inputs": inputs,
        "expected": _plain(expected_array),
        "got": _plain(got_array),
    }
    if got_array.shape == expected_array.shape:
        scale = max(float(np.abs(expected_array).max(initial=0.0)), 1e-300)
        differs = ~np.isclose(got_array, expected_array, rtol=1e-6, atol=1e-9 * scale)
        example["differs"] = differs.tolist()
    return example


def _numeric(value: Any) -> bool:
    try:
        return np.asarray(value).dtype.kind in "biuf"
    except Exception:
        return False


def _plain(array: np.ndarray) -> Any:
    """Nested lists of JSON numbers (NaN and infinities as strings), rounded for reading."""
    if array.ndim == 0:
        return json_number(float(array))
    return [_plain(item) for item in array]


def format_nested(value: Any, marks: Any = None) -> str:
    """Nested lists as aligned rows of numbers (4 significant digits), with `*` after the marked entries."""

    def leaf(item: Any, mark: Any) -> str:
        text = f"{item:.4g}" if isinstance(item, float) else str(item)
        return text + ("*" if mark is True else "")

    def leaves(item: Any, mark: Any) -> list[str]:
        if not isinstance(item, list):
            return [leaf(item, mark)]
        return [text for i, sub in enumerate(item) for text in leaves(sub, mark[i] if isinstance(mark, list) else None)]

    width = max((len(text) for text in leaves(value, marks)), default=0)

    def render(item: Any, mark: Any, indent: int) -> str:
        if not isinstance(item, list):
            return leaf(item, mark)
        parts = [render(sub, mark[i] if isinstance(mark, list) else None, indent + 1) for i, sub in enumerate(item)]
        if not item or not isinstance(item[0], list):
            return "[" + " ".join(part.rjust(width) for part in parts) + "]"
        return "[" + ("\n" + " " * (indent + 1)).join(parts) + "]"

    return render(value, marks, 0)
