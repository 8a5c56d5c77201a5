"""Django admin for exercises: authoring with a preview, and validation in the sandbox on save.

An instructor edits the statement (Markdown with math), the starter, the reference
solution, the spec (JSON, checked like `exercise.yaml`) and the known-wrong variants
(inline). Saving renders the statement and enqueues `grader.tasks.validate_exercise`,
which grades the reference and every variant in the sandbox; the change page shows
the outcome (status and one row per variant). Submissions are read-only here: they
are the learners' record (staff only; instructors have no permission on them).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from grader.models import ApiToken, Exercise, HintReveal, KnownWrongVariant, Submission, ValidationStatus
from gradlab.markdown import render_markdown

CODE_WIDGET = forms.Textarea(attrs={"rows": 16, "cols": 100, "class": "code-input", "spellcheck": "false"})
STATUS_LABELS: dict[str, str] = {
    ValidationStatus.UNKNOWN: "Not validated yet",
    ValidationStatus.PENDING: "Validating in the sandbox… reload the page in a few seconds",
    ValidationStatus.VALID: "Valid: the reference is accepted and every variant is rejected with its mistake",
    ValidationStatus.INVALID: "Invalid: see the table below",
    ValidationStatus.ERROR: "The grader could not run",
    ValidationStatus.NOT_QUEUED: "Not queued: the task broker is unavailable",
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
            "solution_explanation_md",
            "hints",
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
        from grader.spec import ExerciseSpec, SpecInvalid

        # The spec must parse as the loader would parse exercise.yaml, with the form's values.
        probe = Exercise(**{key: value for key, value in data.items() if key != "lesson"})
        probe.lesson = data.get("lesson")
        try:
            ExerciseSpec.from_model(probe)
            if data.get("hints"):
                ExerciseSpec.from_json({**ExerciseSpec.from_model(probe).to_json(), "hints": data["hints"]})
        except SpecInvalid as problem:
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
        ("Code", {"fields": ("starter_code", "reference_solution", "solution_explanation_md")}),
        ("Hints (a JSON list of three Markdown texts: idea, shapes and chain rule, formula)", {"fields": ("hints",)}),
        ("Imported from", {"classes": ("collapse",), "fields": ("source_path", "content_hash", "updated_at")}),
    )

    class Media:
        css = {"all": ("vendor/katex/katex.min.css", "css/pygments.css", "css/admin_authoring.css")}
        js = ("vendor/katex/katex.min.js", "js/lesson.js", "js/admin_validation.js")

    @admin.display(description="Preview (as saved)")
    def statement_preview(self, exercise: Exercise) -> SafeString:
        if not exercise.statement_md:
            return mark_safe('<p class="help">Save to see the rendered statement.</p>')
        # render_markdown sanitizes with an allow-list (gradlab/markdown.py): safe to insert.
        return mark_safe(f'<div class="prose authoring-preview">{render_markdown(exercise.statement_md)}</div>')  # noqa: S308

    @admin.display(description="Outcome")
    def validation_outcome(self, exercise: Exercise) -> SafeString:
        # static/js/admin_validation.js reloads this block from the fragment URL while it is pending.
        return format_html(
            '<div class="validation-outcome" data-validation-status="{}" data-validation-url="{}" aria-live="polite">'
            "{}</div>",
            exercise.validation_status,
            reverse("admin:grader_exercise_validation", args=[exercise.pk]) if exercise.pk else "",
            self.validation_outcome_body(exercise),
        )

    def validation_outcome_body(self, exercise: Exercise) -> SafeString:
        status = exercise.validation_status or ValidationStatus.UNKNOWN
        report = exercise.validation_report or {}
        head = format_html(
            '<p class="validation-status validation-{}"><strong>{}</strong>{}</p>',
            status,
            STATUS_LABELS.get(status, status),
            format_html(" — {}", report["message"]) if report.get("message") else "",
        )
        outcomes = report.get("outcomes") or []
        if exercise.withdrawn_by_validation:
            failed = [item.get("name", "") for item in outcomes if not item.get("ok")]
            reason = f"these failed: {', '.join(failed)}" if failed else "it failed"
            head = format_html(
                '{}<p class="validation-withdrawn"><strong>Unpublished by validation</strong> ({}). '
                "Learners cannot open it; it is published again when a validation passes.</p>",
                head,
                reason,
            )
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

    def get_urls(self) -> list[Any]:
        fragment = path(
            "<path:object_id>/validation/",
            self.admin_site.admin_view(self.validation_fragment),
            name="grader_exercise_validation",
        )
        return [fragment, *super().get_urls()]

    def validation_fragment(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The validation outcome alone, polled by the change page until the worker has finished."""
        exercise = self.get_object(request, object_id)
        if exercise is None or not self.has_view_permission(request, exercise):
            raise Http404("No such exercise.")
        response = HttpResponse(self.validation_outcome_body(exercise))
        response["X-Validation-Status"] = exercise.validation_status
        response["Cache-Control"] = "no-store"
        return response

    def save_model(self, request: HttpRequest, obj: Exercise, form: Any, change: bool) -> None:
        if "is_active" in form.changed_data:
            # The author decided: a later validation must not override it.
            obj.withdrawn_by_validation = False
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Variants are saved here, after the row: validate once they are all in.
        super().save_related(request, form, formsets, change)
        from grader.authoring import exercise_validation_request
        from grader.grading_version import exercise_grading_touch

        exercise: Exercise = form.instance
        exercise.statement_html = render_markdown(exercise.statement_md)
        # A changed hash makes the next import rewrite the exercise from its folder, if it has one.
        exercise.content_hash = ""
        exercise.save(update_fields=["statement_html", "content_hash", "updated_at"])
        regrade_worth = exercise_grading_touch(exercise)
        exercise_validation_request(exercise)
        self.message_user(
            request,
            "The reference solution and the known-wrong variants are being graded in the sandbox; "
            "the outcome appears at the top of the exercise's page as soon as it is ready.",
            messages.INFO,
        )
        if regrade_worth:
            self.message_user(
                request,
                "The grading changed (spec, reference or known-wrong variants): course staff see, on each "
                "assignment with this exercise, how many past submissions were graded before the change, "
                "with a regrade preview.",
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


@admin.register(HintReveal)
class HintRevealAdmin(admin.ModelAdmin):
    """Who asked for which hint, when (read-only: the learners' record)."""

    list_display = ("revealed_at", "user", "exercise", "level")
    list_filter = ("exercise", "level")
    search_fields = ("user__username", "exercise__slug")
    list_select_related = ("user", "exercise")
    date_hierarchy = "revealed_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: who holds which, their state, and a "Revoke" action. Tokens are made with
    `manage.py api_token` (the secret is shown once there), never here."""

    list_display = ("prefix", "user", "name", "state", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "prefix", "name")
    readonly_fields = ("user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    fields = ("user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        from grader.auth import api_tokens_revoke

        count = api_tokens_revoke(queryset)
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
