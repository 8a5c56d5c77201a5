"""Django admin for quiz questions and attempts (imported by quizzes/admin.py).

An instructor may author or fix a question in the admin; the form runs the same
validation as `import_content` (quizzes.quiz_content.parse_question) and renders
the Markdown on save, so a question saved here behaves like one from a file.
Attempts are read-only: they are the learners' record.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from gradlab.contentio import ContentInvalid
from quizzes.models import QuizAttempt, QuizQuestion
from quizzes.quiz_content import parse_question


class QuizQuestionForm(forms.ModelForm):
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
            "choices": 'Choice questions: [{"text": "...", "correct": true}, {"text": "..."}]',
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
