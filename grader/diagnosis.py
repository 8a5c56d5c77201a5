"""Diagnosis of wrong gradients: name the likely mistake, show where it is.

The mistake codes, a candidate value and the match test live in grader/mistakes.py (imported
here, so `from grader.diagnosis import Mistake` keeps working); the detectors that work in every
exercise by sizes and axes are in grader/diagnosis_general.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.diagnosis_general import ratio_candidate, wrong_axis_candidates
from grader.examples import format_nested, json_number
from grader.mistakes import MATCH_TOLERANCE, Candidate, Mistake, matches, scale_candidates


@dataclass
class Diagnosis:
    """One named likely mistake about one output.

    `worst` lists up to five elements as {"index": [...], "expected": float, "got": float}.
    `example` is the smallest failing case, when its arrays are small enough to show:
    {"case": label, "inputs": {name: nested lists or number}, "expected": ..., "got": ...,
    "differs": nested booleans (same shape only)}.
    """

    output: str
    mistake: Mistake
    title: str
    why: str
    worst: list[dict[str, Any]] = field(default_factory=list)
    hint: str = ""
    lesson_url: str = ""
    example: dict[str, Any] | None = None

    @property
    def example_shown(self) -> list[tuple[str, str]]:
        """The example as (label, text) rows for a page: each input, then expected and yours (differences starred)."""
        example = self.example or {}
        rows = [(f"input {name}", format_nested(value)) for name, value in (example.get("inputs") or {}).items()]
        if "expected" in example:
            rows.append((f"expected {self.output}", format_nested(example["expected"])))
        if "got" in example:
            rows.append((f"your {self.output} (* = differs)", format_nested(example["got"], example.get("differs"))))
        return rows

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "output": self.output,
            "mistake": str(self.mistake),
            "title": self.title,
            "why": self.why,
            "worst": self.worst,
            "hint": self.hint,
            "lesson_url": self.lesson_url,
        }
        if self.example is not None:
            data["example"] = self.example
        return data


# --- Rules ---------------------------------------------------------------------------------

# How close `got` must be to a candidate (relative error, grader/gradcheck.py) to name it.
WORST_COUNT = 5

GENERIC_HINTS: dict[Mistake, str] = {
    Mistake.OVERWRITTEN_NOT_ADDED: "Where several terms reach the same entry, the gradient is their sum: "
    "accumulate with += into arrays that start at zero.",
    Mistake.OUTPUTS_SWAPPED: "Compare the order of your return statement with the signature's, and check "
    "that each gradient is computed into its own variable (no name reused for another gradient).",
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
    Mistake.PRECISION_LOSS: "Keep every array in float64 (NumPy's default): no np.float32, no astype to a smaller "
    "type; check that no small constant (eps) is dropped or added.",
    Mistake.UNKNOWN: "Work the smallest failing case by hand, stage by stage, and compare each intermediate with "
    "your code's (print it: printed output is shown with the verdict); start with the entries marked as different.",
}


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
    if got.ndim == expected.ndim + 1 and got.shape[1:] == expected.shape and got.shape[0] > 1:
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

    ratio = ratio_candidate(output, expected, scale, case_args)
    if ratio is not None:
        return ratio
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
    candidates += general_candidates(output, expected_array, got_array, case_args, upstream)

    candidates += wrong_axis_candidates(output, expected_array, got_array, case_args, upstream)
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
    precise = precision_candidate(output, expected_array, got, got_array)
    if precise is not None:
        return _diagnosis(output, precise, expected=expected_array, got=got_array, hints=hints, lesson_url=lesson_url)
    scaled = scale_diagnosis(output, expected_array, got_array, case_args)
    if scaled is not None:
        return _diagnosis(output, scaled, expected=expected_array, got=got_array, hints=hints, lesson_url=lesson_url)
    if got_array.shape != expected_array.shape:
        title, why = shape_explanation(output, expected_array, got_array)
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
        why = (
            f"{describe_difference(output, expected_array, got_array, case_args, upstream)} "
            f"Relative error {rel_error(got_array, expected_array):.3g}; no common mistake explains it, so the "
            "smallest failing case is shown below."
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


# --- General detectors: what any wrong array can be checked for, whatever the exercise ---------

# Float32 carries about 7 significant digits: an answer this close everywhere lost precision, nothing more.
PRECISION_NORMWISE = 1e-4


def _same_shape_inputs(
    case_args: dict[str, Any], shape: tuple[int, ...], upstream: str | None
) -> dict[str, np.ndarray]:
    return {
        name: value
        for name, value in case_args.items()
        if name != upstream and isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.shape == shape
    }


def _neighbour_derivatives(x: np.ndarray) -> dict[str, np.ndarray]:
    """Local derivatives a learner may use for an elementwise function of x, by what they are."""
    with np.errstate(all="ignore"):
        s = 1.0 / (1.0 + np.exp(-x))
        t = np.tanh(x)
        return {
            "sigmoid'(x) = s(1 - s)": s * (1 - s),
            "tanh'(x) = 1 - tanh(x)^2": 1 - t**2,
            "ReLU'(x) = [x > 0]": (x > 0).astype(np.float64),
            "the derivative of tanh written with the sigmoid's formula, t(1 - t)": t * (1 - t),
            "the derivative of sigmoid written with tanh's formula, 1 - s^2": 1 - s**2,
            "the input instead of the function's value, x(1 - x)": x * (1 - x),
            "the input instead of the function's value, 1 - x^2": 1 - x**2,
            "the function itself, sigmoid(x), instead of its derivative": s,
            "the function itself, tanh(x), instead of its derivative": t,
            "the function itself, max(0, x), instead of its derivative": np.maximum(x, 0),
            "the constant 1 (the identity's derivative)": np.ones_like(x),
        }


def general_candidates(
    output: str, expected: np.ndarray, got: np.ndarray, case_args: dict[str, Any], upstream: str | None
) -> list[Candidate]:
    """Mistakes recognisable in any exercise: a neighbouring function's derivative, a mask off at its boundary."""
    if got.shape != expected.shape or expected.size == 0 or not np.isfinite(got).all():
        return []
    candidates: list[Candidate] = []
    dout = case_args.get(upstream) if upstream else None
    weights = dout if isinstance(dout, np.ndarray) and dout.shape == expected.shape else np.ones_like(expected)
    for name, x in _same_shape_inputs(case_args, expected.shape, upstream).items():
        family = _neighbour_derivatives(x)
        true = next((label for label, d in family.items() if matches(expected, weights * d)), None)
        if true is not None:
            for label, derivative in family.items():
                if label != true and not np.allclose(weights * derivative, expected):
                    candidates.append(
                        Candidate(
                            Mistake.WRONG_DERIVATIVE,
                            f"{output} uses the wrong local derivative",
                            f"{output} equals the upstream gradient times {label}; the expected local derivative "
                            f"is {true}. A neighbouring function's formula, or one evaluated at {name} where the "
                            "function's output belongs (or the other way round).",
                            weights * derivative,
                        )
                    )
        wrong = ~np.isclose(got, expected, rtol=1e-6, atol=1e-12)
        at_zero = x == 0
        if wrong.any() and at_zero.any() and not (wrong & ~at_zero).any():
            candidates.append(
                Candidate(
                    Mistake.WRONG_MASK,
                    f"{output} is wrong only where {name} is exactly 0",
                    f"All {int(wrong.sum())} wrong entries of {output} sit where {name} == 0, on the boundary of "
                    f"the mask: the comparison includes the boundary (>= where > belongs, or the other way "
                    "round). PyTorch takes the gradient at 0 to be 0.",
                    got,
                )
            )
    return candidates


