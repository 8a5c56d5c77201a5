"""Django admin for quiz questions and attempts.

An instructor may author or fix a question in the admin; the form runs the same
validation as `import_content` (quizzes.content.parse_question) and renders
the Markdown on save, so a question saved here behaves like one from a file.
Attempts are read-only: they are the learners' record.

A question is previewed as learners see it (quizzes/preview.py): the change page shows the
saved question's variants below the form, and the form's "Preview without saving" button
posts the form as typed to a page of its own (a new tab), which renders it without saving,
so a new question or an edit to a live one can be checked before it goes live.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from contentsync.files import ContentInvalid
from quizzes.content import parse_question
from quizzes.models import QuizAttempt, QuizPolicy, QuizQuestion
from quizzes.preview import question_preview

CORRECT_MARK = "*"


def choices_as_lines(choices: Any) -> str:
    """Stored choices as the author writes them: one per line, a correct one starting with `* `."""
    if not isinstance(choices, list):
        return ""
    lines = []
    for choice in choices:
        if isinstance(choice, dict):
            text = " ".join(str(choice.get("text_md", choice.get("text", ""))).split("\n")).strip()
            lines.append(f"{CORRECT_MARK} {text}" if choice.get("correct") else text)
    return "\n".join(lines)


def choices_from_lines(text: str) -> list[dict[str, Any]]:
    """Parse the choices box: one choice per non-blank line, `* ` marks a correct one.

    A JSON list (as in a content file's `choices:`) is still accepted, for pasting.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            pass
        else:
            if isinstance(parsed, list):
                return parsed
    choices = []
    for raw_line in stripped.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        correct = line.startswith(CORRECT_MARK)
        choice_text = line[len(CORRECT_MARK) :].strip() if correct else line
        if not choice_text:
            raise forms.ValidationError("A line holds only the correct-choice mark “*”: write the choice after it.")
        choices.append({"text": choice_text, "correct": correct})
    return choices


class QuizQuestionForm(forms.ModelForm):
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="Choice questions: one choice per line (Markdown and $math$ allowed); "
        "start each correct choice with “* ”, e.g. “* $2$”. Leave empty for other kinds.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["choices"] = choices_as_lines(self.instance.choices)

    def clean_choices(self) -> list[dict[str, Any]]:
        return choices_from_lines(self.cleaned_data.get("choices") or "")

    class Meta:
        model = QuizQuestion
        fields = [
            "lesson",
            "key",
            "order",
            "kind",
            "prompt_md",
            "explanation_md",
            "choices",
            "answer",
            "tolerance",
            "generator",
            "is_active",
        ]
        help_texts = {
            "answer": "Numeric: a number. Matrix: a list, or a list of rows.",
            "tolerance": '{"absolute": 0.01} and/or {"relative": 0.01}',
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        authored: dict[str, Any] = {
            "key": data.get("key"),
            "type": data.get("kind"),
            "prompt": data.get("prompt_md"),
            "explanation": data.get("explanation_md"),
        }
        if data.get("choices"):
            authored["choices"] = [
                {"text": choice.get("text", choice.get("text_md", "")), "correct": bool(choice.get("correct"))}
                if isinstance(choice, dict)
                else choice
                for choice in data["choices"]
            ]
        if data.get("answer") is not None:
            authored["answer"] = data["answer"]
        if data.get("tolerance"):
            authored["tolerance"] = data["tolerance"]
        if data.get("generator"):
            authored["generator"] = data["generator"]
        try:
            self.parsed = parse_question(authored, int(data.get("order") or 0))
        except ContentInvalid as problem:
            raise forms.ValidationError(problem.message) from None
        return data

    def save(self, commit: bool = True) -> QuizQuestion:
        question: QuizQuestion = super().save(commit=False)
        for field, value in self.parsed.items():
            if field != "order":
                setattr(question, field, value)
        question.source_path = question.source_path or "admin"
        if commit:
            question.save()
        return question


@admin.register(QuizQuestion)
class QuizQuestionAdmin(admin.ModelAdmin):
    form = QuizQuestionForm
    list_display = ["key", "lesson", "kind", "order", "is_active", "source_path"]
    list_filter = ["lesson", "kind", "is_active"]
    search_fields = ["key", "prompt_md"]
    ordering = ["lesson", "order"]

    class Media:
        # The preview: quiz.css draws the cards as on the quiz page (with tokens from admin_authoring.css),
        # KaTeX the math as static/js/lesson.js does on the site.
        css = {"all": ("vendor/katex/katex.min.css", "css/quiz.css", "css/admin_authoring.css")}
        js = ("vendor/katex/katex.min.js", "js/lesson.js")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Read afresh: a refused POST leaves its edits on the form's instance, and this preview is of the saved row.
        question = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if question is not None:
            context["quiz_preview"] = question_preview(question)
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        preview = self.admin_site.admin_view(self.preview_view)
        return [
            path("preview/", preview, name="quizzes_quizquestion_preview"),
            path("<path:object_id>/preview/", preview, name="quizzes_quizquestion_preview_saved"),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, object_id: str | None = None) -> HttpResponse:
        """The preview on a page of its own.

        POST (the change form's "Preview without saving"): of the form as sent, for a new question
        (no `object_id`) or an edit of one; nothing is saved, and a form that would be refused on
        save shows the same messages. GET: of the saved question `object_id`.
        """
        question = None
        if object_id is not None:
            question = self.get_object(request, unquote(object_id))
            if question is None:
                raise Http404("No such quiz question.")
        if request.method == "POST":
            allowed = self.has_change_permission(request, question) if question else self.has_add_permission(request)
        elif request.method == "GET" and question is not None:
            allowed = self.has_view_permission(request, question)
        else:
            return HttpResponseNotAllowed(["POST"])
        if not allowed:
            raise PermissionDenied
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "media": self.media,
            "original": question,
            "unsaved": request.method == "POST",
        }
        if request.method == "POST":
            context["title"] = "Preview of the unsaved form"
            form = self.get_form(request, question, change=question is not None)(request.POST, instance=question)
            if form.is_valid():
                context["quiz_preview"] = question_preview(form.save(commit=False))
            else:
                context["form_errors"] = [
                    (form.fields[name].label if name in form.fields else "", errors)
                    for name, errors in form.errors.items()
                ]
        elif question is not None:
            context["title"] = f"Preview of {question}"
            context["quiz_preview"] = question_preview(question)
        return TemplateResponse(request, "admin/quizzes/quizquestion/preview.html", context)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        question = self.get_object(request, unquote(object_id))
        if question is None or self.has_delete_permission(request, question):
            return super().delete_view(request, object_id, extra_context)
        # Instructors edit questions but do not delete them (gradlab/apps.py): deleting one
        # would delete every learner's attempts at it. Say so, and what to do instead.
        attempts = question.attempts.count()
        self.message_user(
            request,
            f"You cannot delete “{question.key}”: deleting a question also deletes learners' attempts at it "
            f"({attempts} so far). To take it out of the quiz, untick “Is active” and save: it disappears "
            "for learners and its attempts are kept. A site administrator can delete it if it must go.",
            messages.WARNING,
        )
        return HttpResponseRedirect(reverse("admin:quizzes_quizquestion_change", args=[question.pk]))


@admin.register(QuizAttempt)
class QuizAttemptAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "question", "variant", "score", "is_correct"]
    list_filter = ["is_correct", "question__lesson"]
    search_fields = ["user__username", "question__key"]
    list_select_related = ["user", "question", "question__lesson"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[QuizAttempt]:
        return super().get_queryset(request).select_related("user", "question")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QuizPolicy)
class QuizPolicyAdmin(admin.ModelAdmin):
    """Per-quiz attempts and credits for fixed questions (stated on the quiz page).

    Also set by the quiz file's `attempts:` (quizzes/content.py); a bad policy is refused with the
    reason by QuizPolicy.clean, as the loader refuses it."""

    list_display = ("lesson", "max_attempts", "credits")
    list_select_related = ("lesson",)
