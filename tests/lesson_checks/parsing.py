"""Parsing of lesson files: front matter, fenced code, `$$` display formulas and their check comments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gradlab.slugs import is_slug

LESSONS_DIR = Path(__file__).resolve().parent.parent.parent / "content" / "lessons"

CHECK_COMMENT = re.compile(r"^<!--\s*check:\s*(?P<target>.*?)\s*-->$")
NONE_WITH_REASON = re.compile(r"^none\s*\((?P<reason>.+)\)$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[\w-]*)")


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str
    line: int


@dataclass(frozen=True)
class DisplayFormula:
    latex: str
    line: int
    check: str | None
    """The NAME of `<!-- check: NAME -->`, "none" for `none (reason)`, None when missing or malformed."""
    check_comment: str | None
    """The raw text after the formula when it is an HTML comment, for error messages."""


@dataclass(frozen=True)
class Lesson:
    path: Path
    meta: dict[str, Any]
    body: str
    body_first_line: int
    code_blocks: tuple[CodeBlock, ...]
    formulas: tuple[DisplayFormula, ...]
    prose: str
    """The body without fenced code and display math: what the learner reads as text."""


def parse_lesson(path: Path) -> Lesson:
    """Parse one lesson file; raises AssertionError naming the problem for a malformed file."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines and lines[0].strip() == "---", f"{path.name}: must start with '---' front matter"
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise AssertionError(f"{path.name}: front matter is not closed by '---'") from None
    meta = yaml.safe_load("\n".join(lines[1:end]))
    assert isinstance(meta, dict), f"{path.name}: front matter must be a mapping"
    body_lines = lines[end + 1 :]
    first_line = end + 2
    code_blocks, formulas, prose = scan_body(body_lines, first_line)
    return Lesson(
        path=path,
        meta=meta,
        body="\n".join(body_lines),
        body_first_line=first_line,
        code_blocks=tuple(code_blocks),
        formulas=tuple(formulas),
        prose="\n".join(prose),
    )


def scan_body(lines: list[str], first_line: int) -> tuple[list[CodeBlock], list[DisplayFormula], list[str]]:
    """Split a Markdown body into fenced code blocks, `$$` display formulas and prose lines."""
    code_blocks: list[CodeBlock] = []
    formulas: list[DisplayFormula] = []
    prose: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        fence = FENCE.match(stripped)
        if fence:
            marker = fence.group("fence")
            start = index
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                index += 1
            code = "\n".join(lines[start + 1 : index]) + "\n"
            code_blocks.append(CodeBlock(fence.group("info").lower(), code, first_line + start))
            index += 1
            continue
        if stripped.startswith("$$"):
            start = index
            if stripped != "$$" and stripped.endswith("$$") and len(stripped) > 4:
                latex = stripped[2:-2]
            else:
                index += 1
                while index < len(lines) and lines[index].strip() != "$$":
                    index += 1
                latex = "\n".join(lines[start + 1 : index])
            index += 1
            while index < len(lines) and not lines[index].strip():
                index += 1
            comment = lines[index].strip() if index < len(lines) else ""
            check, raw = _check_target(comment)
            if raw is not None:
                index += 1
            formulas.append(DisplayFormula(latex.strip(), first_line + start, check, raw))
            continue
        prose.append(line)
        index += 1
    return code_blocks, formulas, prose


def _check_target(comment: str) -> tuple[str | None, str | None]:
    """Return (check name or "none" or None, raw comment or None) for the line after a formula."""
    if not comment.startswith("<!--"):
        return None, None
    match = CHECK_COMMENT.match(comment)
    if not match:
        return None, comment
    target = match.group("target")
    if target.startswith("none"):
        return ("none" if NONE_WITH_REASON.match(target) else None), comment
    if is_slug(target):
        return target, comment
    return None, comment


def load_lessons() -> list[Lesson]:
    return [parse_lesson(path) for path in sorted(LESSONS_DIR.glob("*.md"))]
