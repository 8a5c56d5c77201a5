"""Quiz services (writes) and selectors (reads).

Scoring, as stated on the quiz page:
- a fixed question (choice, numeric, matrix) can be answered until it is right, up
  to the quiz's QuizPolicy.max_attempts (default 3); attempt n earns its grade times
  the policy's credit n (default 1, 1/2, 1/4). The answer and the explanation are
  shown only once the question is right or out of attempts;
- a parameterized question can be answered again and again, each time with new
  numbers (variant 0, 1, 2, ... of that learner), at full credit;
- a question's score is its best attempt; a lesson's quiz score is the sum of the
  question scores over the number of active questions.

Choices are shown in an order of their own for each learner and question (a
permutation seeded like the variants, stable across visits), stored with each attempt.

The numbers of a parameterized variant come from a seed derived server-side as
HMAC(SECRET_KEY, user id, question id, variant number). The form echoes the seed
so that a stale or tampered form is detected and refused before any grading.
Bad input raises AnswerInvalid and stores nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q

from lessons.models import Lesson
from quizzes.content import SLOT, render_markdown
from quizzes.grading import (
    MAX_ANSWER_CHARS,
    AnswerInvalid,
    QuizGrade,
    Tolerance,
    grade_matrix,
    grade_multiple_choice,
    grade_numeric,
    grade_single_choice,
)
from quizzes.models import DEFAULT_CREDITS, DEFAULT_MAX_ATTEMPTS, QuestionKind, QuizAttempt, QuizPolicy, QuizQuestion
from quizzes.parameterized import Variant, variant_for

# Anonymous readers see the variants of this pseudo user id (they cannot answer).
logger = logging.getLogger(__name__)

ANONYMOUS_USER_ID = 0
SEED_BYTES = 8

User = AuthUser | AnonymousUser


def variant_seed(user_id: int, question_id: int, variant: int) -> int:
    """The seed of one learner's variant: HMAC-SHA256 keyed by SECRET_KEY, first 8 bytes."""
    message = f"gradlab-quiz-variant:{user_id}:{question_id}:{variant}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:SEED_BYTES], "big")


def choice_order(user_id: int, question: QuizQuestion) -> list[str]:
    """The choice keys of a question in the order this learner sees them (stable, per learner and question)."""
    message = f"gradlab-quiz-choices:{user_id}:{question.pk}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    keys = [choice["key"] for choice in question.choices or []]
    order = np.random.default_rng(int.from_bytes(digest[:SEED_BYTES], "big")).permutation(len(keys))
    return [keys[int(index)] for index in order]


def ordered_choices(question: QuizQuestion, order: Sequence[str]) -> list[dict[str, object]]:
    """The question's choices in `order` (keys missing from it, e.g. added since, come last)."""
    by_key = {choice["key"]: choice for choice in question.choices or []}
    shown = [by_key[key] for key in order if key in by_key]
    return shown + [choice for key, choice in by_key.items() if key not in order]


def quiz_policy(lesson_id: int) -> QuizPolicy:
    """The lesson's QuizPolicy, or an unsaved one with the defaults."""
    policy = QuizPolicy.objects.filter(lesson_id=lesson_id).first()
    return policy or QuizPolicy(lesson_id=lesson_id, max_attempts=DEFAULT_MAX_ATTEMPTS, credits=list(DEFAULT_CREDITS))


class QuestionUnavailable(Exception):
    """A parameterized question whose numbers cannot be drawn: its generator is gone or fails."""


def question_variant(question: QuizQuestion, user_id: int, variant: int) -> Variant:
    """The numbers of one learner's variant; QuestionUnavailable (logged) if they cannot be drawn."""
    seed = variant_seed(user_id, question.pk, variant)
    try:
        return variant_for(question.generator, seed)
    except Exception as error:  # an unknown name (KeyError) or any failure of the author's generator
        logger.exception("quiz question %s: generator %r failed for seed %s", question.pk, question.generator, seed)
        raise QuestionUnavailable(f"{type(error).__name__} in generator {question.generator!r}") from error


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


