"""Synthetic grading history for the dashboard benchmark: many submissions, realistic mixes.

`generate(total=100_000, days=60)` writes, with bulk_create, learners, one exercise
per catalog slug (if missing), a quiz of 20 questions with attempts, and `total`
submissions spread over the last `days` days with phase timestamps, verdicts and
diagnoses (and the SubmissionDiagnosis rows grading writes for wrong answers). Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from grader.models import Exercise, Submission, SubmissionDiagnosis, SubmissionStatus, diagnosis_pairs
from grader.result import GradeResult
from lessons.models import Lesson
from quizzes.models import QuizAttempt, QuizQuestion

CATALOG = (
    ("linear-backward", "linear_backward", ("dx", "dw", "db")),
    ("mse-loss", "mse_loss", ("loss", "dpred")),
    ("simple-nn", "simple_nn_backward", ("loss", "fc1.weight", "fc2.weight")),
    ("relu-backward", "relu_backward", ("dx",)),
    ("sigmoid-backward", "sigmoid_backward", ("dx",)),
    ("tanh-backward", "tanh_backward", ("dx",)),
    ("softmax-cross-entropy", "softmax_cross_entropy", ("loss", "dlogits")),
    ("batchnorm-backward", "batchnorm_backward", ("dx", "dgamma", "dbeta")),
    ("conv2d-backward", "conv2d_backward", ("dx", "dw", "db")),
    ("maxpool2d-backward", "maxpool2d_backward", ("dx",)),
    ("attention-backward", "attention_backward", ("dq", "dk", "dv")),
    ("multihead-attention-backward", "mha_backward", ("dx", "dw_q", "dw_o")),
)
VERDICT_WEIGHTS = {
    "accepted": 35,
    "wrong_answer": 45,
    "syntax_error": 5,
    "runtime_error": 8,
    "time_limit_exceeded": 2,
    "memory_limit_exceeded": 1,
    "output_limit_exceeded": 1,
    "forbidden": 1,
    "internal_error": 0.5,
}
MISTAKES = ("transposed", "sign_flipped", "scaled_by_n", "bias_not_summed", "missing_chain_rule", "wrong_mask")
WORKERS = ("celery@worker-1", "celery@worker-2")
LEARNERS = 2_000
QUIZ_QUESTIONS = 20
QUIZ_LEARNERS = 500
BATCH = 5_000


@contextmanager
def _explicit_created_at() -> Iterator[None]:
    """Let bulk_create keep the generated created_at (auto_now_add would overwrite it)."""
    field = Submission._meta.get_field("created_at")
    saved = field.auto_now_add
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = saved


def _exercises() -> list[tuple[Exercise, tuple[str, ...]]]:
    made = []
    for order, (slug, function, outputs) in enumerate(CATALOG, start=1):
        exercise, _ = Exercise.objects.get_or_create(
            slug=slug,
            defaults={
                "title": slug.replace("-", " ").capitalize(),
                "order": order,
                "function_name": function,
                "signature": f"{function}(...)",
                "statement_md": "Benchmark exercise.",
                "starter_code": "",
                "reference_solution": "",
            },
        )
        made.append((exercise, outputs))
    return made


def _learners(count: int) -> list[int]:
    existing = list(User.objects.filter(username__startswith="bench-").values_list("id", flat=True))
    missing = count - len(existing)
    if missing > 0:
        start = len(existing)
        User.objects.bulk_create(
            [User(username=f"bench-{start + index}", password="!") for index in range(missing)], batch_size=BATCH
        )
        existing = list(User.objects.filter(username__startswith="bench-").values_list("id", flat=True))
    return existing[:count]


def _submission(
    rng: random.Random, user_id: int, exercise: Exercise, outputs: tuple[str, ...], now: datetime, days: int
) -> Submission:
    created = now - timedelta(seconds=rng.uniform(0, days * 86_400))
    verdict = rng.choices(list(VERDICT_WEIGHTS), weights=list(VERDICT_WEIGHTS.values()))[0]
    enqueued = created + timedelta(milliseconds=rng.uniform(2, 15))
    started = enqueued + timedelta(milliseconds=rng.lognormvariate(3.5, 0.8))
    ready = started + timedelta(milliseconds=rng.uniform(1.5, 6))
    checks = training = None
    if verdict in {"accepted", "wrong_answer", "runtime_error", "time_limit_exceeded", "memory_limit_exceeded"}:
        checks = ready + timedelta(milliseconds=rng.uniform(20, 140))
    if verdict == "accepted" and checks is not None:
        training = checks + timedelta(milliseconds=rng.uniform(40, 220))
    finished = (training or checks or ready) + timedelta(milliseconds=rng.uniform(1, 5))
    diagnosis = []
    if verdict == "wrong_answer":
        for _ in range(rng.choice((1, 1, 2))):
            diagnosis.append({"output": rng.choice(outputs), "mistake": rng.choice(MISTAKES), "title": "benchmark"})
    isolation = "namespaces+seccomp"
    return Submission(
        user_id=user_id,
        exercise=exercise,
        code="def f():\n    pass\n",
        status=SubmissionStatus.FAILED if verdict == "internal_error" else SubmissionStatus.GRADED,
        stage="done",
        verdict=verdict,
        score=1.0 if verdict == "accepted" else 0.0,
        result={"verdict": verdict, "score": 1.0 if verdict == "accepted" else 0.0, "diagnosis": diagnosis},
        isolation=isolation,
        claim_count=1,
        worker=rng.choice(WORKERS),
        created_at=created,
        enqueued_at=enqueued,
        started_at=started,
        sandbox_ready_at=ready,
        checks_finished_at=checks,
        training_finished_at=training,
        finished_at=finished,
    )


def _quiz(rng: random.Random, learners: list[int]) -> None:
    lesson, _ = Lesson.objects.get_or_create(
        slug="bench-lesson", defaults={"title": "Benchmark lesson", "question": "?"}
    )
    questions = []
    for index in range(QUIZ_QUESTIONS):
        question, _ = QuizQuestion.objects.get_or_create(
            lesson=lesson,
            key=f"bench-q{index}",
            defaults={"order": index, "kind": "single_choice", "prompt_md": "?", "explanation_md": "."},
        )
        questions.append(question)
    attempts = []
    for user_id in learners[:QUIZ_LEARNERS]:
        ability = rng.random()
        for index, question in enumerate(questions):
            if rng.random() < 0.85:
                correct = rng.random() < 0.3 + 0.6 * ability * (1 - index / (2 * QUIZ_QUESTIONS))
                attempts.append(
                    QuizAttempt(
                        user_id=user_id,
                        question=question,
                        variant=0,
                        answer_text="a",
                        score=1.0 if correct else 0.0,
                        is_correct=correct,
                    )
                )
    QuizAttempt.objects.bulk_create(attempts, batch_size=BATCH, ignore_conflicts=True)


def generate(total: int = 100_000, days: int = 60, seed: int = 0) -> int:
    """Write `total` submissions (and the rows they need); return how many submissions exist now."""
    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic():
        exercises = _exercises()
        learners = _learners(LEARNERS)
        _quiz(rng, learners)
    with _explicit_created_at():
        written = 0
        while written < total:
            size = min(BATCH, total - written)
            batch = []
            for _ in range(size):
                exercise, outputs = exercises[rng.randrange(len(exercises))]
                batch.append(_submission(rng, rng.choice(learners), exercise, outputs, now, days))
            with transaction.atomic():
                Submission.objects.bulk_create(batch, batch_size=BATCH)
                # What submission_finish writes with each wrong answer (the dashboard reads it).
                SubmissionDiagnosis.objects.bulk_create(
                    [
                        SubmissionDiagnosis(
                            submission_id=row.pk,
                            exercise_id=row.exercise_id,
                            created_at=row.created_at,
                            output=output,
                            mistake=mistake,
                        )
                        for row in batch
                        if row.verdict == "wrong_answer"
                        for output, mistake in sorted(diagnosis_pairs(GradeResult.from_json(row.result).diagnosis))
                    ],
                    batch_size=BATCH,
                )
            written += size
    return Submission.objects.count()
