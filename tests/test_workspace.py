"""The exercise workspace: submit into the panel, "Run on an example", the verdict in a learner's words,
Next after Accepted, and the reference solution only beside an accepted submission."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from grader import example_services
from grader.engine import Engine
from grader.example_run import example_case, run_example
from grader.models import ExampleRun, Exercise, Submission
from grader.selectors import check_title, verdict_view
from grader.spec import ExerciseSpec
from lessons.models import Lesson
from tests.submission_helpers import EXERCISES_DIR, exercise_from_folder, graded_submission, no_enqueue, solution, wrong

__all__ = ["no_enqueue"]  # autouse fixture: no message is sent to a broker

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


@pytest.fixture
def no_run_enqueue(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(example_services, "_enqueue", lambda run: sent.append(run.pk))
    return sent


@pytest.fixture
def linear(db: None) -> Exercise:
    Lesson.objects.create(slug="backpropagation", title="Backpropagation", question="?", order=1)
    return exercise_from_folder("linear-backward")


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def graded(user: User, exercise: Exercise, code: str, engine: Any) -> Submission:
    return graded_submission(engine, user, exercise, code)


# --- The example run itself (real sandbox) -----------------------------------------------------


def test_an_example_run_shows_printed_output_and_each_returned_value_beside_the_expected(engine: Engine) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES_DIR / "linear-backward")
    code = solution().replace("    dx = dout @ w.T", "    print('shapes', x.shape, w.shape)\n    dx = dout @ w.T")
    report = run_example(engine, spec, code)
    assert report["status"] == "ran" and report["message"] == ""
    assert report["stdout"].startswith("shapes (")
    assert [output["name"] for output in report["outputs"]] == ["dx", "dw", "db"]
    assert all(output["matches"] for output in report["outputs"])
    dw = report["outputs"][1]
    assert dw["got"]["type"] == "ndarray float64" and dw["got"]["shape"] == dw["expected"]["shape"]
    assert [item["name"] for item in report["inputs"]] == ["dout", "x", "w", "b"]


def test_an_example_run_names_a_transposed_result_by_its_shape(engine: Engine) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES_DIR / "linear-backward")
    report = run_example(engine, spec, wrong("linear-backward", "dw_transposed"))
    dw = next(output for output in report["outputs"] if output["name"] == "dw")
    assert not dw["matches"] and dw["problem"].startswith("shape (")
    assert next(output for output in report["outputs"] if output["name"] == "dx")["matches"]


def test_the_example_case_is_small_and_the_same_every_time() -> None:
    kind = ExerciseSpec.from_folder(EXERCISES_DIR / "linear-backward").get_kind()
    first, second = example_case(kind), example_case(kind)
    assert first.label == second.label and not first.edge
    assert all((first.args[name] == second.args[name]).all() for name in kind.arg_names)


def test_an_example_run_reports_a_syntax_error_and_a_crash_with_their_lines(engine: Engine) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES_DIR / "linear-backward")
    broken = run_example(engine, spec, "def linear_backward(dout, x, w, b)\n    return 1\n")
    assert broken["status"] == "syntax_error" and "line 1" in broken["message"]
    crash = run_example(engine, spec, "def linear_backward(dout, x, w, b):\n    print('before')\n    return 1 / 0\n")
    assert crash["status"] == "runtime_error" and "ZeroDivisionError" in crash["message"]
    assert "before" in crash["stdout"]


def test_only_the_learners_source_reaches_the_sandbox(engine: Engine) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES_DIR / "linear-backward")
    seen: list[str] = []

    class Recording:
        def session(self, spec_: ExerciseSpec, source: str) -> Any:
            seen.append(source)
            return engine.session(spec_, source)

    learner_code = wrong("linear-backward", "db_mean")
    run_example(Recording(), spec, learner_code)
    assert seen == [learner_code]
    assert solution() not in seen


# --- Views ------------------------------------------------------------------------------------


def test_run_on_an_example_is_queued_run_by_the_worker_and_polled_by_its_author_only(
    linear: Exercise,
    learner: User,
    other_learner: User,
    no_run_enqueue: list[int],
    engine: Engine,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = logged_in(learner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/exercises/linear-backward/run/", {"code": solution()}, **FETCH)
    assert response.status_code == 201
    run = ExampleRun.objects.get()
    assert no_run_enqueue == [run.pk] and Submission.objects.count() == 0  # not a submission
    assert "Running your function" in response.json()["html"]
    assert example_services.example_run_execute(run.pk) is True
    assert example_services.example_run_execute(run.pk) is False  # a second delivery does nothing
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "matches" in page and "hx-get" not in page
    assert logged_in(other_learner).get(f"/runs/{run.pk}/").status_code == 404


@override_settings(GRADER_EXAMPLE_RUNS_PER_MINUTE=2)
def test_example_runs_have_their_own_rate_limit(linear: Exercise, learner: User, no_run_enqueue: list[int]) -> None:
    client = logged_in(learner)
    for _ in range(2):
        assert client.post("/exercises/linear-backward/run/", {"code": solution()}, **FETCH).status_code == 201
    refused = client.post("/exercises/linear-backward/run/", {"code": solution()}, **FETCH)
    assert refused.status_code == 429 and "run examples 2 times per minute" in refused.json()["error"]
    assert "Retry-After" in refused
    # Submissions are not affected by the example runs.
    assert client.post("/exercises/linear-backward/", {"code": solution()}, **FETCH).status_code == 201


def test_an_anonymous_visitor_cannot_run_code(client: Client, linear: Exercise) -> None:
    response = client.post("/exercises/linear-backward/run/", {"code": solution()}, **FETCH)
    assert response.status_code == 403 and ExampleRun.objects.count() == 0


def test_submitting_from_the_workspace_returns_the_live_block_and_the_history(
    linear: Exercise, learner: User, no_enqueue: list[int]
) -> None:
    client = logged_in(learner)
    response = client.post("/exercises/linear-backward/", {"code": solution()}, **FETCH)
    assert response.status_code == 201
    data = response.json()
    submission = Submission.objects.get()
    assert data["url"] == f"/submissions/{submission.pk}/"
    assert f"/submissions/{submission.pk}/progress/?in=workspace" in data["panel_html"]
    assert f"history-status-{submission.pk}" in data["history_html"]
    empty = client.post("/exercises/linear-backward/", {"code": "   "}, **FETCH)
    assert empty.status_code == 400 and empty.json()["error"] == "Your code is empty."
    # Without the header (no JavaScript) the form still redirects to the submission page.
    plain = client.post("/exercises/linear-backward/", {"code": solution()})
    assert plain.status_code == 302 and plain["Location"].startswith("/submissions/")


def test_the_verdict_speaks_the_learners_words_and_a_skipped_check_shows_no_errors(
    linear: Exercise, learner: User, engine: Engine
) -> None:
    returns_none = "def linear_backward(dout, x, w, b):\n    return None\n"
    submission = graded(learner, linear, returns_none, engine)
    view = verdict_view(submission)
    assert view is not None
    skipped = [check for check in view.checks if check.skipped]
    assert {check.name for check in skipped} >= {"autograd", "numerical", "training"}
    assert all(check.arrays == [] and check.message.startswith("Not run") for check in skipped)
    assert "no_inplace" not in view.feedback and "failed:" in view.feedback
    page = logged_in(learner).get(f"/submissions/{submission.pk}/").content.decode()
    assert "Inputs left unchanged" in page and ">no_inplace<" not in page
    assert "not run" in page
    training_stage = page[page.index('data-stage="training"') - 60 : page.index('data-stage="training"')]
    assert "stage-skipped" in training_stage  # the training run is not ticked when it did not run


def test_a_diagnosis_hint_is_not_repeated_in_the_summary(linear: Exercise, learner: User, engine: Engine) -> None:
    submission = graded(learner, linear, wrong("linear-backward", "dw_transposed"), engine)
    view = verdict_view(submission)
    assert view is not None and view.diagnosis
    hint = view.diagnosis[0].hint
    assert hint and hint not in view.feedback
    # Check titles inside the sentence keep their proper nouns.
    signed = verdict_view(graded(learner, linear, wrong("linear-backward", "dx_sign"), engine))
    assert signed is not None and "failed: gradients against PyTorch autograd" in signed.feedback, signed.feedback


def test_check_titles_cover_every_check_name() -> None:
    assert check_title("no_inplace") == "Inputs left unchanged"
    assert check_title("edge_cases: stride 2") == "Edge case: stride 2"
    assert check_title("training") == "Training run"


def test_after_accepted_the_reference_and_next_appear_and_never_before(
    linear: Exercise, learner: User, engine: Engine
) -> None:
    nxt = exercise_from_folder("mse-loss")
    client = logged_in(learner)
    wrong_submission = graded(learner, linear, wrong("linear-backward", "dw_transposed"), engine)
    page = client.get(f"/submissions/{wrong_submission.pk}/").content.decode()
    assert "Reference solution" not in page and "dout.sum(axis=0)" not in page.split("<pre")[0]
    assert 'id="reference-code"' not in page and "Next:" not in page
    assert "dw = x.T @ dout" not in client.get("/exercises/linear-backward/").content.decode()
    accepted = graded(learner, linear, solution(), engine)
    page = client.get(f"/submissions/{accepted.pk}/").content.decode()
    assert 'id="reference-code"' in page and "b was broadcast to every row" in page  # the reference's comment
    assert "Checking the shapes" in page  # explanation.md
    assert f'href="/exercises/{nxt.slug}/"' in page and f"Next: {nxt.title}" in page
