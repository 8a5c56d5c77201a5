"""The grading result: one typed object from the engine to the database, the pages and the API.

The engine builds a :class:`GradeResult` out of typed :class:`CheckResult` and
:class:`~grader.diagnosis.Diagnosis` values; `grader.services.submission_finish` stores its
``to_json()`` once (the verdict, score, isolation and timing columns are derived from it);
readers turn the stored JSON back into a GradeResult with :meth:`GradeResult.from_json`, the one
place that reads that JSON, and use typed attributes from then on. The JSON shape is documented in
docs/result.md.

No Django and no PyTorch here: the web process reads results without loading the grader.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grader.diagnosis import Diagnosis, Mistake
from grader.examples import json_number
from grader.verdicts import Isolation, Verdict

MAX_OUTPUT_NAME = 200


@dataclass(frozen=True)
class Sample:
    """One sampled coordinate of the numerical check: central difference against the learner's value."""

    index: tuple[int, ...]
    numerical: float
    analytic: float

    def to_json(self) -> dict[str, Any]:
        return {
            "index": list(self.index),
            "numerical": json_number(self.numerical),
            "analytic": json_number(self.analytic),
        }


@dataclass(frozen=True)
class ArrayResult:
    """One returned array in one check: its worst relative error against the tolerance."""

    name: str
    rel_error: float  # +inf when it could not be compared (wrong shape, not a number)
    tolerance: float | None
    passed: bool
    samples: tuple[Sample, ...] | None = None  # the numerical check's sampled coordinates

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"array": self.name, "rel_error": json_number(self.rel_error)}
        if self.samples is not None:
            data["samples"] = [sample.to_json() for sample in self.samples]
        data["tolerance"] = self.tolerance
        data["passed"] = self.passed
        return data


@dataclass(frozen=True)
class CheckResult:
    """One entry of the result's ``checks``: a named check, passed or not, and why.

    Optional fields appear in the JSON only when set: ``line`` (of the learner's file), ``case``
    (the edge case or the case the numerical check used), ``rel_error`` and ``tolerance`` (the
    check's worst error and its bound) and ``arrays`` (per returned array).
    """

    name: str
    passed: bool
    message: str
    line: int | None = None
    case: str | None = None
    rel_error: float | None = None
    tolerance: float | None = None
    arrays: tuple[ArrayResult, ...] | None = None

    @property
    def label(self) -> str:
        """What the check ran on, for display (the case label), or ""."""
        return self.case or ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "passed": self.passed, "message": self.message}
        if self.line is not None:
            data["line"] = self.line
        if self.case is not None:
            data["case"] = self.case
        if self.rel_error is not None:
            data["rel_error"] = json_number(self.rel_error)
        if self.tolerance is not None:
            data["tolerance"] = self.tolerance
        if self.arrays is not None:
            data["arrays"] = [array.to_json() for array in self.arrays]
        return data


