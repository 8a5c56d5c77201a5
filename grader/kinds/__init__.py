"""Registry of exercise kinds: `KINDS[slug]` is the Kind instance for an exercise slug.

Every module in this package is imported once, on first import of the package, and
registers its kinds with `@register`; adding a kind is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from grader.kinds.base import Case, Kind, MistakeModel, Output, TrainingSetup

KINDS: dict[str, Kind] = {}

KindClass = TypeVar("KindClass", bound=type[Kind])


def register(cls: KindClass) -> KindClass:
    """Class decorator: instantiate the kind and file it under its slug (slugs must be unique)."""
    if cls.slug in KINDS and type(KINDS[cls.slug]) is not cls:
        raise ValueError(f"two kinds share the slug {cls.slug!r}")
    KINDS[cls.slug] = cls()
    return cls


def get_kind(slug: str) -> Kind:
    """The kind registered under `slug`; KeyError with the known slugs otherwise."""
    try:
        return KINDS[slug]
    except KeyError:
        known = ", ".join(sorted(KINDS))
        raise KeyError(f"no exercise kind {slug!r} (known: {known})") from None


def _import_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


_import_all()

__all__ = ["KINDS", "Case", "Kind", "MistakeModel", "Output", "TrainingSetup", "get_kind", "register"]
