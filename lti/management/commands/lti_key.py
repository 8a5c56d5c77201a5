"""`manage.py lti_key show|rotate`: Gradlab's LTI signing keys.

`rotate` makes a new current key; the old one stays in the JWKS as the previous key
(platforms that cached it keep verifying), the one before it is retired.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lti.keys import key_current, key_rotate
from lti.models import ToolKey


class Command(BaseCommand):
    help = "Show or rotate the RSA key pair Gradlab signs LTI messages with."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["show", "rotate"])

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "rotate":
            key = key_rotate()
            self.stdout.write(f"new current key {key.kid}")
        else:
            key_current()
        for key in ToolKey.objects.order_by("-created_at"):
            self.stdout.write(f"{key.kid}\t{key.status}\tcreated {key.created_at:%Y-%m-%d %H:%M}")
