"""Diagnosis of wrong gradients: name the likely mistake, show where it is.

(Rules are filled in below the Mistake codes; the codes are a contract shared with
the exercise kinds and the known-wrong variants' `# mistake:` headers.)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


class Mistake(StrEnum):
    """Codes of the likely mistakes the grader can name (contracts.md)."""

    TRANSPOSED = "transposed"
    SIGN_FLIPPED = "sign_flipped"
    SCALED_BY_N = "scaled_by_n"
    SCALED_BY_1_OVER_N = "scaled_by_1_over_n"
    BIAS_NOT_SUMMED = "bias_not_summed"
    MISSING_CHAIN_RULE = "missing_chain_rule"
    BN_MISSING_MEAN_VAR_TERMS = "bn_missing_mean_var_terms"
    UNBIASED_VARIANCE = "unbiased_variance"
    SOFTMAX_OVERFLOW = "softmax_overflow"
    STRIDE_IGNORED = "stride_ignored"
    PADDING_IGNORED = "padding_ignored"
    ATTENTION_SCALE_MISSING = "attention_scale_missing"
    CAUSAL_MASK_IGNORED = "causal_mask_ignored"
    INPLACE_MODIFICATION = "inplace_modification"
    WRONG_DERIVATIVE = "wrong_derivative"
    WRONG_MASK = "wrong_mask"
    MISSING_LOG_SOFTMAX_GRAD = "missing_log_softmax_grad"
    HEADS_MIXED = "heads_mixed"
    POOL_WRONG_POSITION = "pool_wrong_position"
    UNKNOWN = "unknown"


@dataclass
class Diagnosis:
    """One named likely mistake about one output.

    `worst` lists up to five elements as {"index": [...], "expected": float, "got": float}.
    """

    output: str
    mistake: Mistake
    title: str
    why: str
    worst: list[dict[str, Any]] = field(default_factory=list)
    hint: str = ""
    lesson_url: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "mistake": str(self.mistake),
            "title": self.title,
            "why": self.why,
            "worst": self.worst,
            "hint": self.hint,
            "lesson_url": self.lesson_url,
        }


# --- Rules ---------------------------------------------------------------------------------

# How close `got` must be to a candidate (relative error, grader/gradcheck.py) to name it.
MATCH_TOLERANCE = 1e-5
WORST_COUNT = 5

GENERIC_HINTS: dict[Mistake, str] = {
    Mistake.TRANSPOSED: "Write down the shape of every factor: a gradient has the shape of the input it belongs to.",
    Mistake.SIGN_FLIPPED: "Check the sign of each local derivative; the gradient points uphill, SGD subtracts it.",
    Mistake.SCALED_BY_N: "Something is summed where the forward averages: a mean over N elements gives each "
    "element a factor 1/N.",
    Mistake.SCALED_BY_1_OVER_N: "Something is averaged where the forward sums: a sum passes the upstream gradient "
    "through unchanged, without 1/N.",
    Mistake.BIAS_NOT_SUMMED: "A parameter shared by every row of the batch collects the gradient of every row: "
    "sum over the batch axis.",
    Mistake.MISSING_CHAIN_RULE: "The gradient of an input is the local derivative times the upstream gradient.",
    Mistake.WRONG_DERIVATIVE: "Re-derive the local derivative on paper and compare it with a finite difference.",
    Mistake.WRONG_MASK: "The mask must come from the forward's input (where it was positive), not from the "
    "upstream gradient.",
    Mistake.SOFTMAX_OVERFLOW: "exp(1000) overflows: subtract the row's maximum from the logits before exponentiating "
    "(softmax does not change).",
    Mistake.INPLACE_MODIFICATION: "Work on copies (x.copy(), or expressions that build new arrays) instead of "
    "writing into the arguments.",
    Mistake.UNKNOWN: "Compare your gradient with a numerical one entry by entry, starting with the worst entries.",
}


@dataclass(frozen=True)
class Candidate:
    """A named alternative value for one output array."""

    mistake: Mistake
    title: str
    why: str
    value: Any


def worst_elements(expected: Any, got: Any, count: int = WORST_COUNT) -> list[dict[str, Any]]:
    """The `count` entries with the largest |got - expected| (non-finite first), as index/expected/got."""
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if expected.shape != got.shape:
        return []
    difference = np.abs(got - expected)
    difference = np.where(np.isfinite(difference), difference, np.inf)
    order = np.argsort(-difference.ravel(), kind="stable")[:count]
    rows = []
    for flat in order:
        index = np.unravel_index(int(flat), expected.shape)
        if difference[index] == 0:
            break
        rows.append(
            {
                "index": [int(i) for i in index],
                "expected": json_number(float(expected[index])),
                "got": json_number(float(got[index])),
            }
        )
    return rows


def json_number(value: float) -> float | str:
    """JSON has no NaN or infinity: those travel as the strings "nan", "inf", "-inf"."""
    if np.isfinite(value):
        return value
    return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")


def matches(got: Any, candidate: Any, tolerance: float = MATCH_TOLERANCE) -> bool:
    # Local import: gradcheck is a sibling pure module; kept lazy to keep this module importable alone.
    from grader.gradcheck import rel_error

    return rel_error(got, candidate) <= tolerance


def scale_candidates(args: dict[str, Any]) -> dict[int, str]:
    """Batch sizes and element counts a mean or a sum could have used: {factor: how it is named}."""
    factors: dict[int, str] = {}
    for name, value in args.items():
        if isinstance(value, dict):
            continue
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            continue
        shape = value.shape
        for axis, size in enumerate(shape):
            factors.setdefault(int(size), f"{name}.shape[{axis}]")
        prefix = 1
        for axis, size in enumerate(shape[:-1]):
            prefix *= int(size)
            if axis > 0:
                factors.setdefault(prefix, f"the product of {name}.shape[:{axis + 1}]")
        factors.setdefault(int(value.size), f"{name}.size")
    factors.pop(1, None)
    factors.pop(0, None)
    return factors


def generic_candidates(output: str, expected: np.ndarray, got: np.ndarray, case_args: dict[str, Any],
                       upstream: str | None) -> list[Candidate]:  # fmt: skip
    """Candidates built from `expected` alone: sign, transposition, scale, bias not summed."""
    candidates: list[Candidate] = []
    if expected.shape == got.shape:
        candidates.append(
            Candidate(
                Mistake.SIGN_FLIPPED,
                f"{output} has the wrong sign",
                f"{output} equals minus the expected gradient everywhere.",
                -expected,
            )
        )
    if expected.ndim >= 2:
        for axes in itertools.permutations(range(expected.ndim)):
            if axes == tuple(range(expected.ndim)):
                continue
            permuted = np.transpose(expected, axes)
            if permuted.shape == got.shape and not np.array_equal(permuted, expected):
                candidates.append(
                    Candidate(
                        Mistake.TRANSPOSED,
                        f"{output} looks transposed",
                        f"{output} has the expected values with its axes swapped (shape {tuple(got.shape)}, "
                        f"expected {tuple(expected.shape)}).",
                        permuted,
                    )
                )
            elif permuted.size == got.size and got.shape == expected.shape and permuted.shape != expected.shape:
                candidates.append(
                    Candidate(
                        Mistake.TRANSPOSED,
                        f"{output} looks transposed",
                        f"{output} holds the transposed gradient reshaped to shape {tuple(expected.shape)}.",
                        permuted.reshape(expected.shape),
                    )
                )
    if got.ndim == expected.ndim + 1 and got.shape[1:] == expected.shape:
        candidates.append(
            Candidate(
                Mistake.BIAS_NOT_SUMMED,
                f"{output} is not summed over the batch",
                f"{output} has one row per example (shape {tuple(got.shape)}); the expected gradient "
                f"(shape {tuple(expected.shape)}) is their sum over axis 0.",
                got if matches(got.sum(axis=0), expected) else None,
            )
        )
    if upstream is not None and got.shape == expected.shape:
        dout = case_args.get(upstream)
        if isinstance(dout, np.ndarray) and dout.ndim == expected.ndim + 1 and dout.shape[1:] == expected.shape:
            for row in range(min(dout.shape[0], 3)):
                candidates.append(
                    Candidate(
                        Mistake.BIAS_NOT_SUMMED,
                        f"{output} is one row of {upstream}, not the sum over the batch",
                        f"{output} equals {upstream}[{row}]; the bias gradient sums {upstream} over axis 0.",
                        dout[row],
                    )
                )
    return candidates


def scale_diagnosis(output: str, expected: np.ndarray, got: np.ndarray, case_args: dict[str, Any]) -> Candidate | None:
    """If `got` is `expected` times a constant, name the constant (N, 1/N, 2, 1/2...)."""
    if got.shape != expected.shape or not np.isfinite(got).all():
        return None
    norm = float(np.dot(expected.ravel(), expected.ravel()))
    if norm == 0.0:
        return None
    scale = float(np.dot(got.ravel(), expected.ravel())) / norm
    if scale == 0.0 or not matches(got, scale * expected):
        return None
    for factor, name in sorted(scale_candidates(case_args).items()):
        if abs(scale - factor) <= MATCH_TOLERANCE * factor:
            return Candidate(
                Mistake.SCALED_BY_N,
                f"{output} is {factor} times too large",
                f"{output} equals the expected gradient times {factor} ({name}): a sum where the forward "
                f"takes a mean, or a missing division by {factor}.",
                factor * expected,
            )
        if abs(scale * factor - 1) <= MATCH_TOLERANCE:
            return Candidate(
                Mistake.SCALED_BY_1_OVER_N,
                f"{output} is {factor} times too small",
                f"{output} equals the expected gradient divided by {factor} ({name}): a mean where the "
                f"forward sums, or an extra division by {factor}.",
                expected / factor,
            )
    if expected.size == 1:
        return None  # any two scalars differ by a factor; only named factors say something
    return Candidate(
        Mistake.WRONG_DERIVATIVE,
        f"{output} is off by a constant factor of {scale:.4g}",
        f"{output} equals the expected gradient times {scale:.4g} everywhere: the shape of the derivative is "
        "right but a constant factor (such as the 2 of a square) is wrong.",
        scale * expected,
    )


def diagnose_array(
    *,
    output: str,
    expected: Any,
    got: Any,
    case_args: dict[str, Any],
    upstream: str | None,
    models: list[tuple[Mistake, str, str, Any]],
    hints: dict[Mistake, str],
    lesson_url: str,
) -> Diagnosis:
    """Name the likely mistake behind one wrong output array.

    `models` are the kind's mistake models evaluated on this case: (mistake, title, why,
    value of this output under that mistake). The first candidate that `got` matches
    within MATCH_TOLERANCE wins, in this order: the kind's models, sign, transposition,
    bias not summed, then a constant scale; otherwise "unknown" with the worst entries.
    """
    expected_array = np.asarray(expected, dtype=np.float64)
    got_array = np.asarray(got, dtype=np.float64)
    candidates = [Candidate(mistake, title, why, value) for mistake, title, why, value in models]
    candidates += generic_candidates(output, expected_array, got_array, case_args, upstream)
    for candidate in candidates:
        if candidate.value is None:
            continue
        value = np.asarray(candidate.value, dtype=np.float64)
        if not got_array.any() and value.shape == got_array.shape and _negligible(value, expected_array):
            # A mistake whose gradient is all zeros (batch norm's dx without dout) cannot be
            # told apart from code that never computed anything: say what is seen instead.
            continue
        if value.shape == got_array.shape and matches(got_array, value):
            return _diagnosis(
                output, candidate, expected=expected_array, got=got_array, hints=hints, lesson_url=lesson_url
            )
    scaled = scale_diagnosis(output, expected_array, got_array, case_args)
    if scaled is not None:
        return _diagnosis(output, scaled, expected=expected_array, got=got_array, hints=hints, lesson_url=lesson_url)
    if got_array.shape != expected_array.shape:
        why = f"{output} has shape {tuple(got_array.shape)}; it must have shape {tuple(expected_array.shape)}."
        title = f"{output} has the wrong shape"
    elif not np.isfinite(got_array).all():
        title = f"{output} has NaN or infinite entries"
        why = f"{int((~np.isfinite(got_array)).sum())} entries of {output} are NaN or infinite."
    elif not got_array.any():
        title = f"{output} is all zeros"
        why = (
            f"Every entry of {output} is 0, while the expected gradient is not: is it still the "
            "starter code's placeholder (np.zeros_like), or is it never written to?"
        )
    else:
        from grader.gradcheck import rel_error

        title = f"{output} is wrong"
        wrong = int((np.abs(got_array - expected_array) > 1e-6 * (np.abs(expected_array) + 1e-8)).sum())
        why = (
            f"{wrong} of {expected_array.size} entries of {output} differ from the expected gradient "
            f"(relative error {rel_error(got_array, expected_array):.3g}); no common mistake explains them."
        )
    unknown = Candidate(Mistake.UNKNOWN, title, why, None)
    return _diagnosis(output, unknown, expected=expected_array, got=got_array, hints=hints, lesson_url=lesson_url)


def _negligible(value: np.ndarray, expected: np.ndarray) -> bool:
    """True when `value` is zero up to rounding, on the scale of the expected gradient."""
    scale = float(np.abs(expected).max(initial=0.0)) if expected.size else 0.0
    return bool(np.all(np.isfinite(value))) and float(np.abs(value).max(initial=0.0)) <= 1e-9 * max(scale, 1e-300)


def _diagnosis(
    output: str,
    candidate: Candidate,
    *,
    expected: np.ndarray,
    got: np.ndarray,
    hints: dict[Mistake, str],
    lesson_url: str,
) -> Diagnosis:
    return Diagnosis(
        output=output,
        mistake=candidate.mistake,
        title=candidate.title,
        why=candidate.why,
        worst=worst_elements(expected, got),
        hint=hints.get(candidate.mistake) or GENERIC_HINTS.get(candidate.mistake, GENERIC_HINTS[Mistake.UNKNOWN]),
        lesson_url=lesson_url,
    )
