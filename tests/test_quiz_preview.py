"""The quiz question's preview in the admin: variants as learners see them, with their answers.

Expected answers come from the generators the grading uses (quizzes.parameterized.variant_for),
and every answer the preview shows is put through the grading (quizzes.grading.grade_matrix).
"""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from lessons.models import Lesson
from quizzes.content import parse_question
from quizzes.grading import Tolerance, format_matrix, grade_matrix
from quizzes.models import QuizQuestion
from quizzes.parameterized import GENERATORS, Variant, variant_for
from quizzes.preview import PREVIEW_VARIANTS
from quizzes.services import render_parameterized_prompt

pytestmark = pytest.mark.django_db

PARAMETERIZED = {
    "key": "dw",
    "type": "parameterized",
    "prompt": "For $x = {{x}}$ and $dout = {{dout}}$, what is $dw$?",
    "generator": "linear_backward_dw",
    "explanation": "$dw = x^T \\, dout$.",
}


@pytest.fixture
def lesson(db: None) -> Lesson:
    return Lesson.objects.create(slug="backprop", title="Backprop", body_md="x")


def make_question(lesson: Lesson, authored: dict[str, Any], **stored: Any) -> QuizQuestion:
    """A question as import_content writes it (validated by parse_question), then `stored` as written by code."""
    fields = parse_question(authored, 0) | stored
    return QuizQuestion.objects.create(lesson=lesson, key=authored["key"], **fields)


def change_page(client: Any, question: QuizQuestion) -> str:
    response = client.get(reverse("admin:quizzes_quizquestion_change", args=[question.pk]))
    assert response.status_code == 200
    return response.content.decode()


def shown_variants(page: str) -> list[tuple[int, str]]:
    """(seed, answer text) of every variant the preview shows, in order."""
    seeds = [int(seed) for seed in re.findall(r'class="quiz-preview-variant" data-seed="(\d+)"', page)]
    answers = [html.unescape(text) for text in re.findall(r'<code class="quiz-preview-answer">([^<]*)</code>', page)]
    assert len(seeds) == len(answers)
    return list(zip(seeds, answers, strict=True))


def form_data(question: QuizQuestion, **changes: str) -> dict[str, str]:
    """The change form's POST data, as the admin page sends it for `question`."""
    data = {
        "lesson": str(question.lesson_id),
        "key": question.key,
        "order": str(question.order),
        "kind": question.kind,
        "prompt_md": question.prompt_md,
        "explanation_md": question.explanation_md,
        "choices": "",
        "answer": "null",
        "tolerance": "{}",
        "generator": question.generator,
        "is_active": "on",
    }
    return data | changes


def test_the_change_page_shows_distinct_variants_with_the_answers_the_grading_accepts(
    client: Any, instructor: User, lesson: Lesson
) -> None:
    question = make_question(lesson, PARAMETERIZED)
    client.force_login(instructor)
    page = change_page(client, question)
    variants = shown_variants(page)
    assert len(variants) == PREVIEW_VARIANTS
    assert len({seed for seed, _ in variants}) == PREVIEW_VARIANTS
    prompts = set()
    for seed, answer in variants:
        variant = variant_for(question.generator, seed)
        assert answer == format_matrix(variant.answer)
        assert grade_matrix(answer, variant.answer, variant.tolerance).is_correct
        prompt = render_parameterized_prompt(question, variant)
        assert prompt in page  # the learner's prompt, with this variant's numbers
        prompts.add(prompt)
    assert len(prompts) == PREVIEW_VARIANTS
    # The card is the quiz page's, without a form of its own inside the admin's.
    assert page.count('<article class="quiz-card') == PREVIEW_VARIANTS
    assert 'name="seed"' not in page and 'action="/lessons/' not in page
    rows, columns = variant_for(question.generator, 0).answer_shape
    assert f"{rows} rows of {columns} numbers" in page and "Tolerance: exact value." in page
    assert '<span class="math"' in page and "vendor/katex/katex.min.js" in page and "js/lesson.js" in page
    assert "(the same for every variant)" in page and "dw = x^T" in page


