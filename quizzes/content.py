"""Loader for `content/quizzes/<lesson-slug>.yaml` (listed in settings.CONTENT_LOADERS).

A quiz file is a mapping with a list of questions, `questions`, and optionally the quiz's
attempt policy, `attempts`:

    attempts:                          # optional; fixed questions only (choice, numeric, matrix)
      max: 3                           # attempts per question, 1 to 10, until it is right
      credits: [1, 0.5, 0.25]          # what attempt 1, 2, ... can earn: from 0 to 1, never increasing,
                                       # at most one per attempt (the last repeats); default [1]
    questions:
      - key: chain-rule-order          # unique in the file, a slug
        type: single_choice            # single_choice | multiple_choice | numeric | matrix | parameterized
        prompt: |                      # Markdown with $math$
          ...
        choices:                       # choice types: text + correct, in display order
          - text: ...
            correct: true
        answer: 0.25                   # numeric: a number; matrix: a list, or a list of rows
        tolerance: {absolute: 0.01}    # numeric and matrix: absolute and/or relative
        generator: linear_backward_dw  # parameterized: a name from quizzes/parameterized.py;
                                       # its values fill the prompt's {{name}} slots
        explanation: |                 # Markdown shown after answering
          ...

Every problem is reported with the file and line; a bad file is skipped whole and
the others still load. Writing upserts by (lesson, key); a question that left its
file is retired (hidden), never deleted, so learners' attempts survive. The file is the
source of the policy too: `attempts` sets the lesson's QuizPolicy, and a file without it
removes the row, so the defaults apply (3 attempts earning 1, 1/2, 1/4; quizzes/models.py).
Parameterized questions are never limited: each attempt has new numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from contentsync.files import ContentInvalid, ContentReport, content_hash
from gradlab.markdown import render_markdown as site_render
from gradlab.slugs import is_slug
from lessons.models import Lesson
from quizzes.models import QuestionKind, QuizPolicy, QuizQuestion, policy_problem
from quizzes.parameterized import GENERATORS, variant_for

QUIZ_FOLDER = "quizzes"
LINE_KEY = "__line__"
SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
CHOICE_KEYS = "abcdefghij"
# The seeds used at import and on save to check a generator: each must fill every slot of
# the prompt and give a finite answer (the suite draws 200 seeds of every generator).
VALIDATION_SEEDS = range(8)

COMMON_FIELDS = {"key", "type", "prompt", "explanation"}
FIELDS_BY_KIND = {
    QuestionKind.SINGLE_CHOICE: {"choices"},
    QuestionKind.MULTIPLE_CHOICE: {"choices"},
    QuestionKind.NUMERIC: {"answer", "tolerance"},
    QuestionKind.MATRIX: {"answer", "tolerance"},
    QuestionKind.PARAMETERIZED: {"generator"},
}


def render_markdown(text: str) -> str:
    """Render Markdown to sanitized HTML with the site's renderer (math left to KaTeX in the browser)."""
    return str(site_render(text))


class _LineLoader(yaml.SafeLoader):
    """A safe YAML loader that records, in every mapping, the line it starts on (1-based)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE_KEY] = node.start_mark.line + 1
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)


def parse_quiz_yaml(text: str) -> Any:
    """Parse a quiz file; a syntax error becomes ContentInvalid with its line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - _LineLoader is a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        raise ContentInvalid(f"invalid YAML: {error.problem or error}", mark.line + 1 if mark else 1) from None
    except yaml.YAMLError as error:
        raise ContentInvalid(f"invalid YAML: {error}", 1) from None


def _line(data: dict[str, Any]) -> int:
    return int(data.get(LINE_KEY, 1))


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ContentInvalid(f"'{name}' must be non-empty text", _line(data))
    return value.strip() + "\n"


