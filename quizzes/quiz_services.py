"""Quiz services (writes) and selectors (reads).

Scoring, as stated on the quiz page:
- a fixed question (choice, numeric, matrix) takes one graded attempt: its
  explanation reveals the answer, so a second try would measure nothing;
- a parameterized question can be answered again and again, each time with new
  numbers (variant 0, 1, 2, ... of that learner); its score is the best attempt;
- a lesson's quiz score is the sum of the question scores over the number of
  active questions.

The numbers of a parameterized variant come from a seed derived server-side as
HMAC(SECRET_KEY, user id, question id, variant number). The form echoes the seed
so that a stale or tampered form is detected and refused before any grading.
Bad input raises AnswerInvalid and stores nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Max

from quizzes.models import Lesson, QuestionKind, QuizAttempt, QuizQuestion
from quizzes.parameterized import Variant, variant_for
from quizzes.quiz_content import SLOT, render_markdown
from quizzes.quiz_grading import (
    MAX_ANSWER_CHARS,
    AnswerInvalid,
    GradeResult,
    Tolerance,
    grade_matrix,
    grade_multiple_choice,
    grade_numeric,
    grade_single_choice,
)

# Anonymous readers see the variants of this pseudo user id (they cannot answer).
ANONYMOUS_USER_ID = 0
SEED_BYTES = 8

User = AuthUser | AnonymousUser


def variant_seed(user_id: int, question_id: int, variant: int) -> int:
    """The seed of one learner's variant: HMAC-SHA256 keyed by SECRET_KEY, first 8 bytes."""
    message = f"gradlab-quiz-variant:{user_id}:{question_id}:{variant}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:SEED_BYTES], "big")


def question_variant(question: QuizQuestion, user_id: int, variant: int) -> Variant:
    return variant_for(question.generator, variant_seed(user_id, question.pk, variant))


def render_parameterized_prompt(question: QuizQuestion, variant: Variant) -> str:
    """The question's prompt with the variant's numbers in its {{name}} slots, rendered to HTML."""
    return render_markdown(SLOT.sub(lambda match: variant.values[match.group(1)], question.prompt_md))


@dataclass(frozen=True)
class AnswerForm:
    """What the browser sent for one question: choice keys, typed text, and the variant it answered."""

    choices: Sequence[str] = ()
    text: str = ""
    variant: str = ""
    seed: str = ""


def _user_id(user: User) -> int:
    return int(user.pk) if user.is_authenticated and user.pk is not None else ANONYMOUS_USER_ID


def _attempt_count(user: User, question: QuizQuestion) -> int:
    if not user.is_authenticated:
        return 0
    return QuizAttempt.objects.filter(user_id=user.pk, question=question).count()


def _check_variant(user: User, question: QuizQuestion, form: AnswerForm, current: int) -> None:
    """Refuse a form whose variant is not the learner's current one, or whose seed is not theirs."""
    try:
        sent_variant = int(form.variant)
        sent_seed = int(form.seed)
    except ValueError:
        raise AnswerInvalid("This form is missing its question variant. Reload the page and answer again.") from None
    if sent_seed != variant_seed(_user_id(user), question.pk, sent_variant):
        raise AnswerInvalid("These numbers were not generated for you. Reload the page to get your own variant.")
    if sent_variant != current:
        raise AnswerInvalid(
            "You already answered this variant (perhaps in another tab). Here are new numbers: answer them instead."
        )


def _grade(question: QuizQuestion, form: AnswerForm, variant: Variant | None) -> GradeResult:
    if question.kind == QuestionKind.SINGLE_CHOICE:
        keys = [choice["key"] for choice in question.choices]
        correct = next(choice["key"] for choice in question.choices if choice["correct"])
        return grade_single_choice(form.choices, keys, correct)
    if question.kind == QuestionKind.MULTIPLE_CHOICE:
        keys = [choice["key"] for choice in question.choices]
        return grade_multiple_choice(form.choices, keys, {c["key"] for c in question.choices if c["correct"]})
    if question.kind == QuestionKind.NUMERIC:
        return grade_numeric(form.text, float(question.answer or 0.0), Tolerance.from_dict(question.tolerance))
    if question.kind == QuestionKind.MATRIX:
        return grade_matrix(
            form.text, np.asarray(question.answer, dtype=float), Tolerance.from_dict(question.tolerance)
        )
    assert variant is not None
    return grade_matrix(form.text, variant.answer, variant.tolerance)


