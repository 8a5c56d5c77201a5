"""Shared plumbing for the content pipeline (`manage.py import_content`).

Each kind of content (lessons, quizzes, exercises) has a loader listed in
settings.CONTENT_LOADERS with the signature

    def load(root: Path, report: ContentReport, *, write: bool) -> None

A loader validates every file it owns under `root`, records each problem with
`report.error(path, line, message)` and carries on with the next file; when
`write` is true it upserts the valid files idempotently. One bad file never
stops the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ContentError:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class ContentInvalid(Exception):
    """Raised inside a loader for one file; the loader records it and moves on."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class ContentReport:
    root: Path
    errors: list[ContentError] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what an author should know about an item, e.g. still offline

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def error(self, path: Path, line: int | None, message: str) -> None:
        self.errors.append(ContentError(self.relative(path), line, message))

    @property
    def ok(self) -> bool:
        return not self.errors


def content_hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """Split `---`-delimited YAML front matter from a Markdown body.

    Returns (metadata, body, line number of the body's first line). Raises
    ContentInvalid with the offending line for a missing delimiter, bad YAML or a
    front matter that is not a mapping.
    """
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentInvalid("the file must start with '---' front matter", 1)
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            meta = parse_yaml("".join(lines[1:index]), first_line=2)
            if not isinstance(meta, dict):
                raise ContentInvalid("the front matter must be a mapping of keys to values", 2)
            return meta, "".join(lines[index + 1 :]), index + 2
    raise ContentInvalid("the front matter is not closed by a '---' line", 1)


def parse_yaml(text: str, *, first_line: int = 1) -> Any:
    """Parse YAML, turning a syntax error into ContentInvalid with the file's line number."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = first_line + mark.line if mark is not None else first_line
        raise ContentInvalid(f"invalid YAML: {error.problem or error}", line) from None
    except yaml.YAMLError as error:
        raise ContentInvalid(f"invalid YAML: {error}", first_line) from None


# --- YAML in the authors' style (for export_content) ---------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line text as `|` blocks, keys in the given order, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if "\n" in text.rstrip("\n") or text.endswith("\n"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", text)


_Dumper.add_representer(str, _represent_text)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
