"""The hint ladder of an exercise: revealed one step at a time, each reveal recorded.

An exercise carries up to three hints (`Exercise.hints`, from the `hints:` list of its
exercise.yaml): the idea, then the shapes and the chain rule, then the formula. A learner
asks for them in order; each first reveal of a level writes one HintReveal row, which
staff can read and a course assignment may charge for (`hints_revealed`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction

from grader.models import Exercise, HintReveal, Submission
from gradlab.errors import Refused
from gradlab.markdown import render_markdown

HINT_TITLES = ("The idea", "Shapes and the chain rule", "The formula")


class HintRefused(Refused):
    """A reveal that cannot happen; `message` says why in the learner's words."""


@dataclass(frozen=True)
class HintStep:
    """One rung of the ladder as a viewer sees it: `html` is None while it is still hidden."""

    level: int
    title: str
    html: str | None
    is_next: bool = False  # the hint the learner may open now

    @property
    def revealed(self) -> bool:
        return self.html is not None


def revealed_level(user: AbstractBaseUser | AnonymousUser, exercise: Exercise) -> int:
    """The highest hint level `user` has revealed for `exercise` (0 for none or an anonymous user)."""
    if not user.is_authenticated:
        return 0
    levels = HintReveal.objects.filter(user_id=user.pk, exercise=exercise).values_list("level", flat=True)
    return max(levels, default=0)


def hint_title(level: int) -> str:
    """The heading of hint `level` (1-based)."""
    return HINT_TITLES[level - 1] if level <= len(HINT_TITLES) else f"Hint {level}"


def hint_ladder(user: AbstractBaseUser | AnonymousUser, exercise: Exercise) -> list[HintStep]:
    """Every hint of the exercise in order, the revealed ones rendered, the others hidden."""
    shown = revealed_level(user, exercise)
    steps = []
    for level, text in enumerate(exercise.hints or [], start=1):
        html = render_markdown(text) if level <= shown else None
        steps.append(HintStep(level=level, title=hint_title(level), html=html, is_next=level == shown + 1))
    return steps


def hint_reveal(*, user: AbstractBaseUser, exercise: Exercise, level: int) -> int:
    """Reveal hint `level` (1-based) to `user`; record it; return the highest level now revealed.

    Hints open in order: asking for level n reveals n only once n - 1 is revealed
    (HintRefused otherwise). Revealing a level again records nothing new.
    """
    count = len(exercise.hints or [])
    if count == 0:
        raise HintRefused("This exercise has no hints.")
    if not 1 <= level <= count:
        raise HintRefused(f"There is no hint {level}: this exercise has {count}.")
    shown = revealed_level(user, exercise)
    if level > shown + 1:
        raise HintRefused(f"Open hint {shown + 1} first: hints come in order.")
    if level <= shown:
        return shown
    try:
        with transaction.atomic():
            HintReveal.objects.create(user_id=user.pk, exercise=exercise, level=level)
    except IntegrityError:
        pass  # the same reveal from a second tab: already recorded
    return level


def hints_revealed(user_id: int, exercise_id: int, *, before: datetime.datetime | None = None) -> int:
    """How many hints the user revealed for the exercise (optionally before a moment).

    The hook for charging hints: a course assignment reads this number (e.g. at its
    deadline or at the learner's first Accepted) and applies its own price per hint.
    """
    reveals = HintReveal.objects.filter(user_id=user_id, exercise_id=exercise_id)
    if before is not None:
        reveals = reveals.filter(revealed_at__lt=before)
    return reveals.count()


@dataclass(frozen=True)
class RevealSeen:
    """A hint the author of a submission revealed, as the submission's page lists it."""

    level: int
    title: str
    revealed_at: datetime.datetime
    before_submission: bool  # revealed before the submission was made (what a hint penalty charges)


@dataclass(frozen=True)
class SubmissionHints:
    """The hints of a submission's exercise its author had revealed: `reveals` by level, `available`
    the exercise's number of hints."""

    reveals: list[RevealSeen]
    available: int

    @property
    def before(self) -> int:
        """How many were revealed before the submission."""
        return sum(1 for reveal in self.reveals if reveal.before_submission)


def hints_around(submission: Submission) -> SubmissionHints:
    """Every hint the submission's author revealed for its exercise, each marked as revealed before
    the submission or after it (`revealed_at < created_at`: the reveals a hint penalty charges it)."""
    reveals = HintReveal.objects.filter(user_id=submission.user_id, exercise_id=submission.exercise_id)
    seen = [
        RevealSeen(
            level=reveal.level,
            title=hint_title(reveal.level),
            revealed_at=reveal.revealed_at,
            before_submission=reveal.revealed_at < submission.created_at,
        )
        for reveal in reveals.order_by("level")
    ]
    return SubmissionHints(reveals=seen, available=len(submission.exercise.hints or []))
