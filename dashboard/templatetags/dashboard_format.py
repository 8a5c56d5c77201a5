"""Number formats of the dashboard: durations, percentages, shares for bar widths."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """12 ms, 850 ms, 1.4 s, 2 min 5 s; an em dash when there is no value."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


@register.filter
def percent(share: float | None, digits: int = 0) -> str:
    """A share in 0..1 as a percentage ("42%"); an em dash when there is none."""
    if share is None:
        return "—"
    return f"{100 * share:.{digits}f}%"


@register.filter
def width(share: float | None) -> str:
    """A share in 0..1 as a CSS width percentage with a dot decimal separator, whatever the locale."""
    return f"{100 * max(0.0, min(1.0, share or 0.0)):.2f}%"


@register.filter
def words(code: str) -> str:
    """A snake_case code as words: "sign_flipped" -> "sign flipped"."""
    return str(code).replace("_", " ")
