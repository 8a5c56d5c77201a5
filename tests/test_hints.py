"""The hint ladder: loaded from exercise.yaml, exported back, revealed in order on request, each reveal recorded."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from contentsync.files import ContentInvalid
from grader.content import parse_exercise_folder
from grader.hints import HintRefused, hint_reveal, hints_revealed
from grader.models import Exercise, HintReveal, Submission
from grader.verdicts import Verdict
from gradlab.markdown import render_markdown
from tests.conftest import PASSWORD
from tests.submission_helpers import exercise_from_folder
from tests.test_exercise_content import CONTENT, content_copy, import_content

pytestmark = pytest.mark.django_db


def test_linear_backward_has_three_hints_and_a_folder_without_hints_still_loads(tmp_path: Path) -> None:
    parsed = parse_exercise_folder(CONTENT / "exercises" / "linear-backward")
    assert len(parsed.spec.hints) == 3
    root = content_copy(tmp_path, "relu-backward")
    spec_file = root / "exercises" / "relu-backward" / "exercise.yaml"
    data = yaml.safe_load(spec_file.read_text())
    data.pop("hints", None)
    spec_file.write_text(yaml.safe_dump(data))
    import_content(root)
    exercise = Exercise.objects.get(slug="relu-backward")
    assert exercise.hints == []


def test_hints_must_be_exactly_three_texts(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "linear-backward")
    spec_file = root / "exercises" / "linear-backward" / "exercise.yaml"
    text = spec_file.read_text().split("hints:")[0]
    spec_file.write_text(text + 'hints:\n  - "only one"\n')
    with pytest.raises(Exception) as raised:
        parse_exercise_folder(root / "exercises" / "linear-backward")
    assert isinstance(raised.value, ContentInvalid)
    assert "exactly 3" in raised.value.message


def test_import_stores_hints_and_explanation_and_export_writes_them_back(tmp_path: Path) -> None:
    root = content_copy(tmp_path, "linear-backward")
    import_content(root)
    exercise = Exercise.objects.get(slug="linear-backward")
    assert len(exercise.hints) == 3 and "hints" not in exercise.spec
    assert "dx = dout @ w.T" in exercise.solution_explanation_md
    exercise.hints = ["Idea, edited.", "Shapes, edited.", "Formula, edited."]
    exercise.save()
    exported = tmp_path / "exported"
    call_command("export_content", "--path", str(exported), stdout=StringIO(), stderr=StringIO())
    folder = exported / "exercises" / "linear-backward"
    assert (folder / "explanation.md").read_text() == exercise.solution_explanation_md
    again = parse_exercise_folder(folder)
    assert again.spec.hints == ("Idea, edited.", "Shapes, edited.", "Formula, edited.")
    shutil.rmtree(exported)


def test_hints_open_in_order_and_each_first_reveal_is_recorded(learner: User) -> None:
    exercise = exercise_from_folder("linear-backward")
    with pytest.raises(HintRefused, match="Open hint 1 first"):
        hint_reveal(user=learner, exercise=exercise, level=2)
    assert hint_reveal(user=learner, exercise=exercise, level=1) == 1
    assert hint_reveal(user=learner, exercise=exercise, level=1) == 1  # again: nothing new
    assert hint_reveal(user=learner, exercise=exercise, level=2) == 2
    with pytest.raises(HintRefused, match="no hint 4"):
        hint_reveal(user=learner, exercise=exercise, level=4)
    assert list(HintReveal.objects.filter(user=learner).values_list("level", flat=True)) == [1, 2]
    assert hints_revealed(learner.pk, exercise.pk) == 2
    assert hints_revealed(learner.pk, exercise.pk, before=timezone.now() - timezone.timedelta(hours=1)) == 0


def test_the_page_shows_only_revealed_hints_and_the_reveal_is_visible_to_staff(
    learner: User, other_learner: User, staff: User
) -> None:
    exercise = exercise_from_folder("linear-backward")
    client = Client()
    client.login(username=learner.username, password=PASSWORD)
    page = client.get("/exercises/linear-backward/").content.decode()
    assert "Show hint 1" in page and "Every entry of" not in page
    response = client.post("/exercises/linear-backward/hints/", {"level": "1"})
    assert response.status_code == 302 and response["Location"].endswith("#hints")
    page = client.get("/exercises/linear-backward/").content.decode()
    assert "Every entry of" in page and "Show hint 2" in page and "dw = x^" not in page
    # HTMX gets the block alone; a skipped level is refused with a message, nothing recorded.
    partial = client.post("/exercises/linear-backward/hints/", {"level": "3"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 400 and "Open hint 2 first" in partial.content.decode()
    # Another learner sees nothing revealed.
    other = Client()
    other.login(username=other_learner.username, password=PASSWORD)
    assert "Every entry of" not in other.get("/exercises/linear-backward/").content.decode()
    # Staff read the record in the admin.
    admin = Client()
    admin.login(username=staff.username, password=PASSWORD)
    listing = admin.get("/admin/grader/hintreveal/").content.decode()
    assert learner.username in listing and exercise.title in listing


def test_an_anonymous_visitor_is_asked_to_log_in_and_nothing_is_recorded(client: Client) -> None:
    exercise_from_folder("linear-backward")
    response = client.post("/exercises/linear-backward/hints/", {"level": "1"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert HintReveal.objects.count() == 0


def test_every_exercise_has_an_explanation_shown_beside_an_accepted_submission_only(learner: User) -> None:
    folders = sorted(path for path in (CONTENT / "exercises").iterdir() if path.is_dir())
    assert len(folders) >= 12
    client = Client()
    client.login(username=learner.username, password=PASSWORD)
    for folder in folders:
        explanation = parse_exercise_folder(folder).explanation_md
        assert 8 <= len(explanation.strip().splitlines()) <= 25, f"{folder.name}: explanation.md missing or not short"
        html = render_markdown(explanation)
        assert "$" not in html, f"{folder.name}: math the renderer did not recognise"
        exercise = exercise_from_folder(folder.name)
        assert exercise.solution_explanation_md == explanation
        accepted = Submission.objects.create(user=learner, exercise=exercise, code="x", verdict=Verdict.ACCEPTED.value)
        rejected = Submission.objects.create(
            user=learner, exercise=exercise, code="y", verdict=Verdict.WRONG_ANSWER.value
        )
        page = client.get(f"/submissions/{accepted.pk}/").content.decode()
        assert f'<div class="prose reference-explanation">{html}</div>' in page, folder.name
        page = client.get(f"/submissions/{rejected.pk}/").content.decode()
        assert "reference-explanation" not in page and html not in page, folder.name
