"""Diagnosis of wrong gradients: name the likely mistake, show where it is.

(Rules are filled in below the Mistake codes; the codes are a contract shared with
the exercise kinds and the known-wrong variants' `# mistake:` headers.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
