"""Quizzes written back as `content/quizzes/<lesson-slug>.yaml` files (`manage.py export_content`).

The writer side of quizzes/content.py, run by contentsync/export.py (settings.CONTENT_EXPORTERS).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from contentsync.files import dump_yaml
from quizzes.content import Policy, parse_quiz
from quizzes.models import QuizPolicy, QuizQuestion

if TYPE_CHECKING:
    from contentsync.export import Export

QUIZ_HEADER = "# Quiz for content/lessons/{slug}.md. Format (questions, attempts): see quizzes/content.py.\n"


def export_quizzes(export: Export) -> None:
    """Write the active questions of each lesson that has some as `quizzes/<lesson-slug>.yaml`."""
    questions: dict[str, list[Any]] = {}
    for question in QuizQuestion.objects.filter(is_active=True).select_related("lesson").order_by("order", "key"):
        questions.setdefault(question.lesson.slug, []).append(question)
    policies: dict[str, Policy] = {
        policy.lesson.slug: (policy.max_attempts, [float(credit) for credit in policy.credits])
        for policy in QuizPolicy.objects.select_related("lesson")
    }
    for slug, items in sorted(questions.items()):
        policy = policies.get(slug)
        export.parsed_file(
            f"quizzes/{slug}.yaml",
            quiz_state(items, policy),
            partial(quiz_canonical, slug, items, policy),
            quiz_state_of_text,
        )


def _question_state(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": fields["kind"],
        "prompt_md": fields["prompt_md"],
        "explanation_md": fields["explanation_md"],
        "choices": [(choice["text_md"], bool(choice["correct"])) for choice in fields["choices"] or []],
        "answer": fields["answer"],
        "tolerance": fields["tolerance"] or {},
        "generator": fields["generator"] or "",
    }


QuizState = tuple[list[tuple[str, dict[str, Any]]], Policy | None]


def quiz_state(questions: Iterable[Any], policy: Policy | None = None) -> QuizState:
    return [(question.key, _question_state(vars(question))) for question in questions], policy


def quiz_state_of_text(text: str) -> QuizState:
    quiz = parse_quiz(text)
    return [(key, _question_state(fields)) for key, fields in quiz.questions], quiz.policy


def quiz_canonical(lesson_slug: str, questions: Iterable[Any], policy: Policy | None = None) -> str:
    items = []
    for question in questions:
        item: dict[str, Any] = {"key": question.key, "type": question.kind, "prompt": question.prompt_md}
        if question.choices:
            item["choices"] = [
                {"text": choice["text_md"], **({"correct": True} if choice["correct"] else {})}
                for choice in question.choices
            ]
        if question.answer is not None:
            item["answer"] = question.answer
        if question.tolerance:
            tolerance = {name: value for name, value in question.tolerance.items() if value}
            item["tolerance"] = tolerance or {"absolute": 0.0}
        if question.generator:
            item["generator"] = question.generator
        item["explanation"] = question.explanation_md
        items.append(item)
    blocks = [dump_yaml([item]) for item in items]
    indented = "\n".join(
        "".join(f"  {line}" if line.strip() else line for line in block.splitlines(True)) for block in blocks
    )
    attempts = ""
    if policy is not None:
        maximum, credits = policy
        numbers = ", ".join(str(int(credit)) if credit.is_integer() else repr(credit) for credit in credits)
        attempts = f"attempts:\n  max: {maximum}\n  credits: [{numbers}]\n"
    return QUIZ_HEADER.format(slug=lesson_slug) + attempts + "questions:\n" + indented
