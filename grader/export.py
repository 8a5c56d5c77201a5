"""Exercises written back as `content/exercises/<slug>/` folders (`manage.py export_content`).

The writer side of grader/content.py, run by contentsync/export.py (settings.CONTENT_EXPORTERS):
`exercise.yaml` is the recorded text when it still parses to the row's spec, a canonical
file otherwise; the statement, starter, solution, explanation and known-wrong variants are
stored verbatim and written back as they are.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from contentsync.files import ContentInvalid, dump_yaml
from grader.models import Exercise
from grader.spec import ExerciseSpec, SpecInvalid

if TYPE_CHECKING:
    from contentsync.export import Export


def export_exercises(export: Export) -> None:
    """Write every active exercise's folder."""
    for exercise in Exercise.objects.filter(is_active=True).select_related("lesson").prefetch_related("wrong_variants"):
        folder = f"exercises/{exercise.slug}"
        spec = exercise_spec_json(exercise)
        export.parsed_file(f"{folder}/exercise.yaml", spec, partial(exercise_canonical, spec), exercise_spec_of_text)
        export.stored_file(f"{folder}/statement.md", exercise.statement_md)
        export.stored_file(f"{folder}/starter.py", exercise.starter_code)
        export.stored_file(f"{folder}/solution.py", exercise.reference_solution)
        if exercise.solution_explanation_md:
            export.stored_file(f"{folder}/explanation.md", exercise.solution_explanation_md)
        for variant in exercise.wrong_variants.all():
            export.stored_file(f"{folder}/wrong/{variant.name}.py", _variant_text(variant))


def exercise_spec_json(exercise: Any) -> dict[str, Any]:
    """The exercise's spec with the row's own fields applied (they win: the admin edits those)."""
    data = dict(exercise.spec or {})
    data.update(
        slug=exercise.slug,
        title=exercise.title,
        lesson=exercise.lesson.slug if exercise.lesson else data.get("lesson", ""),
        order=exercise.order,
        difficulty=exercise.difficulty,
        function=exercise.function_name,
        signature=exercise.signature,
    )
    data.setdefault("kind", exercise.slug)
    data.pop("hints", None)
    if exercise.hints:
        data["hints"] = list(exercise.hints)
    return ExerciseSpec.from_json(data).to_json()


def exercise_spec_of_text(text: str) -> dict[str, Any]:
    try:
        return ExerciseSpec.from_yaml(text).to_json()
    except SpecInvalid as problem:
        raise ContentInvalid(problem.message, problem.line) from None


def exercise_canonical(spec: dict[str, Any]) -> str:
    return dump_yaml(spec)


def _variant_text(variant: Any) -> str:
    """The variant's file: its code, with the mistake and description header lines the loader requires."""
    code: str = variant.code
    lines = code.splitlines(keepends=True)
    if lines and lines[0].startswith("# mistake:"):
        header_mistake = lines[0].split(":", 1)[1].strip()
        if header_mistake == variant.mistake:
            return code
        lines = lines[2:] if len(lines) > 1 and lines[1].startswith("# description:") else lines[1:]
    description = " ".join(variant.description.split()) or variant.name.replace("_", " ")
    return f"# mistake: {variant.mistake}\n# description: {description}\n" + "".join(lines)
