"""`{% gradebook_rows book %}`: the gradebook's table body, written in Python.

300 learners x 30 items is 9,000 cells; through the template engine they take seconds,
as one string join tens of milliseconds. Every value from a user is escaped here.
"""

from __future__ import annotations

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from courses.selectors import Gradebook, points_text
from grader.verdicts import Verdict

register = template.Library()

NO_POINTS = "&ndash;"
OVERRIDE_MARK = ' <span class="chip" title="overridden">✎</span>'
LATE_MARK = ' <span class="chip v-wrong_answer">late</span>'


@register.simple_tag
def gradebook_rows(book: Gradebook) -> SafeString:
    """One <tr> per learner: name, a cell per item (a link to the learner's work on it: points, override
    mark, late mark, counting time), the total. Cell links are relative to the gradebook page."""
    parts: list[str] = []
    add = parts.append
    shown: dict[float | None, str] = {None: NO_POINTS}  # points repeat across a gradebook: written out once
    for row in book.rows:
        name = escape(row.username)
        if row.full_name:
            name += f' <span class="muted">{escape(row.full_name)}</span>'
        add(f'<tr><th scope="row">{name}</th>')
        link = f'<a href="{row.learner_id}/'
        for item_id, cell in zip(row.item_ids, row.cells, strict=True):
            if cell is None:
                add(f'<td class="num">{link}{item_id}/">{NO_POINTS}</a></td>')
                continue
            _, _, points, override, counted, is_late, hints, penalty = cell  # a Cell, unpacked at once
            text = shown.get(points)
            if text is None:
                text = shown[points] = points_text(points) or NO_POINTS
            if override is not None:  # an override is never late
                marks, late = OVERRIDE_MARK, ""
            elif is_late:
                marks, late = LATE_MARK, " is-late"
            else:
                marks = late = ""
            if hints:
                charge = f", -{points_text(penalty)} points" if penalty else ""
                title = f"{hints} hint(s) revealed before the counted submission{charge}"
                marks += f' <span class="chip hint-mark" title="{title}">hint&times;{hints}</span>'
            if counted:
                # UTC text ("2027-03-01 16:59:00.123456"): to the second as ISO 8601 (iso_utc, written out here
                # for its 9,000 calls) and short; the page's script shows the time in the reader's zone.
                marks += f'<time datetime="{counted[:10]}T{counted[11:19]}Z">{counted[5:10]} {counted[11:16]}</time>'
            add(f'<td class="num{late}">{link}{item_id}/">{text}</a>{marks}</td>')
        add(f'<td class="num total">{points_text(row.total)}</td></tr>')
    return mark_safe("".join(parts))  # noqa: S308 (every user value above is escaped)


@register.filter
def verdict_label(code: str) -> str:
    """'wrong_answer' -> 'Wrong answer' (as the submission pages write a verdict); other text as it is."""
    try:
        return Verdict(code).label
    except ValueError:
        return code


@register.filter
def percent(fraction: float | None) -> str:
    """A submission's score (0..1) as the submission pages show it: 0.1429 -> '14%'; None -> an en dash."""
    return "\u2013" if fraction is None else f"{fraction * 100:.0f}%"