@dataclass
class GradeResult:
    """The outcome of grading one submission (docs/result.md)."""

    verdict: Verdict
    score: float
    isolation: Isolation | None  # None: not known (a result stored without one)
    checks: list[CheckResult] = field(default_factory=list)
    diagnosis: list[Diagnosis] = field(default_factory=list)
    feedback: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] | None = None
    stdout: str = ""
    internal_reason: str = ""  # staff only: why the grader itself failed (verdict internal_error)

    @property
    def accepted(self) -> bool:
        return self.verdict == Verdict.ACCEPTED

    @property
    def isolation_name(self) -> str:
        """The isolation level as the JSON and the database write it ("" when not known)."""
        return self.isolation.value if self.isolation is not None else ""

    @property
    def is_internal_error(self) -> bool:
        return self.verdict == Verdict.INTERNAL_ERROR

    def to_json(self) -> dict[str, Any]:
        """The result JSON (docs/result.md); plain JSON types only (NaN and infinities as strings)."""
        data: dict[str, Any] = {
            "verdict": self.verdict.value,
            "score": self.score,
            "checks": [check.to_json() for check in self.checks],
            "feedback": self.feedback,
            "diagnosis": [entry.to_json() for entry in self.diagnosis],
            "timings": dict(self.timings),
            "isolation": self.isolation_name,
            "training": self.training,
            "stdout": self.stdout,
        }
        if self.internal_reason:
            data["internal_reason"] = self.internal_reason
        return data

    @classmethod
    def from_json(cls, data: object) -> GradeResult:
        """Read a stored result JSON; never raises, never drops what is readable.

        A field of the wrong type reads as its default (a missing or unknown verdict as
        internal_error, a score outside 0..1 clamped); a diagnosis entry that is not an object
        reads as an "unknown" mistake about output "", as does an unknown mistake code; check
        and array entries that are not objects are skipped.
        """
        item = data if isinstance(data, Mapping) else {}
        checks = [_check(entry) for entry in _list(item.get("checks")) if isinstance(entry, Mapping)]
        timings = {
            str(key): number
            for key, value in _mapping(item.get("timings")).items()
            if (number := _float(value)) is not None
        }
        training = item.get("training")
        return cls(
            verdict=_verdict(item.get("verdict")),
            score=min(1.0, max(0.0, _float(item.get("score")) or 0.0)),
            isolation=_isolation(item.get("isolation")),
            checks=checks,
            diagnosis=[_diagnosis(entry) for entry in _list(item.get("diagnosis"))],
            feedback=_str(item.get("feedback")),
            timings=timings,
            training=dict(training) if isinstance(training, Mapping) else None,
            stdout=_str(item.get("stdout")),
            internal_reason=_str(item.get("internal_reason")),
        )

    @classmethod
    def coerce(cls, result: GradeResult | Mapping[str, Any]) -> GradeResult:
        """`result` itself, or the GradeResult a result JSON reads as."""
        return result if isinstance(result, GradeResult) else cls.from_json(result)


# --- Reading JSON values (each returns its type's default for anything else) ---------------


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _float(value: object) -> float | None:
    """A number, or one of the strings "nan", "inf", "-inf" that stand for them in JSON."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _verdict(value: object) -> Verdict:
    try:
        return Verdict(_str(value))
    except ValueError:
        return Verdict.INTERNAL_ERROR


def _isolation(value: object) -> Isolation | None:
    try:
        return Isolation(_str(value))
    except ValueError:
        return None


def _array(entry: Mapping[str, Any]) -> ArrayResult:
    samples = None
    if isinstance(entry.get("samples"), list):
        samples = tuple(
            Sample(
                index=tuple(i for i in _list(sample.get("index")) if _int(i) is not None),
                numerical=_float(sample.get("numerical")) or 0.0,
                analytic=_float(sample.get("analytic")) or 0.0,
            )
            for sample in entry["samples"]
            if isinstance(sample, Mapping)
        )
    rel_error = _float(entry.get("rel_error"))
    return ArrayResult(
        name=_str(entry.get("array")) or _str(entry.get("name")),
        rel_error=math.inf if rel_error is None else rel_error,
        tolerance=_float(entry.get("tolerance")),
        passed=entry.get("passed") is True,
        samples=samples,
    )


def _check(entry: Mapping[str, Any]) -> CheckResult:
    arrays = entry.get("arrays")
    return CheckResult(
        name=_str(entry.get("name")),
        passed=entry.get("passed") is True,
        message=_str(entry.get("message")),
        line=_int(entry.get("line")),
        case=entry["case"] if isinstance(entry.get("case"), str) else None,
        rel_error=_float(entry.get("rel_error")),
        tolerance=_float(entry.get("tolerance")),
        arrays=tuple(_array(a) for a in arrays if isinstance(a, Mapping)) if isinstance(arrays, list) else None,
    )


def _diagnosis(entry: object) -> Diagnosis:
    item = entry if isinstance(entry, Mapping) else {}
    try:
        mistake = Mistake(_str(item.get("mistake")) or Mistake.UNKNOWN)
    except ValueError:
        mistake = Mistake.UNKNOWN
    output = item.get("output")
    return Diagnosis(
        output=("" if output is None else str(output))[:MAX_OUTPUT_NAME],
        mistake=mistake,
        title=_str(item.get("title")),
        why=_str(item.get("why")),
        worst=[row for row in _list(item.get("worst")) if isinstance(row, dict)],
        hint=_str(item.get("hint")),
        lesson_url=_str(item.get("lesson_url")),
        example=dict(example) if isinstance(example := item.get("example"), Mapping) else None,
    )