def quiz_answer_submit(user: AuthUser, question: QuizQuestion, form: AnswerForm) -> QuizAttempt:
    """Grade one answer and store it as an attempt.

    Raises AnswerInvalid (nothing stored) for input that cannot be graded: empty,
    not a number, a matrix of the wrong size, more than MAX_ANSWER_CHARS, a choice
    of another question, a fixed question answered before, or a variant that is not
    the learner's current one.
    """
    if len(form.text) > MAX_ANSWER_CHARS or sum(len(choice) for choice in form.choices) > MAX_ANSWER_CHARS:
        raise AnswerInvalid(f"That answer is too long; the limit is {MAX_ANSWER_CHARS} characters.")
    if not question.is_active:
        raise AnswerInvalid("This question is no longer part of the quiz. Reload the page.")
    current = _attempt_count(user, question)
    variant: Variant | None = None
    if question.is_parameterized():
        _check_variant(user, question, form, current)
        variant = question_variant(question, _user_id(user), current)
    elif current > 0:
        raise AnswerInvalid(
            "You already answered this question; its score is kept. Parameterized questions can be retried."
        )
    result = _grade(question, form, variant)
    answer_text = (
        form.text
        if question.kind in (QuestionKind.NUMERIC, QuestionKind.MATRIX, QuestionKind.PARAMETERIZED)
        else ",".join(sorted(set(form.choices)))
    )
    tolerance = variant.tolerance if variant is not None else Tolerance.from_dict(question.tolerance)
    try:
        with transaction.atomic():
            return QuizAttempt.objects.create(
                user=user,
                question=question,
                variant=current,
                answer_text=answer_text,
                score=result.score,
                is_correct=result.is_correct,
                feedback={
                    "message": result.message,
                    "expected": result.expected_text,
                    "tolerance": tolerance.describe() if question.kind not in _CHOICE_KINDS else "",
                    # The numbers this attempt answered, shown next to its feedback once new ones are drawn.
                    "prompt_html": render_parameterized_prompt(question, variant) if variant is not None else "",
                },
            )
    except IntegrityError:
        # Two submissions of the same variant raced; the first one counts.
        raise AnswerInvalid("This variant was just answered (perhaps in another tab). Reload the page.") from None


_CHOICE_KINDS = (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE)


# --- Selectors -------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionState:
    """Everything the quiz page shows for one question and one learner."""

    question: QuizQuestion
    number: int
    prompt_html: str
    variant: int
    seed: int
    answer_shape: tuple[int, ...]
    tolerance_text: str
    attempts: int
    best_score: float | None
    last_attempt: QuizAttempt | None
    can_answer: bool

    @property
    def dom_id(self) -> str:
        return f"q-{self.question.key}"

    @property
    def entry_hint(self) -> str:
        """How to type the answer, e.g. '2 rows of 3 numbers'."""
        if len(self.answer_shape) == 2:
            rows, cols = self.answer_shape
            return f"{rows} rows of {cols} numbers: separate numbers with commas and rows with ';' or new lines"
        if len(self.answer_shape) == 1:
            return f"{self.answer_shape[0]} numbers separated by commas"
        return "one number"

    @property
    def last_picked(self) -> list[str]:
        """Choice keys picked in the last attempt (choice questions only)."""
        if self.last_attempt is None or self.question.kind not in _CHOICE_KINDS:
            return []
        return self.last_attempt.answer_text.split(",")

    @property
    def is_partial(self) -> bool:
        last = self.last_attempt
        return last is not None and 0 < last.score < 1

    @property
    def uses_textarea(self) -> bool:
        return len(self.answer_shape) == 2


