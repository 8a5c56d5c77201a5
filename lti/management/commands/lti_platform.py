"""`manage.py lti_platform add|list|remove`: register LMS platforms (Canvas, Moodle) from a script.

    lti_platform add --issuer ISS --client-id ID --deployment-id DEP --auth-url URL --token-url URL --jwks-url URL
    lti_platform list
    lti_platform remove --issuer ISS --client-id ID

`add` on an existing (issuer, client id) updates its URLs and adds the deployment ids
given; it never removes one. URLs are checked; a bad value stops with a message and
changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from lti.models import Deployment, Platform

# The option that sets each field, to name it in a refusal.
OPTIONS = {
    "name": "--name",
    "issuer": "--issuer",
    "client_id": "--client-id",
    "auth_login_url": "--auth-url",
    "auth_token_url": "--token-url",
    "auth_audience": "--audience",
    "jwks_url": "--jwks-url",
    "frame_origins": "--frame-origin",
}


class Command(BaseCommand):
    help = "Register, list or remove the LMS platforms Gradlab accepts LTI 1.3 launches from."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="register a platform (or add deployments to one)")
        add.add_argument("--issuer", required=True, help="the platform's issuer, e.g. https://canvas.instructure.com")
        add.add_argument("--client-id", required=True, help="the client id the LMS gave Gradlab")
        add.add_argument(
            "--deployment-id", action="append", default=[], required=True, help="a deployment id (repeatable)"
        )
        add.add_argument("--auth-url", required=True, help="the LMS's OIDC authorization URL")
        add.add_argument("--token-url", required=True, help="the LMS's OAuth2 token URL")
        add.add_argument("--jwks-url", required=True, help="the LMS's public keyset (JWKS) URL")
        add.add_argument("--name", default="", help="a name for people (default: the issuer)")
        add.add_argument("--audience", default="", help="audience of token requests, if not the token URL")
        add.add_argument(
            "--frame-origin", action="append", default=[], help="an extra origin allowed to frame Gradlab (repeatable)"
        )
        actions.add_parser("list", help="list the registered platforms")
        remove = actions.add_parser("remove", help="remove a platform (its links, identities and outbox go too)")
        remove.add_argument("--issuer", required=True)
        remove.add_argument("--client-id", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    @transaction.atomic
    def _add(self, options: dict[str, Any]) -> None:
        platform = Platform.objects.filter(issuer=options["issuer"], client_id=options["client_id"]).first()
        created = platform is None
        if platform is None:
            platform = Platform(issuer=options["issuer"], client_id=options["client_id"])
        platform.name = options["name"] or platform.name or options["issuer"]
        platform.auth_login_url = options["auth_url"]
        platform.auth_token_url = options["token_url"]
        platform.jwks_url = options["jwks_url"]
        platform.auth_audience = options["audience"] or platform.auth_audience
        extra = [line for line in platform.frame_origins.splitlines() if line.strip()]
        platform.frame_origins = "\n".join(dict.fromkeys([*extra, *options["frame_origin"]]))
        try:
            platform.full_clean()
        except ValidationError as error:
            problems = "; ".join(
                f"{OPTIONS.get(field, field)}: {' '.join(msgs)}" for field, msgs in error.message_dict.items()
            )
            raise CommandError(f"nothing changed: {problems}") from error
        platform.save()
        added = []
        for deployment_id in options["deployment_id"]:
            if not deployment_id.strip():
                raise CommandError("a deployment id cannot be empty")
            _, new = Deployment.objects.get_or_create(platform=platform, deployment_id=deployment_id.strip())
            if new:
                added.append(deployment_id.strip())
        verb = "registered" if created else "updated"
        self.stdout.write(
            f"{verb} platform {platform.pk}: {platform.issuer} client {platform.client_id}; "
            f"deployments added: {', '.join(added) or 'none'}"
        )

    def _list(self, options: dict[str, Any]) -> None:
        platforms = Platform.objects.prefetch_related("deployments").order_by("pk")
        if not platforms:
            self.stdout.write("no platforms registered")
            return
        for platform in platforms:
            deployments = ", ".join(d.deployment_id for d in platform.deployments.all()) or "-"
            state = "" if platform.is_active else " (inactive)"
            self.stdout.write(
                f"{platform.pk}\t{platform.name}{state}\tissuer={platform.issuer}\tclient_id={platform.client_id}\t"
                f"deployments={deployments}\tauth={platform.auth_login_url}\ttoken={platform.auth_token_url}\t"
                f"jwks={platform.jwks_url}"
            )

    def _remove(self, options: dict[str, Any]) -> None:
        platform = Platform.objects.filter(issuer=options["issuer"], client_id=options["client_id"]).first()
        if platform is None:
            raise CommandError(f"no platform with issuer {options['issuer']!r} and client id {options['client_id']!r}")
        platform.delete()
        self.stdout.write(f"removed platform {options['issuer']} client {options['client_id']}")