def test_a_fixed_choice_question_shows_its_one_form_with_the_correct_choice_marked(
    client: Any, instructor: User, lesson: Lesson
) -> None:
    question = make_question(
        lesson,
        {
            "key": "sum",
            "type": "single_choice",
            "prompt": "Which is $1 + 1$?",
            "choices": [{"text": "$3$"}, {"text": "$2$", "correct": True}],
            "explanation": "Counting.",
        },
    )
    client.force_login(instructor)
    page = change_page(client, question)
    assert shown_variants(page) == [] and page.count('<article class="quiz-card') == 1
    assert 'type="radio" name="choice" value="a" disabled' in page
    key = page[page.index('class="quiz-preview-key"') :]
    marked = re.findall(r'<li class="is-right" data-correct>.*?"quiz-choice-text">(.*?)</span>\s*</li>', key, re.S)
    correct = [choice["text_html"] for choice in question.choices if choice["correct"]]
    assert marked == correct and len(correct) == 1
    assert "Counting." in page


def test_a_fixed_matrix_question_shows_its_answer_as_graded(client: Any, instructor: User, lesson: Lesson) -> None:
    answer = [[1.5, -2], [0, 4]]
    question = make_question(
        lesson,
        {
            "key": "m",
            "type": "matrix",
            "prompt": "Write $M$.",
            "answer": answer,
            "tolerance": {"absolute": 0.01},
            "explanation": "It is $M$.",
        },
    )
    client.force_login(instructor)
    page = change_page(client, question)
    shown = re.findall(r'<code class="quiz-preview-answer">([^<]*)</code>', page)
    assert len(shown) == 1
    assert grade_matrix(shown[0], np.asarray(answer), Tolerance(absolute=0.01)).is_correct
    assert shown[0] == grade_matrix("0, 0; 0, 0", np.asarray(answer), Tolerance()).expected_text


def test_a_generator_with_fewer_variants_shows_all_it_has(
    client: Any, instructor: User, lesson: Lesson, monkeypatch: pytest.MonkeyPatch
) -> None:
    def coin(rng: np.random.Generator) -> Variant:
        side = float(rng.integers(0, 2))
        return Variant(values={"x": str(int(side))}, answer=np.asarray(side), tolerance=Tolerance())

    monkeypatch.setitem(GENERATORS, "coin", coin)
    question = make_question(
        lesson,
        {"key": "coin", "type": "parameterized", "prompt": "Type {{x}}.", "generator": "coin", "explanation": "."},
    )
    client.force_login(instructor)
    page = change_page(client, question)
    variants = shown_variants(page)
    assert sorted(answer for _, answer in variants) == ["0", "1"]
    assert [answer for seed, answer in variants] == [
        format_matrix(variant_for("coin", seed).answer) for seed, _ in variants
    ]
    assert "It gave only 2 different variants in" in page


