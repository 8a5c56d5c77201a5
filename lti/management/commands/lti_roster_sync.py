"""`manage.py lti_roster_sync [--context ID ...]`: read LMS rosters (NRPS) into the linked Gradlab courses.

Without --context, every context linked to a course and having a memberships URL is synced.
Prints one line per context; exits non-zero if any sync failed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lti.models import LtiContext
from lti.roster import roster_sync


class Command(BaseCommand):
    help = "Sync the roster of LMS courses (LTI Names and Role Provisioning) into their Gradlab courses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--context", type=int, action="append", help="LtiContext id (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        contexts = LtiContext.objects.select_related("platform", "course")
        if options["context"]:
            contexts = contexts.filter(pk__in=options["context"])
            unknown = sorted(set(options["context"]) - {context.pk for context in contexts})
            if unknown:
                raise CommandError(
                    f"no LMS course with id {', '.join(map(str, unknown))}: nothing synced "
                    "(the ids are in the admin, LTI 1.3 > LMS courses; without --context every linked one is synced)"
                )
        else:
            contexts = contexts.filter(course__isnull=False).exclude(memberships_url="")
            if not contexts:
                self.stdout.write(
                    "nothing to sync: no LMS course is linked to a Gradlab course with a roster service yet "
                    "(an LMS sends its roster URL with each LTI launch; see docs/lti.md)"
                )
                return
        failed = 0
        for context in contexts:
            report = roster_sync(context)
            if report.error:
                failed += 1
                self.stdout.write(f"{context.pk}\t{context}\tFAILED: {report.error}")
            else:
                self.stdout.write(
                    f"{context.pk}\t{context}\tmembers={report.members} learners={report.learners} "
                    f"staff={report.staff} new_accounts={report.accounts_created} skipped={len(report.skipped)}"
                )
        if failed:
            raise CommandError(f"{failed} roster sync(s) failed")
