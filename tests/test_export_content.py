"""import_content followed by export_content reproduces content/ byte for byte; edited rows export canonically."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from grader.models import Exercise, KnownWrongVariant
from lessons.models import Lesson
from quizzes.models import QuizQuestion

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CONTENT = Path(__file__).resolve().parent.parent / "content"


def files_under(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def run(command: str, root: Path) -> str:
    out = StringIO()
    call_command(command, "--path", str(root), stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    """A copy of the repository's content/, imported into the test database."""
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    run("import_content", root)
    return root


def test_export_after_import_reproduces_every_file_byte_for_byte(imported: Path, tmp_path: Path) -> None:
    exported = tmp_path / "exported"
    output = run("export_content", exported)
    original, written = files_under(imported), files_under(exported)
    assert sorted(written) == sorted(original)
    different = [name for name in original if original[name] != written[name]]
    assert different == []
    assert "0 rewritten" in output
    assert len(original) > 80  # lessons, quizzes and twelve exercise folders


def test_rows_edited_after_import_are_written_canonically_and_import_back_the_same(
    imported: Path, tmp_path: Path
) -> None:
    lesson = Lesson.objects.get(slug="backpropagation")
    lesson.title = "Backpropagation, explained: again"
    lesson.save()
    question = QuizQuestion.objects.filter(lesson=lesson, kind="numeric").first()
    assert question is not None
    question.prompt_md = "A *new* prompt with $x^2$:\nsecond line.\n"
    question.save()
    exercise = Exercise.objects.get(slug="linear-backward")
    exercise.order = 7
    exercise.save()
    KnownWrongVariant.objects.filter(exercise=exercise).first().delete()  # type: ignore[union-attr]

    first = tmp_path / "first"
    output = run("export_content", first)
    assert "rewritten lessons/backpropagation.md" in output
    assert "rewritten quizzes/backpropagation.yaml" in output
    assert "rewritten exercises/linear-backward/exercise.yaml" in output
    assert "title: 'Backpropagation, explained: again'" in (first / "lessons/backpropagation.md").read_text()
    unchanged = files_under(imported)
    written = files_under(first)
    assert written["lessons/attention-mechanisms.md"] == unchanged["lessons/attention-mechanisms.md"]

    # The canonical files import back to the same rows, and a second export is identical.
    run("import_content", first)
    assert Lesson.objects.get(slug="backpropagation").title == "Backpropagation, explained: again"
    assert QuizQuestion.objects.get(pk=question.pk).prompt_md == question.prompt_md
    assert Exercise.objects.get(slug="linear-backward").order == 7
    second = tmp_path / "second"
    run("export_content", second)
    assert files_under(second) == written


def test_an_exercise_authored_in_the_admin_exports_to_a_folder_the_loader_accepts(tmp_path: Path) -> None:
    from grader.content import parse_exercise_folder

    root = tmp_path / "content"
    shutil.copytree(CONTENT / "lessons", root / "lessons")
    run("import_content", root)
    source = CONTENT / "exercises" / "relu-backward"
    exercise = Exercise.objects.create(
        slug="relu-backward",
        title="ReLU, by hand",
        lesson=Lesson.objects.get(slug="activation-functions"),
        order=3,
        difficulty="EASY",
        function_name="relu_backward",
        signature="relu_backward(dout, x) -> dx",
        statement_md=(source / "statement.md").read_text(),
        starter_code=(source / "starter.py").read_text(),
        reference_solution=(source / "solution.py").read_text(),
        spec={"kind": "relu-backward", "allowed_imports": ["numpy"]},
    )
    for index, path in enumerate(sorted((source / "wrong").glob("*.py"))):
        code = "".join(path.read_text().splitlines(keepends=True)[2:])  # authored without the header lines
        KnownWrongVariant.objects.create(
            exercise=exercise,
            name=path.stem,
            mistake=path.read_text().split()[2],
            description=f"variant {index}",
            code=code,
        )
    out = tmp_path / "out"
    run("export_content", out)
    parsed = parse_exercise_folder(out / "exercises" / "relu-backward")
    assert parsed.spec.title == "ReLU, by hand"
    assert parsed.spec.allowed_imports == ("numpy",)
    assert {variant.name for variant in parsed.wrong} == {path.stem for path in (source / "wrong").glob("*.py")}


def test_a_short_answer_edited_in_the_admin_survives_export_and_import(imported: Path, tmp_path: Path, staff) -> None:
    from django.test import Client

    lesson = Lesson.objects.get(slug="backpropagation")
    old_answer = lesson.short_answer_md.strip()
    new_answer = "Backpropagation applies the chain rule from the loss back to every weight, edited in the admin."
    client = Client()
    client.force_login(staff)
    form = {
        "title": lesson.title,
        "slug": lesson.slug,
        "difficulty": lesson.difficulty,
        "order": lesson.order,
        "summary": lesson.summary,
        "question": lesson.question,
        "body_md": lesson.body_md.replace(old_answer, new_answer),
        "references": json.dumps(lesson.references or []),
        "related": [other.pk for other in lesson.related.all()],
    }
    response = client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    lesson.refresh_from_db()
    assert lesson.short_answer_md.strip() == new_answer
    assert "edited in the admin" in lesson.short_answer_html

    exported = tmp_path / "exported"
    run("export_content", exported)
    text = (exported / "lessons" / "backpropagation.md").read_text()
    assert new_answer in text
    assert old_answer not in text
