"""Validation of an exercise: its reference must be accepted, each known-wrong variant rejected with its mistake.

Used by `manage.py check_content` (folders and database) and by the admin: saving an
exercise calls `grader.authoring.exercise_validation_request`, which sends the
`grader.tasks.validate_exercise` task; the worker runs `exercise_validation_run`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grader.spec import ExerciseSpec, SpecInvalid
from grader.verdicts import Verdict

if TYPE_CHECKING:
    from grader.engine import Engine
    from grader.models import Exercise, ValidationStatus

logger = logging.getLogger(__name__)

# The reference is graded with this many fresh seeds: a solution that passes only on some cases is caught.
REFERENCE_SEEDS = 3


@dataclass
class VariantOutcome:
    name: str
    expected: str  # the labelled Mistake code ("" for the reference)
    verdict: str
    diagnosed: list[str]
    ok: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expected": self.expected,
            "verdict": self.verdict,
            "diagnosed": self.diagnosed,
            "ok": self.ok,
            "message": self.message,
        }


@dataclass
class ValidationReport:
    slug: str
    outcomes: list[VariantOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(outcome.ok for outcome in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "ok": self.ok, "outcomes": [outcome.to_json() for outcome in self.outcomes]}


def validate_sources(
    engine: Engine,
    spec: ExerciseSpec,
    solution: str,
    variants: Iterable[tuple[str, str, str]],
    *,
    reference_seeds: int = REFERENCE_SEEDS,
) -> ValidationReport:
    """Grade `solution` (must be accepted with every seed) and each (name, mistake, code) variant.

    A variant passes when it is not accepted and its labelled mistake is one of the
    diagnoses (the first one is reported when another was named).
    """
    report = ValidationReport(slug=spec.slug)
    for index in range(reference_seeds):
        result = engine.grade(spec, solution)
        accepted = result.verdict == Verdict.ACCEPTED
        report.outcomes.append(
            VariantOutcome(
                name="solution" if reference_seeds == 1 else f"solution (seed {index + 1})",
                expected="",
                verdict=str(result.verdict),
                diagnosed=[d.mistake.value for d in result.diagnosis],
                ok=accepted,
                message="accepted" if accepted else result.feedback,
            )
        )
        if not accepted:
            break
    for name, mistake, code in variants:
        result = engine.grade(spec, code)
        diagnosed = [d.mistake.value for d in result.diagnosis]
        rejected = result.verdict != Verdict.ACCEPTED
        named = mistake in diagnosed
        if not rejected:
            message = "accepted, but it is a known-wrong variant"
        elif not named:
            message = (
                f"rejected ({result.verdict}) but diagnosed as {', '.join(diagnosed) or 'nothing'}: {result.feedback}"
            )
        else:
            message = f"rejected ({result.verdict}), diagnosed {mistake}"
        report.outcomes.append(
            VariantOutcome(
                name=name,
                expected=mistake,
                verdict=str(result.verdict),
                diagnosed=diagnosed,
                ok=rejected and named,
                message=message,
            )
        )
    return report


def exercise_validate(exercise: Exercise, *, engine: Engine | None = None) -> ValidationReport:
    """Validate an Exercise row (its spec, reference solution and known-wrong variants); store the outcome.

    Sets `validation_status` (valid or invalid), `validation_report` (the report's
    JSON) and `validated_at`. A spec that does not parse makes the exercise invalid
    with the problem as the report's message.
    """
    from django.utils import timezone

    from grader.engine import Engine
    from grader.models import ValidationStatus

    try:
        spec = ExerciseSpec.from_model(exercise)
    except SpecInvalid as problem:
        report = ValidationReport(slug=exercise.slug)
        report.outcomes.append(VariantOutcome("spec", "", "", [], False, f"the spec is invalid: {problem.message}"))
    else:
        variants = [(v.name, v.mistake, v.code) for v in exercise.wrong_variants.all()]
        report = validate_sources(engine or Engine.get(), spec, exercise.reference_solution, variants)
    exercise.validation_status = ValidationStatus.VALID if report.ok else ValidationStatus.INVALID
    exercise.validation_report = report.to_json()
    exercise.validated_at = timezone.now()
    fields = ["validation_status", "validation_report", "validated_at", "updated_at"]
    if not report.ok and exercise.is_active:
        # Learners must not meet an exercise whose grader is known to be wrong.
        exercise.is_active = False
        exercise.withdrawn_by_validation = True
        fields += ["is_active", "withdrawn_by_validation"]
    elif report.ok and exercise.withdrawn_by_validation:
        exercise.is_active = True
        exercise.withdrawn_by_validation = False
        fields += ["is_active", "withdrawn_by_validation"]
    exercise.save(update_fields=fields)
    return report


def exercise_validation_fail(exercise_id: int, status: ValidationStatus, message: str) -> None:
    """Store on the row that the validation could not run (`status`), with `message` for the admin page."""
    from django.utils import timezone

    from grader.models import Exercise

    Exercise.objects.filter(pk=exercise_id).update(
        validation_status=status,
        validation_report={"ok": False, "message": message, "outcomes": []},
        validated_at=timezone.now(),
    )


def exercise_validation_run(exercise_id: int) -> dict[str, Any]:
    """Validate one exercise by id (the worker side); returns a summary for the worker's log."""
    from grader.models import Exercise, ValidationStatus

    exercise = Exercise.objects.filter(pk=exercise_id).first()
    if exercise is None:
        return {"exercise": exercise_id, "missing": True}
    try:
        report = exercise_validate(exercise)
    except Exception as error:
        # The grader itself failed (sandbox unavailable...): say so on the admin page.
        logger.exception("validation of exercise %s failed", exercise_id)
        exercise_validation_fail(
            exercise_id, ValidationStatus.ERROR, f"the grader could not run: {type(error).__name__}: {error}"
        )
        return {"exercise": exercise_id, "error": str(error)}
    return {"exercise": exercise_id, "ok": report.ok}
