"""The typed grading result (grader/result.py): its JSON, and how a stored result is read back."""

from __future__ import annotations

import json
import math

from grader.diagnosis import Diagnosis, Mistake
from grader.models import DIAGNOSIS_MISTAKE_MAX, DIAGNOSIS_OUTPUT_MAX, diagnosis_pairs
from grader.result import ArrayResult, CheckResult, GradeResult, Sample
from grader.verdicts import Isolation, Verdict


def full_result() -> GradeResult:
    return GradeResult(
        verdict=Verdict.WRONG_ANSWER,
        score=0.5,
        isolation=Isolation.NAMESPACES_SECCOMP,
        checks=[
            CheckResult("load", True, "defines f"),
            CheckResult("signature", False, "f takes 1 argument", line=3),
            CheckResult(
                "numerical",
                False,
                "against central differences",
                case="N=2",
                rel_error=math.inf,
                tolerance=1e-5,
                arrays=(
                    ArrayResult("dw", math.inf, 1e-5, False, samples=(Sample((0, 1), 0.5, math.nan),)),
                    ArrayResult("db", 1e-9, 1e-5, True),
                ),
            ),
        ],
        diagnosis=[
            Diagnosis(
                "dw",
                Mistake.TRANSPOSED,
                "dw looks transposed",
                "why",
                [{"index": [0], "expected": 1.0, "got": "nan"}],
                "hint",
                "/lessons/x/",
            ),
        ],
        feedback="1 of 3 checks passed",
        timings={"sandbox_s": 0.002, "total_s": 0.1},
        training={"steps": [0, 1], "learner_loss": [1.0, None], "reference_loss": [1.0, 0.5]},
        stdout="printed\n",
    )


def test_the_result_json_is_plain_json_and_reads_back_as_the_same_result() -> None:
    result = full_result()
    text = json.dumps(result.to_json(), allow_nan=False)  # NaN and infinities travel as strings
    again = GradeResult.from_json(json.loads(text))
    assert again.to_json() == result.to_json()
    assert again.checks[2].arrays[0].rel_error == math.inf  # type: ignore[index]
    assert again.diagnosis[0] == result.diagnosis[0]


def test_optional_check_keys_appear_only_when_set() -> None:
    checks = [check.to_json() for check in full_result().checks]
    assert checks[0] == {"name": "load", "passed": True, "message": "defines f"}
    assert checks[1] == {"name": "signature", "passed": False, "message": "f takes 1 argument", "line": 3}
    assert checks[2]["rel_error"] == "inf" and checks[2]["case"] == "N=2"
    assert checks[2]["arrays"][0]["samples"] == [{"index": [0, 1], "numerical": 0.5, "analytic": "nan"}]


def test_a_stored_result_of_the_wrong_shape_reads_as_defaults_and_loses_what_is_readable() -> None:
    read = GradeResult.from_json(
        {
            "verdict": "gold_star",
            "score": 7,
            "checks": ["not a check", {"name": "load", "passed": "yes", "message": 5, "line": True}],
            "diagnosis": ["not an object", {"output": "dw", "mistake": "invented"}, {"mistake": "sign_flipped"}],
            "timings": {"total_s": 0.5, "bad": "x"},
            "training": [1, 2],
            "isolation": 3,
        }
    )
    assert read.verdict == Verdict.INTERNAL_ERROR and read.score == 1.0 and read.isolation is None
    assert [check.to_json() for check in read.checks] == [{"name": "load", "passed": False, "message": ""}]
    assert [(d.output, d.mistake) for d in read.diagnosis] == [
        ("", Mistake.UNKNOWN),
        ("dw", Mistake.UNKNOWN),
        ("", Mistake.SIGN_FLIPPED),
    ]
    assert read.timings == {"total_s": 0.5} and read.training is None
    assert GradeResult.from_json(None) == GradeResult(Verdict.INTERNAL_ERROR, 0.0, None)


def test_diagnosis_pairs_are_distinct_and_cut_to_the_column_sizes() -> None:
    long_name = "x" * (DIAGNOSIS_OUTPUT_MAX + 50)
    diagnoses = [
        Diagnosis("dw", Mistake.TRANSPOSED, "a", "b"),
        Diagnosis("dw", Mistake.TRANSPOSED, "again", "b"),
        Diagnosis(long_name, Mistake.UNKNOWN, "c", "d"),
    ]
    pairs = diagnosis_pairs(diagnoses)
    assert pairs == {("dw", "transposed"), (long_name[:DIAGNOSIS_OUTPUT_MAX], "unknown")}
    assert all(len(mistake) <= DIAGNOSIS_MISTAKE_MAX for _, mistake in pairs)