def precision_candidate(output: str, expected: np.ndarray, got: Any, got_array: np.ndarray) -> Candidate | None:
    """A right answer computed in lower precision: float32 values, or agreement to about 7 digits only."""
    if got_array.shape != expected.shape or expected.size == 0 or not np.isfinite(got_array).all():
        return None
    scale = float(np.abs(expected).max())
    if scale == 0.0:
        return None
    normwise = float(np.abs(got_array - expected).max()) / scale
    if normwise > PRECISION_NORMWISE:
        return None
    dtype = getattr(got, "dtype", None)
    low_dtype = isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize < 8
    representable = bool(np.all(got_array.astype(np.float32).astype(np.float64) == got_array))
    if low_dtype or representable:
        where = f"was returned as {dtype}" if low_dtype else "holds only float32 values"
        return Candidate(
            Mistake.PRECISION_LOSS,
            f"{output} lost precision: float32 round-off",
            f"{output} {where}: it agrees with the expected gradient to about {_digits(normwise)} significant "
            "digits, the precision of float32, and the checks need float64. The formula looks right.",
            got_array,
        )
    return Candidate(
        Mistake.PRECISION_LOSS,
        f"{output} is right to about {_digits(normwise)} digits only",
        f"{output} agrees with the expected gradient to about {_digits(normwise)} significant digits everywhere: the "
        "formula looks right, but something loses precision on the way (a float32 array, np.float32 or astype "
        "somewhere) or a small constant such as eps is left out or added.",
        got_array,
    )


def _digits(normwise: float) -> int:
    return max(1, int(-np.log10(max(normwise, 1e-16))))


