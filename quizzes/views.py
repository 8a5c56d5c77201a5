"""Home page (lesson cards with the learner's progress) and lesson pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from grader.selectors import exercises_for_lesson
from gradlab.markdown import headings_of
from quizzes.lesson_services import lesson_read_record
from quizzes.models import Lesson
from quizzes.selectors import LessonProgress, lesson_progress_for


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
    return render(request, "quizzes/home.html", context)


def lesson_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The lesson; opening it as a logged-in learner records a LessonRead."""
    lesson = get_object_or_404(Lesson, slug=slug)
    if request.user.is_authenticated:
        lesson_read_record(request.user, lesson)
    progress = lesson_progress_for(request.user).get(lesson.pk, LessonProgress())
    context = {
        "lesson": lesson,
        "toc": headings_of(lesson.body_html),
        "related": lesson.related.order_by("order", "slug"),
        "progress": progress,
        "exercise_cards": exercises_for_lesson(lesson, request.user),
    }
    return render(request, "quizzes/lesson_detail.html", context)
