"""Admin registrations of the quizzes app.

The Lesson admin is here; the quiz question and attempt admins live in
quizzes/quiz_admin.py and register on import.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

from quizzes import quiz_admin  # noqa: F401  (registers QuizQuestion and QuizAttempt)
from quizzes.content import lesson_render
from quizzes.models import Lesson


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    """Lessons usually come from content/lessons/ (`manage.py import_content`).

    Saving here re-renders the HTML from the Markdown fields. A lesson that still has a
    file is overwritten from that file by the next import: edit the file instead.
    """

    list_display = ("title", "slug", "difficulty", "order", "source_path", "updated_at")
    list_filter = ("difficulty",)
    search_fields = ("title", "slug", "summary", "question")
    ordering = ("order", "slug")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("related",)
    # The short answer is the body's `## Answer` section: edited there, derived on save.
    readonly_fields = (
        "preview",
        "short_answer_md",
        "short_answer_html",
        "body_html",
        "source_path",
        "content_hash",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("title", "slug", "difficulty", "order", "summary", "question")}),
        ("Text (Markdown)", {"fields": ("body_md", "short_answer_md", "references", "related")}),
        ("Preview (as saved)", {"fields": ("preview",)}),
        (
            "Rendered and imported (read-only)",
            {
                "classes": ("collapse",),
                "fields": ("short_answer_html", "body_html", "source_path", "content_hash", "updated_at"),
            },
        ),
    )

    class Media:
        # The rendered HTML's math is drawn by KaTeX, as on the site (static/css/admin_authoring.css: the frame).
        css = {"all": ("vendor/katex/katex.min.css", "css/pygments.css", "css/admin_authoring.css")}
        js = ("vendor/katex/katex.min.js", "js/lesson.js")

    @admin.display(description="Rendered lesson")
    def preview(self, lesson: Lesson) -> SafeString:
        if not lesson.body_html and not lesson.short_answer_html:
            return mark_safe('<p class="help">Save to see the rendered lesson.</p>')
        # Both fields were rendered and sanitized by gradlab.markdown (an allow-list): safe to insert.
        return mark_safe(  # noqa: S308
            f'<div class="prose authoring-preview">{lesson.short_answer_html}<hr>{lesson.body_html}</div>'
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Related lessons are saved here, after the row: render once they are known.
        super().save_related(request, form, formsets, change)
        lesson: Lesson = form.instance
        lesson_render(lesson)
        # A changed hash makes the next import rewrite the lesson from its file, if it has one.
        lesson.content_hash = ""
        lesson.save(update_fields=["short_answer_md", "short_answer_html", "body_html", "content_hash", "updated_at"])