def shape_explanation(output: str, expected: np.ndarray, got: np.ndarray) -> tuple[str, str]:
    """(title, why) for a wrong shape, naming the likely cause and only what the shape shows."""
    want, have = tuple(expected.shape), tuple(got.shape)
    title = f"{output} has the wrong shape"
    base = f"{output} has shape {have}; it must have shape {want}"
    if got.size == 0 and expected.size > 0:
        return title, (
            f"{base}. It is empty: a slice selected nothing. a[p:-p] is empty when p = 0 (-0 is 0, so it means "
            "a[0:0]); slice with explicit ends such as a[p:p + H] instead."
        )
    squeezed = tuple(size for size in have if size != 1)
    if have != want and squeezed == tuple(size for size in want if size != 1) and len(have) > len(want):
        right = got.reshape(want) if got.size == expected.size else None
        verdict = (
            " With that axis removed your values are right."
            if right is not None and matches(right, expected)
            else " The values differ too (see below)."
        )
        return title, (
            f"{base}: it has an extra axis of size 1, as from a sum or mean with keepdims=True or an index with "
            f"None. The gradient of an array has that array's shape.{verdict}"
        )
    if len(have) < len(want) and tuple(size for size in want if size != 1) == have:
        return (
            title,
            f"{base}: an axis of size 1 was dropped (a squeeze, or an index with a number instead of a slice).",
        )
    if sorted(have) == sorted(want):
        return title, (
            f"{base}: the same sizes in another order, as from a transposed product or axes swapped in a reshape. "
            "The values do not match the transposed gradient either, so check the order of the factors."
        )
    if len(have) == len(want) + 1 and have[1:] == want:
        return title, (
            f"{base}: one more axis of size {have[0]} at the front, as if a per-example gradient were not summed "
            "over the batch. The values do not add up to the expected gradient, so check them too."
        )
    if len(have) == len(want) and all(h >= w for h, w in zip(have, want, strict=True)):
        extra = {h - w for h, w in zip(have, want, strict=True) if h != w}
        if len(extra) == 1 and (extra_size := extra.pop()) % 2 == 0:
            return title, (
                f"{base}: {extra_size} larger on some axes, as if a border of {extra_size // 2} on each side were "
                "never removed (the gradient of padding zeros is dropped)."
            )
    return title, f"{base}."


def describe_difference(output: str, expected: np.ndarray, got: np.ndarray, case_args: dict[str, Any],
                        upstream: str | None) -> str:  # fmt: skip
    """Where and how `got` differs from `expected`, in words (same shapes, finite values)."""
    wrong = ~np.isclose(got, expected, rtol=1e-6, atol=1e-9 * max(float(np.abs(expected).max(initial=0.0)), 1e-300))
    count, total = int(wrong.sum()), int(expected.size)
    sentences = [f"{count} of {total} entries of {output} differ from the expected gradient."]
    if count == 0:
        return sentences[0]
    for name, x in _same_shape_inputs(case_args, expected.shape, upstream).items():
        for label, region in ((f"{name} < 0", x < 0), (f"{name} > 0", x > 0)):
            if region.any() and not region.all() and np.array_equal(wrong, region):
                sentences.append(f"They are exactly the entries where {label}; everywhere else {output} is right.")
                break
    if count < total and expected.ndim >= 1:
        for axis in range(expected.ndim):
            size = expected.shape[axis]
            if size < 2:
                continue
            touched = np.flatnonzero(np.moveaxis(wrong, axis, 0).reshape(size, -1).any(axis=1))
            if len(touched) == 1:
                index = int(touched[0])
                place = "last" if index == size - 1 else ("first" if index == 0 else f"number {index}")
                sentences.append(
                    f"All of them are at index {index} of axis {axis} (the {place} of {size}); the rest is right."
                )
                break
    differing_got, differing_expected = got[wrong], expected[wrong]
    if not differing_got.any():
        sentences.append(f"Your {output} is 0 at every one of them: some contribution never reaches those entries.")
    elif np.allclose(differing_got - differing_expected, (differing_got - differing_expected).mean(), rtol=1e-6):
        offset = float((differing_got - differing_expected).mean())
        sentences.append(f"There, yours is off by the same amount, {offset:.4g}: a constant term is missing or extra.")
    elif (differing_expected != 0).all():
        ratio = differing_got / differing_expected
        if np.allclose(ratio, ratio.mean(), rtol=1e-6):
            sentences.append(f"There, yours is the expected value times {float(ratio.mean()):.4g}.")
    elif not differing_expected.any():
        sentence = "The expected gradient is 0 there (nothing flows back through those entries); yours is not"
        dout = case_args.get(upstream) if upstream else None
        if isinstance(dout, np.ndarray) and dout.shape == got.shape and (dout[wrong] != 0).all():
            ratio = differing_got / dout[wrong]
            if np.allclose(ratio, ratio.mean(), rtol=1e-6):
                sentence += f", it is {float(ratio.mean()):.4g} times {upstream}"
        sentences.append(sentence + ".")
    return " ".join(sentences)
