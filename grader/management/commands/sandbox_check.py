"""`manage.py sandbox_check`: start the grader sandbox once, as a worker will, and print its isolation level.

Exits non-zero with the reason (and what to install or change) when the sandbox cannot reach
GRADER_MIN_ISOLATION. `manage.py rundev` runs it before it starts anything.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.sandbox import Sandbox, SandboxUnavailable


class Command(BaseCommand):
    help = "Start the grader sandbox once and print the isolation level it reached."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with Sandbox.start(settings.GRADER_MIN_ISOLATION or None) as sandbox:
                level = sandbox.isolation
        except SandboxUnavailable as error:
            raise CommandError(f"the grader sandbox cannot run: {error}") from None
        minimum = settings.GRADER_MIN_ISOLATION or "none"
        self.stdout.write(f"grader sandbox: isolation {level} (minimum {minimum})")
