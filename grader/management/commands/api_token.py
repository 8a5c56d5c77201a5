"""`manage.py api_token`: create, list and revoke API tokens.

    api_token <username> [--name NAME] [--days N]   create a token and print it (and nothing else)
    api_token <username> --list                       the user's tokens: prefix, name, state, dates
    api_token <username> --revoke PREFIX              revoke one token (its first characters, as listed)
    api_token <username> --revoke-all                 revoke every token of the user

The token is shown once: only its hash is stored. Use it as `Authorization: Bearer <token>`.
It expires after --days (settings.API_TOKEN_DAYS by default), and when the user's password changes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from grader.auth import api_token_create, api_tokens_revoke
from grader.models import ApiToken


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


class Command(BaseCommand):
    help = "Create an API token for a user and print only the token (it cannot be shown again); list or revoke tokens."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to tell this token apart (e.g. the script using it)")
        parser.add_argument("--days", type=int, default=None, help="days until the token expires")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--list", action="store_true", help="list the user's tokens instead of creating one")
        action.add_argument("--revoke", metavar="PREFIX", help="revoke the user's token that starts with PREFIX")
        action.add_argument("--revoke-all", action="store_true", help="revoke every token of the user")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        tokens = ApiToken.objects.filter(user=user)
        if options["list"]:
            if not tokens.exists():  # said on stderr: the listing on stdout stays empty for scripts
                self.stderr.write(f"{user.username} has no API tokens (make one: manage.py api_token {user.username})")
            for row in tokens.order_by("-created_at"):
                self.stdout.write(
                    f"{row.prefix}  {row.state:8}  created {_when(row.created_at)}  "
                    f"expires {_when(row.expires_at)}  last used {_when(row.last_used_at)}  {row.name}"
                )
            return
        if options["revoke_all"]:
            self.stdout.write(f"revoked {api_tokens_revoke(tokens)} token(s) of {user.username}")
            return
        if options["revoke"]:
            prefix = options["revoke"]
            if len(prefix) < 6:
                raise CommandError(f"give at least the first 6 characters of the token, not {prefix!r} (see --list)")
            matching = tokens.filter(prefix__startswith=prefix)
            if not matching:
                raise CommandError(f"{user.username} has no token starting with {prefix!r} (see --list)")
            if len(matching) > 1:
                raise CommandError(f"{len(matching)} tokens of {user.username} start with {prefix!r}: give more of it")
            api_tokens_revoke(matching)
            self.stdout.write(f"revoked {matching.get().prefix}")
            return
        if not user.is_active:
            raise CommandError(f"user {options['username']!r} is inactive")
        if options["days"] is not None and options["days"] < 1:
            raise CommandError("--days must be at least 1")
        _, token = api_token_create(user, name=options["name"], days=options["days"])
        self.stdout.write(token)
