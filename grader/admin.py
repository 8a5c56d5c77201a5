"""Django admin for exercises: authoring with a preview, and validation in the sandbox on save.

An instructor edits the statement (Markdown with math), the starter, the reference
solution, the spec (JSON, checked like `exercise.yaml`) and the known-wrong variants
(inline). Saving renders the statement and enqueues `dashboard.tasks.validate_exercise`,
which grades the reference and every variant in the sandbox; the change page shows
the outcome (status and one row per variant). Submissions are read-only here: they
are the learners' record (staff only; instructors have no permission on them).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from grader.models import Exercise, KnownWrongVariant, Submission
from gradlab.contentio import ContentInvalid
from gradlab.markdown import render_markdown

CODE_WIDGET = forms.Textarea(attrs={"rows": 16, "cols": 100, "class": "code-input", "spellcheck": "false"})
STATUS_LABELS = {
    "unknown": "Not validated yet",
    "pending": "Validating in the sandbox… reload the page in a few seconds",
    "valid": "Valid: the reference is accepted and every variant is rejected with its mistake",
    "invalid": "Invalid: see the table below",
    "error": "The grader could not run",
    "not_queued": "Not queued: the task broker is unavailable",
}


class ExerciseForm(forms.ModelForm):
    class Meta:
        model = Exercise
        fields = [
            "title",
            "slug",
            "lesson",
            "order",
            "difficulty",
            "is_active",
            "function_name",
            "signature",
            "spec",
            "statement_md",
            "starter_code",
            "reference_solution",
        ]
        widgets = {
            "starter_code": CODE_WIDGET,
            "reference_solution": CODE_WIDGET,
            "statement_md": forms.Textarea(attrs={"rows": 20, "cols": 100}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        from grader.spec import ExerciseSpec

        # The spec must parse as the loader would parse exercise.yaml, with the form's values.
        probe = Exercise(**{key: value for key, value in data.items() if key != "lesson"})
        probe.lesson = data.get("lesson")
        try:
            ExerciseSpec.from_model(probe)
        except ContentInvalid as problem:
            raise forms.ValidationError(f"The spec is invalid: {problem.message}") from None
        return data


class KnownWrongVariantInline(admin.StackedInline):
    model = KnownWrongVariant
    extra = 0
    fields = ("name", "mistake", "description", "code")

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "code":
            kwargs["widget"] = CODE_WIDGET
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Exercise)
class ExerciseAdmin(admin.ModelAdmin):
    form = ExerciseForm
    inlines = [KnownWrongVariantInline]
    list_display = ("title", "slug", "lesson", "order", "difficulty", "validation_status", "validated_at", "is_active")
    list_filter = ("validation_status", "difficulty", "lesson", "is_active")
    search_fields = ("title", "slug", "function_name")
    list_select_related = ("lesson",)
    ordering = ("order", "slug")
    readonly_fields = (
        "validation_outcome",
        "statement_preview",
        "validated_at",
        "source_path",
        "content_hash",
        "updated_at",
    )
    fieldsets = (
        ("Validation", {"fields": ("validation_outcome", "validated_at")}),
        (None, {"fields": ("title", "slug", "lesson", "order", "difficulty", "is_active")}),
        ("Function", {"fields": ("function_name", "signature", "spec")}),
        ("Statement (Markdown with $math$)", {"fields": ("statement_md", "statement_preview")}),
        ("Code", {"fields": ("starter_code", "reference_solution")}),
        ("Imported from", {"classes": ("collapse",), "fields": ("source_path", "content_hash", "updated_at")}),
    )

    class Media:
        css = {"all": ("vendor/katex/katex.min.css", "css/pygments.css", "css/admin_authoring.css")}
        js = ("vendor/katex/katex.min.js", "js/lesson.js")

    @admin.display(description="Preview (as saved)")
    def statement_preview(self, exercise: Exercise) -> SafeString:
        if not exercise.statement_md:
            return mark_safe('<p class="help">Save to see the rendered statement.</p>')
        # render_markdown sanitizes with an allow-list (gradlab/markdown.py): safe to insert.
        return mark_safe(f'<div class="prose authoring-preview">{render_markdown(exercise.statement_md)}</div>')  # noqa: S308

    @admin.display(description="Outcome")
    def validation_outcome(self, exercise: Exercise) -> SafeString:
        status = exercise.validation_status or "unknown"
        report = exercise.validation_report or {}
        head = format_html(
            '<p class="validation-status validation-{}"><strong>{}</strong>{}</p>',
            status,
            STATUS_LABELS.get(status, status),
            format_html(" — {}", report["message"]) if report.get("message") else "",
        )
        outcomes = report.get("outcomes") or []
        if not outcomes:
            return head
        rows = format_html_join(
            "",
            '<tr class="{}"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    "ok" if item.get("ok") else "failed",
                    "✓" if item.get("ok") else "✗",
                    item.get("name", ""),
                    item.get("expected") or "accepted",
                    item.get("verdict", ""),
                    item.get("message", ""),
                )
                for item in outcomes
            ),
        )
        table = format_html(
            '<table class="validation-table"><thead><tr><th></th><th>Solution or variant</th><th>Expected</th>'
            "<th>Verdict</th><th>What the grader said</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
        return format_html("{}{}", head, table)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Variants are saved here, after the row: validate once they are all in.
        super().save_related(request, form, formsets, change)
        from dashboard.authoring import exercise_validation_request

        exercise: Exercise = form.instance
        exercise.statement_html = render_markdown(exercise.statement_md)
        # A changed hash makes the next import rewrite the exercise from its folder, if it has one.
        exercise.content_hash = ""
        exercise.save(update_fields=["statement_html", "content_hash", "updated_at"])
        exercise_validation_request(exercise)
        self.message_user(
            request,
            "The reference solution and the known-wrong variants are being graded in the sandbox; "
            "the outcome appears at the top of the exercise's page.",
            messages.INFO,
        )


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "user", "exercise", "status", "verdict", "isolation", "worker")
    list_filter = ("status", "verdict", "isolation", "exercise")
    search_fields = ("user__username", "exercise__slug")
    list_select_related = ("user", "exercise")
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) of a large table on every page is wasted work

    def get_queryset(self, request: HttpRequest) -> QuerySet[Submission]:
        return super().get_queryset(request).defer("code", "result", "phase_times")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
