"""The mistake codes and the pieces every detector shares: a candidate value and the match test.

The codes are a contract shared with the exercise kinds and the known-wrong variants'
`# mistake:` headers. grader/diagnosis.py and grader/diagnosis_general.py build on this module
(and grader.diagnosis re-exports its names).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

MATCH_TOLERANCE = 1e-5


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
    FLIPPED_KERNEL = "flipped_kernel"
    PRECISION_LOSS = "precision_loss"
    OUTPUTS_SWAPPED = "outputs_swapped"
    OVERWRITTEN_NOT_ADDED = "overwritten_not_added"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Candidate:
    """A named alternative value for one output array."""

    mistake: Mistake
    title: str
    why: str
    value: Any


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
