"""`manage.py grade <slug> <file> [--json] [--seed N]`: grade one file as a submission would be graded.

Prints the result JSON (with --json nothing else goes to stdout) and exits 0 whatever
the verdict; it exits non-zero only when the grader itself could not run (unknown
exercise, unreadable file, no sandbox, an internal error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.spec import ExerciseSpec
from grader.verdicts import Verdict
from gradlab.contentio import ContentInvalid


def find_spec(slug: str) -> ExerciseSpec:
    """The exercise's spec from its folder under content/exercises/, else from the database."""
    folder = Path(settings.CONTENT_DIR) / "exercises" / slug
    if folder.is_dir():
        try:
            return ExerciseSpec.from_folder(folder)
        except ContentInvalid as problem:
            where = f"{folder}/exercise.yaml" + (f":{problem.line}" if problem.line else "")
            raise CommandError(f"{where}: {problem.message}") from None
    from grader.models import Exercise

    exercise = Exercise.objects.filter(slug=slug).select_related("lesson").first()
    if exercise is None:
        raise CommandError(f"no exercise '{slug}' (neither a folder under {folder.parent} nor in the database)")
    try:
        return ExerciseSpec.from_model(exercise)
    except ContentInvalid as problem:
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
            result_json = _not_utf8(engine)
        else:
            result_json = engine.grade(spec, source, seed=options["seed"]).to_json()
        if options["json"]:
            self.stdout.write(json.dumps(result_json))
        else:
            self._print_human(result_json)
        if result_json["verdict"] == Verdict.INTERNAL_ERROR:
            raise CommandError("the grader failed on this file (internal_error); see the log")

    def _print_human(self, result: dict[str, Any]) -> None:
        write = self.stdout.write
        write(f"verdict: {result['verdict']}   score: {result['score']:.2f}   isolation: {result['isolation']}")
        for check in result["checks"]:
            mark = "ok  " if check["passed"] else "FAIL"
            label = check["name"] + (f" [{check['case']}]" if check.get("case") else "")
            write(f"  {mark} {label}: {check['message']}")
        for diagnosis in result["diagnosis"]:
            write(f"  diagnosis {diagnosis['output']}: {diagnosis['mistake']} - {diagnosis['title']}")
            write(f"    {diagnosis['why']}")
            for element in diagnosis["worst"]:
                write(f"    at {element['index']}: expected {element['expected']}, got {element['got']}")
        write(f"feedback: {result['feedback']}")
        timings = ", ".join(f"{key} {value * 1000:.1f} ms" for key, value in result["timings"].items())
        write(f"timings: {timings}")
        write(json.dumps(result))


def _not_utf8(engine: Any) -> dict[str, Any]:
    message = "your file is not UTF-8 text; save it as UTF-8"
    return {
        "verdict": Verdict.SYNTAX_ERROR.value,
        "score": 0.0,
        "checks": [{"name": "load", "passed": False, "message": message}],
        "feedback": message,
        "diagnosis": [],
        "timings": {"sandbox_s": 0.0, "checks_s": 0.0, "training_s": 0.0, "total_s": 0.0},
        "isolation": str(engine.isolation),
        "training": None,
        "stdout": "",
    }