def _number(value: Any, what: str, line: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ContentInvalid(f"{what} must be a finite number, not {value!r}", line)
    return float(value)


def _tolerance(data: dict[str, Any]) -> dict[str, float]:
    line = _line(data)
    raw = data.get("tolerance")
    if not isinstance(raw, dict):
        raise ContentInvalid("'tolerance' is required: a mapping with 'absolute' and/or 'relative'", line)
    unknown = set(raw) - {"absolute", "relative", LINE_KEY}
    if unknown:
        raise ContentInvalid(f"unknown tolerance key(s): {', '.join(sorted(unknown))}", _line(raw))
    result = {}
    for name in ("absolute", "relative"):
        value = _number(raw.get(name, 0.0), f"tolerance.{name}", _line(raw))
        if value < 0:
            raise ContentInvalid(f"tolerance.{name} must not be negative", _line(raw))
        result[name] = value
    return result


def _choices(data: dict[str, Any], kind: QuestionKind) -> list[dict[str, Any]]:
    line = _line(data)
    raw = data.get("choices")
    if not isinstance(raw, list) or not 2 <= len(raw) <= len(CHOICE_KEYS):
        raise ContentInvalid(f"'choices' must be a list of 2 to {len(CHOICE_KEYS)} choices", line)
    choices = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ContentInvalid(f"choice {index + 1} must be a mapping with 'text' and optionally 'correct'", line)
        unknown = set(item) - {"text", "correct", LINE_KEY}
        if unknown:
            raise ContentInvalid(f"choice {index + 1}: unknown key(s) {', '.join(sorted(unknown))}", _line(item))
        correct = item.get("correct", False)
        if not isinstance(correct, bool):
            raise ContentInvalid(f"choice {index + 1}: 'correct' must be true or false", _line(item))
        text = _text(item, "text")
        choices.append(
            {"key": CHOICE_KEYS[index], "text_md": text, "text_html": render_markdown(text), "correct": correct}
        )
    correct_count = sum(1 for choice in choices if choice["correct"])
    if kind == QuestionKind.SINGLE_CHOICE and correct_count != 1:
        raise ContentInvalid(f"a single_choice question needs exactly 1 correct choice, found {correct_count}", line)
    if kind == QuestionKind.MULTIPLE_CHOICE and correct_count < 1:
        raise ContentInvalid("a multiple_choice question needs at least 1 correct choice", line)
    return choices


def _matrix_answer(data: dict[str, Any]) -> list[Any]:
    line = _line(data)
    raw = data.get("answer")
    if isinstance(raw, list) and raw and all(not isinstance(row, list) for row in raw):
        return [_number(value, "every answer entry", line) for value in raw]
    if isinstance(raw, list) and raw and all(isinstance(row, list) and row for row in raw):
        width = len(raw[0])
        if any(len(row) != width for row in raw):
            raise ContentInvalid("every row of 'answer' must have the same number of entries", line)
        return [[_number(value, "every answer entry", line) for value in row] for row in raw]
    raise ContentInvalid("'answer' must be a list of numbers or a list of equally long rows", line)


def _check_generator(data: dict[str, Any], prompt: str) -> str:
    line = _line(data)
    name = data.get("generator")
    if not isinstance(name, str) or name not in GENERATORS:
        known = ", ".join(sorted(GENERATORS))
        raise ContentInvalid(f"unknown generator {name!r}; known generators: {known}", line)
    slots = set(SLOT.findall(prompt))
    for seed in VALIDATION_SEEDS:
        try:
            variant = variant_for(name, seed)
        except Exception as error:  # the generator's own failure, reported to the author
            raise ContentInvalid(f"generator {name} fails on seed {seed}: {error!r}", line) from error
        missing = slots - set(variant.values)
        if missing:
            raise ContentInvalid(
                f"the prompt uses slot(s) {', '.join(sorted(missing))} that generator {name} does not fill "
                f"on seed {seed} (it fills: {', '.join(sorted(variant.values))})",
                line,
            )
        if not np.all(np.isfinite(variant.answer)):
            raise ContentInvalid(f"generator {name} gives a non-finite answer on seed {seed}", line)
    if not slots:
        raise ContentInvalid("the prompt of a parameterized question must show the numbers: use {{name}} slots", line)
    return name


def parse_question(data: Any, index: int) -> dict[str, Any]:
    """Validate one question mapping and return the field values of a QuizQuestion."""
    if not isinstance(data, dict):
        raise ContentInvalid(f"question {index + 1} must be a mapping")
    line = _line(data)
    key = data.get("key")
    if not is_slug(key):
        raise ContentInvalid(f"question {index + 1}: 'key' must be a slug like 'chain-rule-order', not {key!r}", line)
    try:
        kind = QuestionKind(str(data.get("type")))
    except ValueError:
        raise ContentInvalid(
            f"question {key}: 'type' must be one of {', '.join(QuestionKind.values)}, not {data.get('type')!r}", line
        ) from None
    allowed = COMMON_FIELDS | FIELDS_BY_KIND[kind] | {LINE_KEY}
    unknown = set(data) - allowed
    if unknown:
        raise ContentInvalid(f"question {key}: unknown key(s) for {kind.value}: {', '.join(sorted(unknown))}", line)
    prompt = _text(data, "prompt")
    explanation = _text(data, "explanation")
    fields: dict[str, Any] = {
        "kind": kind.value,
        "order": index,
        "prompt_md": prompt,
        "prompt_html": "" if kind == QuestionKind.PARAMETERIZED else render_markdown(prompt),
        "explanation_md": explanation,
        "explanation_html": render_markdown(explanation),
        "choices": [],
        "answer": None,
        "tolerance": {},
        "generator": "",
    }
    if kind in (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE):
        fields["choices"] = _choices(data, kind)
    elif kind == QuestionKind.NUMERIC:
        fields["answer"] = _number(data.get("answer"), "'answer'", line)
        fields["tolerance"] = _tolerance(data)
    elif kind == QuestionKind.MATRIX:
        fields["answer"] = _matrix_answer(data)
        fields["tolerance"] = _tolerance(data)
    else:
        fields["generator"] = _check_generator(data, prompt)
    return fields


Policy = tuple[int, list[float]]  # (max attempts, credits)


@dataclass(frozen=True)
class QuizFile:
    questions: list[tuple[str, dict[str, Any]]]
    policy: Policy | None  # None: the file has no `attempts`, the defaults apply


def parse_policy(raw: Any) -> Policy:
    """Validate the file's `attempts` mapping; return (max attempts, credits) or raise ContentInvalid."""
    if not isinstance(raw, dict):
        raise ContentInvalid("'attempts' must be a mapping with 'max' and optionally 'credits'", None)
    line = _line(raw)
    unknown = set(raw) - {"max", "credits", LINE_KEY}
    if unknown:
        raise ContentInvalid(f"attempts: unknown key(s) {', '.join(sorted(unknown))} (known: max, credits)", line)
    if "max" not in raw:
        raise ContentInvalid("attempts: 'max' (how many attempts each fixed question allows) is required", line)
    maximum, credits = raw["max"], raw.get("credits", [1])
    problem = policy_problem(maximum, credits)
    if problem:
        raise ContentInvalid(f"attempts: {problem}", line)
    return int(maximum), [float(credit) for credit in credits]


def parse_quiz(text: str) -> QuizFile:
    """Validate a whole quiz file: its questions, (key, fields) each, and its policy; or raise ContentInvalid."""
    document = parse_quiz_yaml(text)
    if not isinstance(document, dict) or not isinstance(document.get("questions"), list):
        raise ContentInvalid("a quiz file is a mapping with a 'questions' list", 1)
    unknown = set(document) - {"questions", "attempts", LINE_KEY}
    if unknown:
        raise ContentInvalid(f"unknown top-level key(s): {', '.join(sorted(unknown))} (known: attempts, questions)", 1)
    policy = None
    if "attempts" in document:
        try:
            policy = parse_policy(document["attempts"])
        except ContentInvalid as problem:
            raise ContentInvalid(problem.message, problem.line or _line(document)) from None
    if not document["questions"]:
        raise ContentInvalid("the quiz has no questions", 1)
    questions: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(document["questions"]):
        fields = parse_question(raw, index)
        key = raw["key"]
        if key in seen:
            raise ContentInvalid(f"question key '{key}' is used twice (first on line {seen[key]})", _line(raw))
        seen[key] = _line(raw)
        questions.append((key, fields))
    return QuizFile(questions=questions, policy=policy)


def parse_quiz_file(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Validate a whole quiz file; return (key, fields) per question or raise ContentInvalid."""
    return parse_quiz(text).questions


def _lesson_for(path: Path, root: Path, *, write: bool) -> Lesson | None:
    slug = path.stem
    lesson = Lesson.objects.filter(slug=slug).first()
    if lesson is None and (write or not (root / "lessons" / f"{slug}.md").exists()):
        raise ContentInvalid(
            f"no lesson '{slug}': a quiz file is named after its lesson (content/lessons/{slug}.md)", None
        )
    return lesson


def load_quizzes(root: Path, report: ContentReport, *, write: bool) -> None:
    """Validate every `root/quizzes/*.yaml`; with `write`, upsert the valid ones (see module docstring)."""
    folder = root / QUIZ_FOLDER
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.suffix not in {".yaml", ".yml"}:
            if path.is_file():
                report.error(path, None, "not a quiz file: quiz files end in .yaml")
            continue
        try:
            quiz = parse_quiz(path.read_text(encoding="utf-8"))
            lesson = _lesson_for(path, root, write=write)
        except ContentInvalid as problem:
            report.error(path, problem.line, problem.message)
            continue
        except UnicodeDecodeError:
            report.error(path, None, "the file is not UTF-8 text")
            continue
        if write and lesson is not None:
            _upsert(lesson, quiz.questions, report.relative(path), report)
            _set_policy(lesson, quiz.policy, report)


def _set_policy(lesson: Lesson, policy: Policy | None, report: ContentReport) -> None:
    """Make the lesson's QuizPolicy what the file says (no row when the file has no `attempts`)."""
    name = f"quiz {lesson.slug} attempts"
    current = QuizPolicy.objects.filter(lesson=lesson).first()
    if policy is None:
        if current is not None:
            current.delete()
            report.updated.append(f"{name} (back to the defaults: the file has no 'attempts')")
        return
    maximum, credits = policy
    if current is None:
        QuizPolicy.objects.create(lesson=lesson, max_attempts=maximum, credits=credits)
        report.created.append(name)
    elif current.max_attempts == maximum and [float(credit) for credit in current.credits] == credits:
        report.unchanged.append(name)
    else:
        current.max_attempts, current.credits = maximum, credits
        current.save(update_fields=["max_attempts", "credits"])
        report.updated.append(name)


def _upsert(lesson: Lesson, questions: list[tuple[str, dict[str, Any]]], source: str, report: ContentReport) -> None:
    existing = {question.key: question for question in QuizQuestion.objects.filter(lesson=lesson)}
    for key, fields in questions:
        digest = content_hash(json.dumps(fields, sort_keys=True))
        name = f"quiz {lesson.slug}/{key}"
        question = existing.pop(key, None)
        if question is None:
            QuizQuestion.objects.create(
                lesson=lesson, key=key, source_path=source, content_hash=digest, is_active=True, **fields
            )
            report.created.append(name)
        elif question.content_hash == digest and question.is_active and question.source_path == source:
            report.unchanged.append(name)
        else:
            for field, value in fields.items():
                setattr(question, field, value)
            question.source_path = source
            question.content_hash = digest
            question.is_active = True
            question.save()
            report.updated.append(name)
    for key, question in existing.items():
        if question.is_active:
            question.is_active = False
            question.save(update_fields=["is_active", "updated_at"])
            report.updated.append(f"quiz {lesson.slug}/{key} (retired: no longer in {source})")
