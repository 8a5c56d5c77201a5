"""Item analysis of the quiz questions for the dashboard: share correct and discrimination. Two queries."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Case, IntegerField, Max, When
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from quizzes.models import QuizAttempt, QuizQuestion

DISCRIMINATION_GROUP_SHARE = 0.27


@dataclass(frozen=True)
class QuestionStats:
    """Item analysis of one quiz question.

    `percent_correct`: of the learners who answered it, the share whose best attempt
    is correct. `discrimination`: share correct in the upper group minus share
    correct in the lower group, where the groups are the top and bottom 27% of the
    learners who took the lesson's quiz, ranked by their total quiz score (sum of
    best scores); a learner in a group who skipped the question counts as not
    correct. None when fewer than two learners took the quiz.
    """

    question_id: int
    lesson_slug: str
    key: str
    kind: str
    learners: int
    correct: int
    discrimination: float | None
    group_size: int
    prompt: str = ""  # the question as learners read it (Markdown source, shortened)

    @property
    def prompt_html(self) -> SafeString:
        """The shortened prompt for a page: text escaped, each $...$ as a math span that KaTeX typesets."""
        parts = MATH.split(self.prompt)
        pieces = [
            format_html('<span class="math" data-display="false">{}</span>', part) if index % 2 else escape(part)
            for index, part in enumerate(parts)
        ]
        return mark_safe("".join(pieces))  # noqa: S308 - every piece was escaped above

    @property
    def percent_correct(self) -> float | None:
        return 100 * self.correct / self.learners if self.learners else None


def quiz_question_stats(course_id: int | None = None) -> list[QuestionStats]:
    """QuestionStats for every active question, in lesson and question order. Two queries.

    With `course_id`, only the answers of that course's enrolled learners count (the
    discrimination groups are then drawn from them alone).
    """
    questions = list(
        QuizQuestion.objects.filter(is_active=True)
        .select_related("lesson")
        .only("id", "key", "kind", "order", "prompt_md", "lesson__slug", "lesson__order")
        .order_by("lesson__order", "lesson__slug", "order", "key")
    )
    attempts = QuizAttempt.objects.filter(question__is_active=True)
    if course_id is not None:
        from courses.models import Enrollment

        attempts = attempts.filter(user_id__in=Enrollment.objects.filter(course_id=course_id).values("user_id"))
    best_rows = (
        attempts.values_list("user_id", "question_id", "question__lesson_id")
        .annotate(
            best=Max("score"), correct=Max(Case(When(is_correct=True, then=1), default=0, output_field=IntegerField()))
        )
        .order_by()
    )
    best: dict[tuple[int, int], bool] = {}
    totals_by_lesson: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for user_id, question_id, lesson_id, score, is_right in best_rows:
        best[(user_id, question_id)] = bool(is_right)
        totals_by_lesson[lesson_id][user_id] += float(score)

    groups: dict[int, tuple[set[int], set[int], int]] = {}
    for lesson_id, scores in totals_by_lesson.items():
        groups[lesson_id] = discrimination_groups(scores)

    learners: dict[int, int] = defaultdict(int)
    correct: dict[int, int] = defaultdict(int)
    for (_, question_id), is_correct in best.items():
        learners[question_id] += 1
        correct[question_id] += int(is_correct)

    result = []
    for question in questions:
        upper, lower, size = groups.get(question.lesson_id, (set(), set(), 0))
        discrimination = None
        if size:
            upper_correct = sum(1 for user_id in upper if best.get((user_id, question.pk)))
            lower_correct = sum(1 for user_id in lower if best.get((user_id, question.pk)))
            discrimination = (upper_correct - lower_correct) / size
        result.append(
            QuestionStats(
                question.pk,
                question.lesson.slug,
                question.key,
                question.kind,
                learners[question.pk],
                correct[question.pk],
                discrimination,
                size,
                _shortened(question.prompt_md),
            )
        )
    return result


def discrimination_groups(scores: dict[int, float]) -> tuple[set[int], set[int], int]:
    """(upper group, lower group, group size) of learners ranked by total score.

    Each group holds round(27% of the learners), at least one, and never overlaps
    the other; ties are broken by user id so the split is deterministic.
    """
    if len(scores) < 2:
        return set(), set(), 0
    ranked = sorted(scores, key=lambda user_id: (-scores[user_id], user_id))
    size = min(max(1, round(DISCRIMINATION_GROUP_SHARE * len(ranked))), len(ranked) // 2)
    return set(ranked[:size]), set(ranked[-size:]), size


PROMPT_CHARS = 140
MATH = re.compile(r"\$([^$]+)\$")


def _shortened(text: str) -> str:
    """The prompt on one line, at most PROMPT_CHARS characters, never cut inside a $...$ formula."""
    line = " ".join((text or "").split())
    if len(line) <= PROMPT_CHARS:
        return line
    cut = line[: PROMPT_CHARS - 1]
    if cut.count("$") % 2:  # inside a formula: end before it
        cut = cut[: cut.rfind("$")]
    return cut.rstrip() + "…"
