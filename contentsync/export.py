"""Writing the database back to `content/` files (`manage.py export_content`).

Each app writes its own files (settings.CONTENT_EXPORTERS: lessons/export.py,
quizzes/export.py, grader/export.py), in the layout its loader reads:

    lessons/<slug>.md                  front matter + the lesson's Markdown (body_md, kept verbatim)
    quizzes/<lesson-slug>.yaml         the lesson's active questions
    exercises/<slug>/exercise.yaml     the spec, with the row's title, order, lesson... applied
    exercises/<slug>/statement.md, starter.py, solution.py, wrong/<name>.py   verbatim
    exercises/<slug>/explanation.md    verbatim, when the exercise has an explanation

Round trip: `import_content` records the text of every file it read
(`record_sources`, the last of settings.CONTENT_LOADERS, into contentsync.ContentSource).
For each file, the exporter parses that recorded text with the loader's own parser and
compares the result with what the database holds now. Equal: nothing was edited since,
and the recorded text is written back byte for byte (comments, quoting and line
wrapping included). Different, or never imported: a canonical file is written from the
database, which the loader reads back to the same rows (and which a second
export reproduces exactly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from contentsync.files import ContentInvalid, ContentReport
from contentsync.models import ContentSource

# --- Recording what was imported --------------------------------------------------------


def source_paths(root: Path) -> list[Path]:
    """The files of `root` whose text is kept for export (those with parsed, not verbatim, fields)."""
    paths = sorted((root / "lessons").glob("*.md")) + sorted((root / "quizzes").glob("*.yaml"))
    return paths + sorted((root / "exercises").glob("*/exercise.yaml"))


def record_sources(root: Path, report: ContentReport, *, write: bool) -> None:
    """Content loader (last in settings.CONTENT_LOADERS): remember the text of each file just imported."""
    if not write:
        return
    for path in source_paths(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the loader has reported it
        ContentSource.objects.update_or_create(path=path.relative_to(root).as_posix(), defaults={"text": text})


def _recorded(relative: str) -> str | None:
    return ContentSource.objects.filter(path=relative).values_list("text", flat=True).first()


# --- Export ----------------------------------------------------------------------------


@dataclass
class ExportReport:
    verbatim: list[str] = field(default_factory=list)  # recorded text written back
    canonical: list[str] = field(default_factory=list)  # written from the database
    copied: list[str] = field(default_factory=list)  # fields kept verbatim in the database

    @property
    def written(self) -> int:
        return len(self.verbatim) + len(self.canonical) + len(self.copied)


@dataclass
class Export:
    """One run of `export_content` into `root`; each app's exporter writes its files through it."""

    root: Path
    report: ExportReport = field(default_factory=ExportReport)

    def parsed_file(self, relative: str, state: Any, canonical: Callable[[], str], parse: Callable[[str], Any]) -> None:
        """Write a file whose fields were parsed at import: the recorded text if `parse` of it still gives
        `state` (what the database holds now), else `canonical()`. `parse` raises ContentInvalid on a bad text."""
        recorded = ContentSource.objects.filter(path=relative).values_list("text", flat=True).first()
        if recorded is not None:
            try:
                if parse(recorded) == state:
                    self._write(relative, recorded, self.report.verbatim)
                    return
            except ContentInvalid:
                pass
        self._write(relative, canonical(), self.report.canonical)

    def stored_file(self, relative: str, text: str) -> None:
        """Write a file the database keeps verbatim (statements, code)."""
        self._write(relative, text, self.report.copied)

    def _write(self, relative: str, text: str, kind: list[str]) -> None:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))
        kind.append(relative)


def export_content(root: Path) -> ExportReport:
    """Write every lesson, active quiz question and active exercise under `root`; return what was written."""
    export = Export(root)
    for dotted in settings.CONTENT_EXPORTERS:
        import_string(dotted)(export)
    return export.report
