"""Roster sync (LTI Names and Role Provisioning Services): the LMS course's members -> Gradlab.

`roster_sync` reads every page of the context's memberships, makes the accounts of new
members and enrolls them in the linked course with their LMS role mapped to a course
role. It never removes anyone; the report is stored on the context for the admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from django.utils import timezone
from pylti1p3.exception import LtiException
from pylti1p3.names_roles import NamesRolesProvisioningService

from lti.models import LtiContext, LtiIdentity
from lti.services import connector_for, course_role_for, is_staff_role, launch_account, launch_enroll


@dataclass
class RosterReport:
    """What a roster sync did (stored on the context and shown in the admin)."""

    members: int = 0
    accounts_created: int = 0
    learners: int = 0
    staff: int = 0
    skipped: list[str] = field(default_factory=list)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "accounts_created": self.accounts_created,
            "learners": self.learners,
            "staff": self.staff,
            "skipped": self.skipped[:50],
            "error": self.error,
        }


def roster_sync(context: LtiContext) -> RosterReport:
    """Fetch the context's members from the platform (all pages) and enroll them in the linked course.

    Active members get an account (made if new) and the course role of their LMS
    roles. Inactive or deleted members and members with no usable role are listed as
    skipped; nobody is removed from the course (instructors decide that in Gradlab).
    """
    report = RosterReport()
    if context.course_id is None:
        report.error = "This LMS course is not linked to a Gradlab course yet: an instructor launches Gradlab first."
    elif not context.memberships_url:
        report.error = "The platform gave no memberships URL (NRPS) for this course: is the service enabled?"
    if report.error:
        _store_report(context, report)
        return report
    assert context.course is not None
    platform = context.platform
    try:
        service = NamesRolesProvisioningService(
            connector_for(platform), {"context_memberships_url": context.memberships_url}
        )
        members = service.get_members()
    except (LtiException, requests.RequestException, ValueError) as error:
        report.error = f"The platform's roster could not be read: {error}"[:1000]
        _store_report(context, report)
        return report
    for member in members:
        report.members += 1
        subject = str(member.get("user_id") or "")
        if not subject:
            report.skipped.append("a member without user_id")
            continue
        if member.get("status", "Active") != "Active":
            report.skipped.append(f"{subject} ({member.get('status')})")
            continue
        role = course_role_for([str(r) for r in member.get("roles") or []])
        if role is None:
            report.skipped.append(f"{subject} (no course role)")
            continue
        existed = LtiIdentity.objects.filter(issuer=platform.issuer, subject=subject).exists()
        user = launch_account(platform, subject, dict(member))
        report.accounts_created += 0 if existed else 1
        launch_enroll(context.course, user, role)
        if is_staff_role(role):
            report.staff += 1
        else:
            report.learners += 1
    _store_report(context, report)
    return report


def _store_report(context: LtiContext, report: RosterReport) -> None:
    LtiContext.objects.filter(pk=context.pk).update(
        last_roster_sync_at=timezone.now(), last_roster_sync_report=report.to_json()
    )
