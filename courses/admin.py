"""Admin for courses: staff may look at everything here; changes of scores go through the site's
override form (with a reason and the audit log), so score tables are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from courses.models import (
    Assignment,
    AssignmentItem,
    Course,
    CourseStaff,
    Enrollment,
    Extension,
    GradeChange,
    RegradeJob,
)
from courses.rules import SCORING_FIELDS  # changing one recounts every learner


class CourseStaffInline(admin.TabularInline):
    model = CourseStaff
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "term", "ended_at", "created_at"]
    search_fields = ["slug", "title", "term"]
    readonly_fields = ["join_code", "invite_token", "created_at"]
    inlines = [CourseStaffInline]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["course", "user", "source", "created_at"]
    list_filter = ["course", "source"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user"]


class AssignmentItemInline(admin.TabularInline):
    model = AssignmentItem
    extra = 0
    filter_horizontal = ["questions"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["title", "course", "opens_at", "due_at", "late_policy", "counting", "hint_penalty_percent"]
    list_filter = ["course"]
    inlines = [AssignmentItemInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        changed = [name for name in SCORING_FIELDS if name in form.changed_data]
        if change and changed:
            from courses.services import assignment_scores_recount

            count = assignment_scores_recount(
                form.instance, by_id=request.user.pk, reason=f"Assignment changed: {', '.join(changed)}"
            )
            self.message_user(request, f"The scores of {count} learner(s) were recounted.")


@admin.register(Extension)
class ExtensionAdmin(admin.ModelAdmin):
    list_display = ["assignment", "learner", "due_at", "granted_by"]
    raw_id_fields = ["learner", "granted_by"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GradeChange)
class GradeChangeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "learner", "item", "cause", "old_points", "new_points", "changed_by", "reason"]
    list_filter = ["cause"]


@admin.register(RegradeJob)
class RegradeJobAdmin(ReadOnlyAdmin):
    list_display = ["pk", "assignment", "mode", "status", "done", "total", "created_at"]
