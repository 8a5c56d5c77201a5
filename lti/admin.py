"""Admin for LTI: platforms and their deployments, Gradlab's keys (rotate), contexts (roster sync), the score outbox."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from lti import roster, services
from lti.keys import key_rotate
from lti.models import Deployment, LtiContext, LtiIdentity, Platform, ResourceLink, ScoreOutbox, ToolKey


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 1


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ["name", "issuer", "client_id", "deployment_list", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "issuer", "client_id"]
    inlines = [DeploymentInline]
    readonly_fields = ["config_page"]
    fields = [
        "config_page",
        "name",
        "issuer",
        "client_id",
        "auth_login_url",
        "auth_token_url",
        "auth_audience",
        "jwks_url",
        "frame_origins",
        "is_active",
    ]

    @admin.display(description="Deployments")
    def deployment_list(self, platform: Platform) -> str:
        return ", ".join(d.deployment_id for d in platform.deployments.all()) or "-"

    @admin.display(description="What to paste into the LMS")
    def config_page(self, platform: Platform) -> str:
        return format_html('<a href="{}">Gradlab\'s LTI URLs, with copy buttons</a>', reverse("lti_config"))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Platform]:
        return super().get_queryset(request).prefetch_related("deployments")


@admin.register(ToolKey)
class ToolKeyAdmin(admin.ModelAdmin):
    list_display = ["kid", "status", "created_at", "retired_at"]
    fields = ("kid", "status", "public_key_pem", "created_at", "retired_at")  # never the private key
    readonly_fields = fields
    actions = ["rotate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Rotate: make a new current key (select any key; the current one stays published)")
    def rotate(self, request: HttpRequest, queryset: QuerySet[ToolKey]) -> None:
        key = key_rotate()
        self.message_user(request, f"New current key {key.kid}; the JWKS serves it and the previous one.")


@admin.register(LtiContext)
class LtiContextAdmin(admin.ModelAdmin):
    list_display = ["__str__", "platform", "course", "last_roster_sync_at", "roster_summary"]
    list_filter = ["platform"]
    search_fields = ["title", "context_id"]
    readonly_fields = ["last_roster_sync_at", "last_roster_sync_report"]
    actions = ["sync_roster"]

    @admin.display(description="Last roster sync")
    def roster_summary(self, context: LtiContext) -> str:
        report = context.last_roster_sync_report or {}
        if not report:
            return "-"
        if report.get("error"):
            return f"failed: {report['error']}"
        skipped = len(report.get("skipped", []))
        return f"{report.get('learners', 0)} learners, {report.get('staff', 0)} staff, {skipped} skipped"

    @admin.action(description="Sync the roster from the LMS (Names and Role Provisioning)")
    def sync_roster(self, request: HttpRequest, queryset: QuerySet[LtiContext]) -> None:
        for context in queryset.select_related("platform", "course"):
            report = roster.roster_sync(context)
            if report.error:
                self.message_user(request, f"{context}: {report.error}", level=messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{context}: {report.members} members, {report.learners} learners and {report.staff} staff "
                    f"enrolled, {report.accounts_created} new accounts, {len(report.skipped)} skipped.",
                )


@admin.register(ResourceLink)
class ResourceLinkAdmin(admin.ModelAdmin):
    list_display = ["__str__", "context", "target", "lineitem_url"]
    readonly_fields = ["context", "resource_link_id", "lineitem_url", "ags_scopes"]


@admin.register(LtiIdentity)
class LtiIdentityAdmin(admin.ModelAdmin):
    list_display = ["subject", "issuer", "user", "last_launch_at"]
    search_fields = ["subject", "user__username", "user__email"]
    readonly_fields = ["issuer", "subject", "platform", "user", "created_at", "last_launch_at"]


@admin.register(ScoreOutbox)
class ScoreOutboxAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "assignment", "score_given", "score_maximum", "status", "attempts"]
    list_filter = ["status", "platform"]
    readonly_fields = [f.name for f in ScoreOutbox._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send again (scores the platform refused)")
    def send_again(self, request: HttpRequest, queryset: QuerySet[ScoreOutbox]) -> None:
        count = services.outbox_resend(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} score(s) queued again.")
