"""Dashboard fixes found while using it as an instructor: workers panel, diagnoses order, quiz rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from dashboard import live
from grader.models import Submission, SubmissionDiagnosis
from tests.course_helpers import graded_submission, make_exercise

pytestmark = pytest.mark.django_db


def test_a_worker_node_gets_the_isolation_its_pool_processes_recorded(learner: User) -> None:
    submission = graded_submission(learner, make_exercise(), at=timezone.now() - timedelta(minutes=3), score=1.0)
    # Pool processes record "machine:pid"; the node answers pings as "name@machine".
    Submission.objects.filter(pk=submission.pk).update(
        worker="grader-7:4242", isolation="namespaces+seccomp", finished_at=timezone.now()
    )
    workers = live.workers_with_isolation(["celery@grader-7", "celery@grader-8"])
    assert [(worker.hostname, worker.isolation) for worker in workers] == [
        ("celery@grader-7", "namespaces+seccomp"),
        ("celery@grader-8", ""),
    ]


def test_named_mistakes_come_before_unknown_even_when_unknown_is_more_frequent(learner: User) -> None:
    from dashboard import aggregates, selectors

    exercise = make_exercise()
    now = timezone.now()
    for n in range(4):
        submission = graded_submission(learner, exercise, at=now - timedelta(minutes=n + 1), score=0.5)
        diagnosis = [{"output": "dw", "mistake": "unknown"}]
        if n == 0:
            diagnosis.append({"output": "dw", "mistake": "transposed"})
        SubmissionDiagnosis.store_for(submission.pk, "wrong_answer", {"diagnosis": diagnosis})
    rows = selectors.common_diagnoses(aggregates.window_of(7))
    assert [(row.mistake, row.submissions) for row in rows] == [("transposed", 1), ("unknown", 4)]


def test_quiz_rows_show_the_question_text(learner: User) -> None:
    from dashboard.quiz_stats import quiz_question_stats
    from lessons.models import Lesson
    from quizzes.models import QuizAttempt, QuizQuestion

    lesson = Lesson.objects.create(slug="backprop", title="Backprop", question="Why?")
    question = QuizQuestion.objects.create(
        lesson=lesson, key="chain-rule-q3", kind="numeric", prompt_md="What is  d/dx of\n x**2 at x = 3?",
        explanation_md=".", answer=6,
    )  # fmt: skip
    QuizAttempt.objects.create(user=learner, question=question, answer_text="6", score=1.0, is_correct=True)
    [row] = quiz_question_stats()
    assert (row.key, row.prompt) == ("chain-rule-q3", "What is d/dx of x**2 at x = 3?")


def test_a_quiz_prompts_math_is_typeset_and_never_cut_inside_a_formula(learner: User) -> None:
    from dashboard.quiz_stats import PROMPT_CHARS, QuestionStats, _shortened

    row = QuestionStats(1, "backprop", "q", "numeric", 1, 1, None, 1, prompt="For $w < 3$ and <b>x</b>, what is $dw$?")
    assert str(row.prompt_html) == (
        'For <span class="math" data-display="false">w &lt; 3</span> and &lt;b&gt;x&lt;/b&gt;, what is '
        '<span class="math" data-display="false">dw</span>?'
    )
    long = "word " * 25 + "$\\frac{\\partial L}{\\partial w} = x^\\top \\delta$ and more text after it"
    cut = _shortened(long)
    assert len(cut) <= PROMPT_CHARS and cut.count("$") % 2 == 0 and cut.endswith("…")
