"""An author's preview of a quiz question: what learners see, variant by variant, with the answers.

The question's admin pages show it (quizzes/admin.py): the change page for the saved question,
and a page of its own for the change form as typed, before it is saved. Each variant is the
card of the quiz page before answering (quizzes/quiz_question.html, built by the same
`question_presentation` as a learner's) next to the answer a learner must give, computed by
the generator the grading uses.

A parameterized question shows the variants of seeds 0, 1, 2, ... (seed 0 is the one
import validates with), skipping a seed whose numbers repeat an earlier one, until
PREVIEW_VARIANTS differ or PREVIEW_SEEDS_TRIED seeds are used: a generator with fewer
variants shows all it has. Learners get other seeds (HMAC of their id, quizzes/services.py)
from the same generator. A fixed question shows its one form, choices in the authored order.

Nothing here raises for a broken question: an unknown generator, a generator that fails
or a prompt slot it does not fill becomes an `error` the page shows in place of the card.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quizzes.content import SLOT
from quizzes.grading import format_matrix
from quizzes.models import QuestionKind, QuizQuestion
from quizzes.parameterized import GENERATORS, variant_for
from quizzes.services import Presentation, QuestionState, question_presentation, quiz_policy

PREVIEW_VARIANTS = 3
PREVIEW_SEEDS_TRIED = 20

Numbers = tuple[tuple[str, str], ...]  # a variant's prompt values, sorted: equal numbers, equal variant


@dataclass(frozen=True)
class PreviewVariant:
    """One card of the preview and its answer key; `error` instead of `state` when it cannot be shown."""

    seed: int | None  # None: a fixed question
    state: QuestionState | None = None
    answer_text: str = ""  # the answer as a learner types it; "" for a choice question
    error: str = ""


@dataclass(frozen=True)
class QuestionPreview:
    """The preview of one question: its variants in order, or `error` when none can be drawn."""

    question: QuizQuestion
    variants: list[PreviewVariant]
    error: str = ""  # why no variant can be drawn at all
    seeds_tried: int = 0

    @property
    def has_fewer_variants(self) -> bool:
        """A parameterized question whose generator gave fewer than PREVIEW_VARIANTS different variants."""
        return self.question.is_parameterized() and not self.error and len(self.variants) < PREVIEW_VARIANTS

    @property
    def seeds(self) -> list[int]:
        return [variant.seed for variant in self.variants if variant.seed is not None]


def question_number(question: QuizQuestion) -> int:
    """The question's number on its quiz page, counting it as active (it may be unsaved or retired)."""
    earlier = QuizQuestion.objects.filter(lesson_id=question.lesson_id, is_active=True, order__lt=question.order)
    same_order = QuizQuestion.objects.filter(
        lesson_id=question.lesson_id, is_active=True, order=question.order, key__lt=question.key
    )
    if question.pk is not None:
        earlier, same_order = earlier.exclude(pk=question.pk), same_order.exclude(pk=question.pk)
    return earlier.count() + same_order.count() + 1


def question_preview(question: QuizQuestion) -> QuestionPreview:
    """The preview of `question`, saved or not (see the module docstring); never raises for a broken question."""
    number = question_number(question)
    if not question.is_parameterized():
        max_attempts = quiz_policy(question.lesson_id).max_attempts
        try:
            return QuestionPreview(question, [_fixed_variant(question, number, max_attempts)])
        except (TypeError, ValueError) as problem:  # only a row written by code, bypassing validation
            return QuestionPreview(question, [], error=f"Its stored answer cannot be read: {problem}.")
    if question.generator not in GENERATORS:
        known = ", ".join(sorted(GENERATORS))
        return QuestionPreview(
            question,
            [],
            error=f"Its generator “{question.generator}” does not exist in quizzes/parameterized.py "
            f"(known generators: {known}).",
        )
    variants: list[PreviewVariant] = []
    seen: set[Numbers] = set()
    seeds_tried = 0
    for seed in range(PREVIEW_SEEDS_TRIED):
        if len(variants) == PREVIEW_VARIANTS:
            break
        seeds_tried += 1
        preview, numbers = _parameterized_variant(question, seed, number)
        if numbers is not None and numbers in seen:
            continue
        if numbers is not None:
            seen.add(numbers)
        variants.append(preview)
    return QuestionPreview(question, variants, seeds_tried=seeds_tried)


def _card(
    question: QuizQuestion, number: int, presentation: Presentation, seed: int, max_attempts: int | None
) -> QuestionState:
    """The state of a learner who has not answered yet (the card's controls are disabled in a preview)."""
    return QuestionState(
        question=question,
        number=number,
        prompt_html=presentation.prompt_html,
        variant=0,
        seed=seed,
        answer_shape=presentation.answer_shape,
        tolerance_text=presentation.tolerance_text,
        attempts=0,
        best_score=None,
        last_attempt=None,
        can_answer=True,
        choices=list(question.choices or []) if question.is_choice() else [],
        max_attempts=max_attempts,
        next_credit=1.0,
        id_suffix=f"-preview-{seed}",
    )


def _fixed_variant(question: QuizQuestion, number: int, max_attempts: int) -> PreviewVariant:
    state = _card(question, number, question_presentation(question, None), 0, max_attempts)
    answer_text = ""
    if question.kind in (QuestionKind.NUMERIC, QuestionKind.MATRIX):
        answer_text = format_matrix(np.asarray(question.answer, dtype=float))
    return PreviewVariant(seed=None, state=state, answer_text=answer_text)


def _parameterized_variant(question: QuizQuestion, seed: int, number: int) -> tuple[PreviewVariant, Numbers | None]:
    """The variant of `seed` and its numbers (to spot repeats); an error variant and None when it fails."""
    name = question.generator
    try:
        variant = variant_for(name, seed)
    except Exception as failure:  # the generator is code: whatever it raises, the author must read why
        message = f"Seed {seed}: generator {name} failed with {type(failure).__name__}: {failure}"
        return PreviewVariant(seed=seed, error=message), None
    missing = sorted(set(SLOT.findall(question.prompt_md)) - set(variant.values))
    if missing:
        slots = ", ".join(f"{{{{{slot}}}}}" for slot in missing)
        message = (
            f"Seed {seed}: the prompt uses {slots}, which generator {name} does not fill "
            f"(it fills: {', '.join(sorted(variant.values))})."
        )
        return PreviewVariant(seed=seed, error=message), None
    state = _card(question, number, question_presentation(question, variant), seed, None)
    numbers = tuple(sorted(variant.values.items()))
    return PreviewVariant(seed=seed, state=state, answer_text=format_matrix(variant.answer)), numbers
