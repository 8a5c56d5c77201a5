"""Admin of the lessons app: lessons, edited as Markdown and rendered on save."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.forms import Script
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.safestring import SafeString, mark_safe

from lessons.content import lesson_render
from lessons.models import Lesson


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

    @property
    def media(self) -> forms.Media:
        # The rendered HTML's math is drawn by KaTeX and its diagrams by Mermaid, as on the site
        # (static/css/admin_authoring.css: the frame). static/js/lesson.js is loaded as
        # templates/base.html loads it: with the URL it imports Mermaid from.
        lesson_js = Script("js/lesson.js", **{"data-mermaid-src": static("vendor/mermaid/mermaid.esm.min.mjs")})
        scripts: list[Any] = ["vendor/katex/katex.min.js", lesson_js]  # django-stubs types these as str only
        preview = forms.Media(
            css={"all": ("vendor/katex/katex.min.css", "css/pygments.css", "css/admin_authoring.css")},
            js=scripts,
        )
        return super().media + preview

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
