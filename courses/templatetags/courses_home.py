"""`{% my_courses %}`: the home page's "My courses" card (nothing for visitors and users in no course)."""

from __future__ import annotations

from typing import Any

from django import template

from courses import selectors

register = template.Library()


@register.inclusion_tag("courses/_home_card.html", takes_context=True)
def my_courses(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    teaching, learning = selectors.courses_for_user(user)
    return {
        "teaching": teaching,
        "learning": learning,
        "upcoming": selectors.learner_assignments(user, courses=learning) if learning else [],
    }
