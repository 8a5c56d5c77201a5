"""The site app: the roles that exist on every install."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate

INSTRUCTOR_GROUP = "instructor"
# The authored content an instructor edits in the admin, as (app label, model name).
# Looked up when the signal fires, so a model added later (or not yet migrated) is
# granted on the next `migrate`. Learners' data (reads, attempts, submissions) and
# auth users are deliberately absent.
INSTRUCTOR_CONTENT_MODELS = (
    ("lessons", "lesson"),
    ("quizzes", "quizquestion"),
    ("grader", "exercise"),
    ("grader", "knownwrongvariant"),
)
INSTRUCTOR_ACTIONS = ("add", "change", "view")
# Beyond those: a known-wrong variant is removed from its exercise's page (an inline).
INSTRUCTOR_EXTRA_PERMISSIONS = (("grader", "delete_knownwrongvariant"),)


def instructor_group_sync(using: str = DEFAULT_DB_ALIAS, apps: Any = global_apps, **kwargs: Any) -> None:
    """Create the `instructor` group if missing and grant it add/change/view on the content models.

    Idempotent; permissions of content models that do not exist yet are skipped. Never
    removes a permission an administrator added by hand.
    """
    try:
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
    except LookupError:
        return
    group, _ = Group.objects.using(using).get_or_create(name=INSTRUCTOR_GROUP)
    allowed = {
        (label, f"{action}_{model}") for label, model in INSTRUCTOR_CONTENT_MODELS for action in INSTRUCTOR_ACTIONS
    } | set(INSTRUCTOR_EXTRA_PERMISSIONS)
    candidates = Permission.objects.using(using).filter(
        content_type__app_label__in={label for label, _ in allowed}, codename__in={codename for _, codename in allowed}
    )
    grant = [
        permission
        for permission in candidates.select_related("content_type")
        if (permission.content_type.app_label, permission.codename) in allowed
    ]
    if grant:
        group.permissions.add(*grant)


class GradlabConfig(AppConfig):
    name = "gradlab"
    verbose_name = "Gradlab"

    def ready(self) -> None:
        # No sender: this app has no models, so Django sends it no post_migrate of its
        # own. Running after every app's migrate also picks up permissions that
        # django.contrib.auth has just created for lessons, quizzes and grader.
        post_migrate.connect(instructor_group_sync, dispatch_uid="gradlab.instructor_group_sync")