def test_a_broken_parameterization_shows_what_is_wrong_instead_of_failing(
    client: Any, instructor: User, lesson: Lesson, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed = make_question(lesson, PARAMETERIZED | {"key": "renamed"}, generator="linear_backward_dw_v1")
    unfilled = make_question(
        lesson, PARAMETERIZED | {"key": "unfilled"}, prompt_md="For $x = {{x}}$ and $w = {{w}}$, what is $dw$?"
    )

    def fragile(rng: np.random.Generator) -> Variant:
        variant = GENERATORS["linear_backward_dw"](rng)
        if float(variant.answer[0, 0]) < 0:
            raise ZeroDivisionError("a negative corner")
        return variant

    monkeypatch.setitem(GENERATORS, "fragile", fragile)
    # Saving checks the generator on several seeds; this one broke after it was saved (code changed).
    failing = make_question(lesson, PARAMETERIZED | {"key": "failing"}, generator="fragile")
    client.force_login(instructor)

    page = change_page(client, renamed)
    assert "This question cannot be shown to learners." in page
    assert "Its generator “linear_backward_dw_v1” does not exist" in page and '<article class="quiz-card' not in page

    page = change_page(client, unfilled)
    assert "the prompt uses {{w}}, which generator linear_backward_dw does not fill (it fills: dout, x)" in page
    assert "This variant cannot be shown." in page and '<article class="quiz-card' not in page

    page = change_page(client, failing)
    failing_seeds = [
        seed for seed in range(PREVIEW_VARIANTS) if variant_for("linear_backward_dw", seed).answer[0, 0] < 0
    ]
    assert failing_seeds, "pick a generator condition that fails for some of the first seeds"
    for seed in failing_seeds:
        assert f"Seed {seed}: generator fragile failed with ZeroDivisionError: a negative corner" in page
    assert page.count('<article class="quiz-card') == PREVIEW_VARIANTS - len(failing_seeds)


def test_preview_without_saving_shows_the_form_as_typed_and_saves_nothing(
    client: Any, instructor: User, lesson: Lesson
) -> None:
    question = make_question(lesson, PARAMETERIZED)
    client.force_login(instructor)
    change = change_page(client, question)
    preview_url = reverse("admin:quizzes_quizquestion_preview_saved", args=[question.pk])
    assert f'formaction="{preview_url}"' in change and 'formtarget="_blank"' in change
    add = client.get(reverse("admin:quizzes_quizquestion_add")).content.decode()
    assert f'formaction="{reverse("admin:quizzes_quizquestion_preview")}"' in add

    edited = form_data(question, prompt_md="Given $x = {{x}}$ and upstream $g = {{dout}}$, find $dw$.")
    response = client.post(preview_url, edited)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Not saved: this is the form as you sent it." in page and "upstream" in page
    seeds = [seed for seed, _ in shown_variants(page)]
    assert len(seeds) == PREVIEW_VARIANTS
    question.refresh_from_db()
    assert "upstream" not in question.prompt_md

    new = form_data(question, key="dw-again", prompt_md="New: $x = {{x}}$, $dout = {{dout}}$.")
    response = client.post(reverse("admin:quizzes_quizquestion_preview"), new)
    assert response.status_code == 200 and "New: " in response.content.decode()
    assert "The question does not exist until you save it." in response.content.decode()
    assert not QuizQuestion.objects.filter(key="dw-again").exists()

    refused = client.post(reverse("admin:quizzes_quizquestion_preview"), new | {"generator": "nope"})
    assert "The form would be refused on save" in refused.content.decode()
    assert "unknown generator &#x27;nope&#x27;" in refused.content.decode()
    assert QuizQuestion.objects.count() == 1


def test_a_learner_cannot_reach_the_preview(client: Any, learner: User, staff: User, lesson: Lesson) -> None:
    question = make_question(lesson, PARAMETERIZED)
    urls = [
        reverse("admin:quizzes_quizquestion_change", args=[question.pk]),
        reverse("admin:quizzes_quizquestion_preview_saved", args=[question.pk]),
    ]
    for user in (None, learner):
        client.logout()
        if user is not None:
            client.force_login(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
        for url in (urls[1], reverse("admin:quizzes_quizquestion_preview")):
            response = client.post(url, form_data(question))
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    # Staff without the quiz permissions is refused too; a superuser gets the page.
    helper = User.objects.create_user("tara", "tara@example.com", "x", is_staff=True)
    client.force_login(helper)
    assert client.get(urls[1]).status_code == 403
    assert client.post(reverse("admin:quizzes_quizquestion_preview"), form_data(question)).status_code == 403
    client.force_login(staff)
    assert client.get(urls[1]).status_code == 200
