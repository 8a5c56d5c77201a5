"""What an exercise's verdicts depend on, as one digest; when it changes, past verdicts may be stale.

A grading is decided by the spec (cases, tolerances, limits, training run), the reference
solution and the known-wrong variants that validation holds it to. `exercise_grading_touch`
is called wherever those are written (the admin's save, `import_content`): when the digest
moves, `Exercise.grading_changed_at` records the moment, and course staff are told which
past submissions were graded before it (courses.selectors.outdated_items), with a regrade
preview one click away. The statement, hints and title do not count: they change no verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from grader.models import Exercise


def _code(text: str) -> str:
    """Source as it runs: a form's stripped ends, CRLF line ends and trailing blanks change nothing."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


def grading_digest(spec: dict[str, Any], reference_solution: str, variants: Iterable[tuple[str, str, str]]) -> str:
    """SHA-256 of the spec (key order ignored), the reference and the (name, mistake, code) variants."""
    payload = {
        "spec": spec,
        "reference": _code(reference_solution),
        "variants": sorted([name, mistake, _code(code)] for name, mistake, code in variants),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def exercise_grading_digest(exercise: Exercise) -> str:
    variants = exercise.wrong_variants.values_list("name", "mistake", "code")
    return grading_digest(exercise.spec, exercise.reference_solution, variants)


def exercise_grading_touch(exercise: Exercise) -> bool:
    """Store the exercise's grading digest; True (and `grading_changed_at` = now) when it moved.

    The first digest of an exercise (a new one, or one stored before digests existed) is a
    start, not a change.
    """
    digest = exercise_grading_digest(exercise)
    if digest == exercise.grading_digest:
        return False
    changed = bool(exercise.grading_digest)
    exercise.grading_digest = digest
    fields = ["grading_digest"]
    if changed:
        exercise.grading_changed_at = timezone.now()
        fields.append("grading_changed_at")
    Exercise.objects.filter(pk=exercise.pk).update(**{name: getattr(exercise, name) for name in fields})
    return changed
