"""The one slug pattern of the project: lower-case letters and digits in words joined by single hyphens.

Lesson and exercise slugs, quiz question keys and course slugs all follow it (`linear-backward`,
`chain-rule-order`); URLs capture them with Django's `slug` converter and check them with `is_slug`.
"""

from __future__ import annotations

import re

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def is_slug(text: object) -> bool:
    """True if `text` is a string that is a slug as a whole (no surrounding spaces or newline)."""
    return isinstance(text, str) and SLUG_PATTERN.fullmatch(text) is not None