def question_state(user: User, question: QuizQuestion, number: int, attempts: Sequence[QuizAttempt]) -> QuestionState:
    """The state of one question for `user`, given that learner's attempts on it (oldest first)."""
    count = len(attempts)
    last = attempts[-1] if attempts else None
    best = max((attempt.score for attempt in attempts), default=None)
    variant_number = count if question.is_parameterized() else 0
    seed = variant_seed(_user_id(user), question.pk, variant_number) if question.is_parameterized() else 0
    shape: tuple[int, ...] = ()
    tolerance_text = ""
    prompt_html = question.prompt_html
    if question.is_parameterized():
        variant = variant_for(question.generator, seed)
        prompt_html = render_parameterized_prompt(question, variant)
        shape = variant.answer_shape
        tolerance_text = variant.tolerance.describe()
    elif question.kind == QuestionKind.MATRIX:
        shape = np.asarray(question.answer).shape
        tolerance_text = Tolerance.from_dict(question.tolerance).describe()
    elif question.kind == QuestionKind.NUMERIC:
        tolerance_text = Tolerance.from_dict(question.tolerance).describe()
    can_answer = bool(user.is_authenticated) and (question.allows_retry() or count == 0)
    return QuestionState(
        question=question,
        number=number,
        prompt_html=prompt_html,
        variant=variant_number,
        seed=seed,
        answer_shape=tuple(int(n) for n in shape),
        tolerance_text=tolerance_text,
        attempts=count,
        best_score=best,
        last_attempt=last,
        can_answer=can_answer,
    )


def quiz_questions(lesson: Lesson) -> list[QuizQuestion]:
    return list(QuizQuestion.objects.filter(lesson=lesson, is_active=True).order_by("order", "key"))


def quiz_states_for(user: User, lesson: Lesson) -> list[QuestionState]:
    """One QuestionState per active question of the lesson's quiz, in order (two queries)."""
    questions = quiz_questions(lesson)
    attempts: Mapping[int, list[QuizAttempt]] = defaultdict(list)
    if user.is_authenticated:
        for attempt in QuizAttempt.objects.filter(user_id=user.pk, question__in=questions).order_by("created_at", "id"):
            attempts[attempt.question_id].append(attempt)
    return [question_state(user, q, number, attempts.get(q.pk, [])) for number, q in enumerate(questions, start=1)]


@dataclass(frozen=True)
class QuizScore:
    """A learner's standing in one lesson's quiz: sum of best scores over the question count."""

    points: float
    answered: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.points / self.total) if self.total else 0

    @property
    def is_complete(self) -> bool:
        return self.total > 0 and self.answered == self.total

    @property
    def points_text(self) -> str:
        return f"{self.points:.1f}".removesuffix(".0")


def quiz_score_from_states(states: Sequence[QuestionState]) -> QuizScore:
    answered = [state.best_score for state in states if state.best_score is not None]
    return QuizScore(points=float(sum(answered)), answered=len(answered), total=len(states))


def quiz_scores_for(user: User) -> dict[int, QuizScore]:
    """QuizScore per lesson id for every lesson that has a quiz (two queries whatever the lesson count)."""
    totals = dict(
        QuizQuestion.objects.filter(is_active=True)
        .values_list("lesson_id")
        .annotate(count=Count("id"))
        .values_list("lesson_id", "count")
    )
    points: dict[int, float] = defaultdict(float)
    answered: dict[int, int] = defaultdict(int)
    if user.is_authenticated:
        best = (
            QuizAttempt.objects.filter(user_id=user.pk, question__is_active=True)
            .values("question_id", "question__lesson_id")
            .annotate(best=Max("score"))
        )
        for row in best:
            points[row["question__lesson_id"]] += row["best"]
            answered[row["question__lesson_id"]] += 1
    return {
        lesson_id: QuizScore(points=points[lesson_id], answered=answered[lesson_id], total=total)
        for lesson_id, total in totals.items()
    }
