"""Home page (lesson cards with the learner's progress), lesson pages and the learner's progress page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from grader.selectors import exercises_for_lesson
from gradlab.markdown import headings_of
from lessons.models import Lesson
from lessons.progress import learner_progress
from lessons.selectors import LessonProgress, lesson_progress_for
from lessons.services import lesson_read_record


def home(request: HttpRequest) -> HttpResponse:
    """Every lesson as a card; a learner also sees what they have done in each."""
    lessons = list(Lesson.objects.all())
    progress = lesson_progress_for(request.user)
    cards = [(lesson, progress.get(lesson.pk, LessonProgress())) for lesson in lessons]
    context = {
        "cards": cards,
        "lessons_read": sum(1 for _, item in cards if item.read),
        "lessons_total": len(lessons),
    }
    return render(request, "lessons/home.html", context)


def lesson_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The lesson; opening it as a logged-in learner records a LessonRead.

    The badge shows the progress from before this visit: "Read" on a first visit would claim
    something the learner has not done yet.
    """
    lesson = get_object_or_404(Lesson, slug=slug)
    progress = lesson_progress_for(request.user).get(lesson.pk, LessonProgress())
    if request.user.is_authenticated:
        lesson_read_record(request.user, lesson)
    context = {
        "lesson": lesson,
        "toc": headings_of(lesson.body_html),
        "related": lesson.related.order_by("order", "slug"),
        "progress": progress,
        "exercise_cards": exercises_for_lesson(lesson, request.user),
    }
    return render(request, "lessons/lesson_detail.html", context)


@login_required
def progress(request: HttpRequest) -> HttpResponse:
    """The signed-in learner's own progress (nobody else's: there is no user parameter)."""
    return render(request, "lessons/progress.html", {"progress": learner_progress(request.user)})  # type: ignore[arg-type]
