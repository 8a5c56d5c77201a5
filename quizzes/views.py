from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from quizzes.models import Lesson


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "quizzes/home.html", {"lessons": Lesson.objects.all()})


def lesson_detail(request: HttpRequest, slug: str) -> HttpResponse:
    lesson = get_object_or_404(Lesson, slug=slug)
    return render(request, "quizzes/lesson_detail.html", {"lesson": lesson})
