"""Writes about lessons that pages trigger."""

from __future__ import annotations

from django.contrib.auth.models import User

from lessons.models import Lesson, LessonRead


def lesson_read_record(user: User, lesson: Lesson) -> bool:
    """Record that `user` opened `lesson`; return True the first time, False afterwards.

    Safe under concurrent requests: the unique (user, lesson) constraint makes a second
    insert fall back to the existing row.
    """
    _, created = LessonRead.objects.get_or_create(user=user, lesson=lesson)
    return created
