"""The quiz page of a lesson: all its questions on one page, one form per question.

Progressive enhancement: a plain form POST works without JavaScript (a graded
answer redirects back to the question; bad input re-renders the page with the
message and the typed answer, status 400). static/js/quiz.js posts the same form
with fetch and the header `X-Requested-With: fetch`; the reply is then JSON with
the question's card and the score summary re-rendered, so feedback appears in place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.template.loader import render_to_string
from django.urls import reverse

from lessons.models import Lesson
from quizzes.grading import MAX_ANSWER_CHARS, AnswerInvalid
from quizzes.services import (
    AnswerForm,
    QuestionState,
    quiz_answer_submit,
    quiz_policy,
    quiz_questions,
    quiz_score_from_states,
    quiz_states_for,
)

FETCH_HEADER_VALUE = "fetch"
# Beyond this many choice values a form cannot be honest (a question has at most 10 choices).
MAX_CHOICE_VALUES = 10


def _is_fetch(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == FETCH_HEADER_VALUE


def _login_url(request: HttpRequest, lesson: Lesson) -> str:
    """The site's log-in page with `next` back to this quiz."""
    login = resolve_url(settings.LOGIN_URL)
    return f"{login}?{urlencode({'next': reverse('quiz_page', args=[lesson.slug])})}"


def _context(request: HttpRequest, lesson: Lesson, states: list[QuestionState], **extra: Any) -> dict[str, Any]:
    return {
        "lesson": lesson,
        "login_url": _login_url(request, lesson),
        "states": states,
        "score": quiz_score_from_states(states),
        "max_answer_chars": MAX_ANSWER_CHARS,
        "policy": quiz_policy(lesson.pk),
        **extra,
    }


def quiz_page(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the quiz (anyone may read). POST: grade one answer (learners only)."""
    lesson = get_object_or_404(Lesson, slug=slug)
    if request.method == "POST":
        return _answer(request, lesson)
    states = quiz_states_for(request.user, lesson)
    return render(request, "quizzes/quiz.html", _context(request, lesson, states))


def _answer(request: HttpRequest, lesson: Lesson) -> HttpResponse:
    if not request.user.is_authenticated:
        if _is_fetch(request):
            return JsonResponse({"ok": False, "error": "Log in to answer quiz questions."}, status=403)
        return redirect(_login_url(request, lesson))
    key = request.POST.get("question", "")
    question = next((q for q in quiz_questions(lesson) if q.key == key), None)
    if question is None:
        return _refuse(request, lesson, None, "That question is not part of this quiz. Reload the page.")
    choices = request.POST.getlist("choice")
    form = AnswerForm(
        choices=choices[: MAX_CHOICE_VALUES + 1],
        text=request.POST.get("answer", ""),
        variant=request.POST.get("variant", ""),
        seed=request.POST.get("seed", ""),
    )
    try:
        if len(choices) > MAX_CHOICE_VALUES:
            raise AnswerInvalid("Too many choices were sent for this question. Reload the page.")
        quiz_answer_submit(request.user, question, form)
    except AnswerInvalid as problem:
        return _refuse(request, lesson, question.key, problem.message, form)
    states = quiz_states_for(request.user, lesson)
    if _is_fetch(request):
        return _fragments(request, lesson, states, question.key)
    return redirect(reverse("quiz_page", args=[lesson.slug]) + f"#q-{question.key}")


def _refuse(
    request: HttpRequest, lesson: Lesson, key: str | None, message: str, form: AnswerForm | None = None
) -> HttpResponse:
    """Bad input: status 400, the message next to the question, the typed answer kept."""
    states = quiz_states_for(request.user, lesson)
    if _is_fetch(request):
        if key is None:
            return JsonResponse({"ok": False, "error": message}, status=400)
        return _fragments(request, lesson, states, key, error=message, form=form, status=400)
    context = _context(request, lesson, states, error_key=key, error=message, form=form)
    return render(request, "quizzes/quiz.html", context, status=400)


def _fragments(
    request: HttpRequest,
    lesson: Lesson,
    states: list[QuestionState],
    key: str,
    *,
    error: str = "",
    form: AnswerForm | None = None,
    status: int = 200,
) -> JsonResponse:
    state = next(state for state in states if state.question.key == key)
    context = _context(request, lesson, states, state=state, error_key=key if error else None, error=error, form=form)
    return JsonResponse(
        {
            "ok": not error,
            "error": error,
            "question": key,
            "card_html": render_to_string("quizzes/quiz_question.html", context, request=request),
            "score_html": render_to_string("quizzes/quiz_score.html", context, request=request),
        },
        status=status,
    )
