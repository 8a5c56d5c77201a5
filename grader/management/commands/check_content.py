"""`manage.py check_content [--slug X] [--db]`: grade every reference solution and known-wrong variant.

From the folders under content/exercises/ (default), or with --db from the database
(exercises authored in the admin; the outcome is stored on each row). Prints one table
row per graded file and exits non-zero when a reference is not accepted, a variant is
accepted or not given its labelled mistake, or a folder does not parse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.validation import REFERENCE_SEEDS, ValidationReport, exercise_validate, validate_sources


class Command(BaseCommand):
    help = "Grade every reference solution (must be accepted) and known-wrong variant (must get its mistake)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--slug", action="append", help="only this exercise (repeatable)")
        parser.add_argument("--db", action="store_true", help="validate the exercises in the database instead")
        parser.add_argument("--path", default=str(settings.CONTENT_DIR), help="content folder (default: content/)")
        parser.add_argument("--seeds", type=int, default=REFERENCE_SEEDS, help="seeds for each reference solution")

    def engine(self) -> Any:
        """The grading engine, started on first use: a run that grades nothing never waits for it."""
        from grader.engine import Engine

        try:
            return Engine.get()
        except Exception as error:
            raise CommandError(f"the grader cannot run: {error}") from None

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = set(options["slug"] or [])
        failures = 0
        self.stdout.write(f"{'exercise':<30} {'file':<34} {'expected':<26} {'verdict':<14} {'diagnosed':<30} result")
        if options["db"]:
            from grader.models import Exercise

            exercises = Exercise.objects.select_related("lesson").prefetch_related("wrong_variants")
            if slugs:
                exercises = exercises.filter(slug__in=slugs)
            found = set()
            for exercise in exercises:
                found.add(exercise.slug)
                failures += self._print(exercise_validate(exercise, engine=self.engine()))
            missing = slugs - found
        else:
            from grader.content import EXERCISE_FOLDER, FileInvalid, parse_exercise_folder

            root = Path(options["path"]) / EXERCISE_FOLDER
            folders = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
            folders = [folder for folder in folders if not slugs or folder.name in slugs]
            missing = slugs - {folder.name for folder in folders}
            known = sorted(path.name for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
            for folder in folders:
                try:
                    parsed = parse_exercise_folder(folder)
                except FileInvalid as problem:
                    where = f"{problem.path}" + (f":{problem.line}" if problem.line else "")
                    self.stdout.write(f"{folder.name:<30} {where}: {problem.message}   FAIL")
                    failures += 1
                    continue
                variants = [(v.name, v.mistake.value, v.code) for v in parsed.wrong]
                report = validate_sources(
                    self.engine(), parsed.spec, parsed.solution, variants, reference_seeds=options["seeds"]
                )
                failures += self._print(report)
        if missing:
            if options["db"]:
                from grader.models import Exercise

                known = sorted(Exercise.objects.values_list("slug", flat=True))
            raise CommandError(f"no exercise named {', '.join(sorted(missing))}; known: {', '.join(known) or 'none'}")
        if failures:
            raise CommandError(f"{failures} problem(s)")
        self.stdout.write(self.style.SUCCESS("every reference accepted, every known-wrong variant diagnosed"))

    def _print(self, report: ValidationReport) -> int:
        failures = 0
        for outcome in report.outcomes:
            result = "ok" if outcome.ok else "FAIL"
            diagnosed = ",".join(dict.fromkeys(outcome.diagnosed)) or "-"
            self.stdout.write(
                f"{report.slug:<30} {outcome.name:<34} {outcome.expected or 'accepted':<26} "
                f"{outcome.verdict:<14} {diagnosed[:30]:<30} {result}"
            )
            if not outcome.ok:
                failures += 1
                self.stdout.write(f"    {outcome.message}")
        return failures