def _grade(question: QuizQuestion, form: AnswerForm, variant: Variant | None) -> QuizGrade:
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
    of another question, a fixed question already right or out of attempts, or a
    variant that is not the learner's current one.
    """
    if len(form.text) > MAX_ANSWER_CHARS or sum(len(choice) for choice in form.choices) > MAX_ANSWER_CHARS:
        raise AnswerInvalid(f"That answer is too long; the limit is {MAX_ANSWER_CHARS} characters.")
    if not question.is_active:
        raise AnswerInvalid("This question is no longer part of the quiz. Reload the page.")
    current = _attempt_count(user, question)
    variant: Variant | None = None
    credit = 1.0
    if question.is_parameterized():
        _check_variant(user, question, form, current)
        try:
            variant = question_variant(question, _user_id(user), current)
        except QuestionUnavailable:
            raise AnswerInvalid(
                "This question cannot be answered right now: its numbers could not be generated. "
                "Nothing was recorded; tell your instructor."
            ) from None
    else:
        policy = quiz_policy(question.lesson_id)
        if QuizAttempt.objects.filter(user_id=user.pk, question=question, is_correct=True).exists():
            raise AnswerInvalid("You already answered this question correctly; its score is kept.")
        if current >= policy.max_attempts:
            raise AnswerInvalid(
                f"You have used all {policy.max_attempts} attempts at this question; your best score is kept."
            )
        credit = policy.credit(current)
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
                score=result.score * credit,
                is_correct=result.is_correct,
                choice_order=choice_order(_user_id(user), question) if question.is_choice() else [],
                feedback={
                    "message": result.message,
                    "grade": result.score,
                    "credit": credit,
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
    choices: list[dict[str, object]]
    max_attempts: int | None  # None: unlimited (parameterized)
    next_credit: float
    # Makes the card's element ids unique where one question is shown several times (an author's preview).
    id_suffix: str = ""
    # A parameterized question whose numbers cannot be drawn (QuestionUnavailable): shown as such, not answerable.
    unavailable: bool = False
    # Finished: answered right, or out of attempts. A wrong answer with attempts left is not.
    done: bool = False

    @property
    def attempts_left(self) -> int | None:
        return None if self.max_attempts is None else max(self.max_attempts - self.attempts, 0)

    @property
    def is_settled(self) -> bool:
        """The answer and explanation may be shown: right, out of attempts, or parameterized (numbers change)."""
        last = self.last_attempt
        if last is None:
            return False
        return self.question.is_parameterized() or last.is_correct or self.attempts_left == 0

    @property
    def next_credit_percent(self) -> int:
        return round(100 * self.next_credit)

    @property
    def dom_id(self) -> str:
        return f"q-{self.question.key}{self.id_suffix}"

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


@dataclass(frozen=True)
class Presentation:
    """What a learner sees of a question before answering, apart from its choices."""

    prompt_html: str
    answer_shape: tuple[int, ...]  # () for one number (and for choice questions)
    tolerance_text: str  # "" for choice questions


def question_presentation(question: QuizQuestion, variant: Variant | None) -> Presentation:
    """The prompt, answer shape and tolerance text of `question`; a parameterized one needs its `variant`."""
    if question.is_parameterized():
        assert variant is not None
        return Presentation(
            prompt_html=render_parameterized_prompt(question, variant),
            answer_shape=tuple(int(n) for n in variant.answer_shape),
            tolerance_text=variant.tolerance.describe(),
        )
    shape: tuple[int, ...] = ()
    tolerance_text = ""
    if question.kind == QuestionKind.MATRIX:
        shape = tuple(int(n) for n in np.asarray(question.answer).shape)
    if question.kind in (QuestionKind.MATRIX, QuestionKind.NUMERIC):
        tolerance_text = Tolerance.from_dict(question.tolerance).describe()
    return Presentation(prompt_html=question.prompt_html, answer_shape=shape, tolerance_text=tolerance_text)


def question_state(
    user: User,
    question: QuizQuestion,
    number: int,
    attempts: Sequence[QuizAttempt],
    policy: QuizPolicy | None = None,
) -> QuestionState:
    """The state of one question for `user`, given that learner's attempts on it (oldest first)."""
    policy = policy or quiz_policy(question.lesson_id)
    count = len(attempts)
    last = attempts[-1] if attempts else None
    best = max((attempt.score for attempt in attempts), default=None)
    variant_number = count if question.is_parameterized() else 0
    seed = variant_seed(_user_id(user), question.pk, variant_number) if question.is_parameterized() else 0
    unavailable = False
    try:
        variant = question_variant(question, _user_id(user), variant_number) if question.is_parameterized() else None
        shown = question_presentation(question, variant)
    except QuestionUnavailable:
        unavailable, shown = True, Presentation(prompt_html="", answer_shape=(), tolerance_text="")
    if question.is_parameterized():
        max_attempts, next_credit, open_ = None, 1.0, True
    else:
        max_attempts, next_credit = policy.max_attempts, policy.credit(count)
        open_ = count < policy.max_attempts and not any(attempt.is_correct for attempt in attempts)
    done = any(attempt.is_correct for attempt in attempts) or (max_attempts is not None and count >= max_attempts)
    can_answer = bool(user.is_authenticated) and open_ and not unavailable
    choices: list[dict[str, object]] = []
    if question.is_choice():
        order = last.choice_order if last is not None and last.choice_order else choice_order(_user_id(user), question)
        choices = ordered_choices(question, order)
    return QuestionState(
        question=question,
        number=number,
        prompt_html=shown.prompt_html,
        variant=variant_number,
        seed=seed,
        answer_shape=shown.answer_shape,
        tolerance_text=shown.tolerance_text,
        attempts=count,
        best_score=best,
        last_attempt=last,
        can_answer=can_answer,
        choices=choices,
        max_attempts=max_attempts,
        next_credit=next_credit,
        unavailable=unavailable,
        done=done,
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
    policy = quiz_policy(lesson.pk)
    return [
        question_state(user, q, number, attempts.get(q.pk, []), policy) for number, q in enumerate(questions, start=1)
    ]


@dataclass(frozen=True)
class QuizScore:
    """A learner's standing in one lesson's quiz: sum of best scores over the question count.

    `answered` counts the questions tried at least once; `done` those finished (right, or
    out of attempts). A wrong answer with attempts left is answered but not done.
    """

    points: float
    answered: int
    total: int
    done: int = 0

    @property
    def percent(self) -> int:
        return round(100 * self.points / self.total) if self.total else 0

    @property
    def is_complete(self) -> bool:
        return self.total > 0 and self.done == self.total

    @property
    def to_retry(self) -> int:
        """Questions tried but not finished: a wrong answer with attempts left."""
        return self.answered - self.done

    @property
    def points_text(self) -> str:
        return f"{self.points:.1f}".removesuffix(".0")


def quiz_score_from_states(states: Sequence[QuestionState]) -> QuizScore:
    answered = [state.best_score for state in states if state.best_score is not None]
    done = sum(1 for state in states if state.done)
    return QuizScore(points=float(sum(answered)), answered=len(answered), total=len(states), done=done)


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
    done: dict[int, int] = defaultdict(int)
    if user.is_authenticated:
        best = (
            QuizAttempt.objects.filter(user_id=user.pk, question__is_active=True)
            .values("question_id", "question__lesson_id", "question__kind")
            .annotate(limit=Max("question__lesson__quiz_policy__max_attempts"))
            .annotate(best=Max("score"), tries=Count("id"), right=Count("id", filter=Q(is_correct=True)))
        )
        for row in best:
            lesson_id = row["question__lesson_id"]
            points[lesson_id] += row["best"]
            answered[lesson_id] += 1
            limit = row["limit"] or DEFAULT_MAX_ATTEMPTS
            limited = row["question__kind"] != QuestionKind.PARAMETERIZED
            done[lesson_id] += int(row["right"] > 0 or (limited and row["tries"] >= limit))
    return {
        lesson_id: QuizScore(points=points[lesson_id], answered=answered[lesson_id], total=total, done=done[lesson_id])
        for lesson_id, total in totals.items()
    }
