"""`manage.py api_token <username> [--name NAME]`: create an API token and print it (and nothing else).

The token is shown once: only its hash is stored. Use it as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from grader.auth import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print only the token (it cannot be shown again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to tell this token apart (e.g. the script using it)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        if not user.is_active:
            raise CommandError(f"user {options['username']!r} is inactive")
        _, token = api_token_create(user, name=options["name"])
        self.stdout.write(token)
