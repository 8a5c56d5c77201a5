"""`manage.py grade <slug> <file> [--json] [--seed N]`: grade one file as a submission would be graded.

Prints the result JSON (with --json nothing else goes to stdout) and exits 0 whatever
the verdict; it exits non-zero only when the grader itself could not run (unknown
exercise, unreadable file, no sandbox, an internal error). The human summary (without
--json) shows every text that came from the submission with its control characters
escaped, so a learner's message cannot send escape sequences to the terminal; the JSON
escapes them anyway.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.result import CheckResult, GradeResult
from grader.spec import ExerciseSpec, SpecInvalid
from grader.verdicts import Verdict


def find_spec(slug: str) -> ExerciseSpec:
    """The exercise's spec from its folder under content/exercises/, else from the database."""
    folder = Path(settings.CONTENT_DIR) / "exercises" / slug
    if folder.is_dir():
        try:
            return ExerciseSpec.from_folder(folder)
        except SpecInvalid as problem:
            where = f"{folder}/exercise.yaml" + (f":{problem.line}" if problem.line else "")
            raise CommandError(f"{where}: {problem.message}") from None
    from grader.models import Exercise

    exercise = Exercise.objects.filter(slug=slug).select_related("lesson").first()
    if exercise is None:
        raise CommandError(f"no exercise '{slug}' (neither a folder under {folder.parent} nor in the database)")
    try:
        return ExerciseSpec.from_model(exercise)
    except SpecInvalid as problem:
        raise CommandError(f"exercise '{slug}': invalid spec: {problem.message}") from None


class Command(BaseCommand):
    help = "Grade a file against an exercise and print the result (exit 0 whatever the verdict)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug", help="exercise slug, e.g. linear-backward")
        parser.add_argument("file", help="Python file defining the exercise's function")
        parser.add_argument("--json", action="store_true", help="print only the result JSON")
        parser.add_argument("--seed", type=int, default=None, help="case seed (default: a fresh one)")

    def handle(self, *args: Any, **options: Any) -> None:
        from grader.engine import Engine

        spec = find_spec(options["slug"])
        path = Path(options["file"])
        try:
            source = path.read_bytes().decode("utf-8")
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            source = None
        try:
            engine = Engine.get()
        except Exception as error:
            raise CommandError(f"the grader cannot run: {error}") from None
        if source is None:
            result = _not_utf8(engine)
        else:
            result = engine.grade(spec, source, seed=options["seed"])
        if options["json"]:
            self.stdout.write(json.dumps(result.to_json()))
        else:
            self._print_human(result)
        if result.is_internal_error:
            raise CommandError("the grader failed on this file (internal_error); see the log")

    def _print_human(self, result: GradeResult) -> None:
        def write(text: str) -> None:
            self.stdout.write(printable(text))

        write(f"verdict: {result.verdict}   score: {result.score:.2f}   isolation: {result.isolation_name}")
        for check in result.checks:
            mark = "ok  " if check.passed else "FAIL"
            label = check.name + (f" [{check.case}]" if check.case else "")
            write(f"  {mark} {label}: {check.message}")
        for diagnosis in result.diagnosis:
            write(f"  diagnosis {diagnosis.output}: {diagnosis.mistake} - {diagnosis.title}")
            write(f"    {diagnosis.why}")
            for element in diagnosis.worst:
                write(f"    at {element['index']}: expected {element['expected']}, got {element['got']}")
        write(f"feedback: {result.feedback}")
        timings = ", ".join(f"{key} {value * 1000:.1f} ms" for key, value in result.timings.items())
        write(f"timings: {timings}")
        write(json.dumps(result.to_json()))


def printable(text: str) -> str:
    """`text` with every control, format or unassigned character (ESC, CR, bidi overrides...) escaped."""
    return "".join(
        char if not unicodedata.category(char).startswith("C") else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _not_utf8(engine: Any) -> GradeResult:
    message = "your file is not UTF-8 text; save it as UTF-8"
    return GradeResult(
        verdict=Verdict.SYNTAX_ERROR,
        score=0.0,
        isolation=engine.isolation,
        checks=[CheckResult("load", False, message)],
        feedback=message,
        timings={"sandbox_s": 0.0, "checks_s": 0.0, "training_s": 0.0, "total_s": 0.0},
    )
