"""The quiz page (quizzes/views.py): reading, answering, feedback, bad input, tampering, access."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from contentsync.files import ContentReport
from lessons.models import Lesson
from quizzes.content import load_quizzes
from quizzes.grading import MAX_ANSWER_CHARS, format_matrix
from quizzes.models import QuizAttempt, QuizQuestion
from quizzes.services import (
    question_variant,
    quiz_score_from_states,
    quiz_scores_for,
    quiz_states_for,
    variant_seed,
)

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}
SLUGS = ["backpropagation", "attention-mechanisms", "cnn-architecture", "activation-functions", "batch-normalization"]


@pytest.fixture
def quizzes(db: None) -> dict[str, Lesson]:
    """The five lessons with their real quizzes from content/quizzes."""
    lessons = {slug: Lesson.objects.create(slug=slug, title=slug.title(), question="?") for slug in SLUGS}
    report = ContentReport(root=settings.CONTENT_DIR)
    load_quizzes(settings.CONTENT_DIR, report, write=True)
    assert report.errors == []
    return lessons


@pytest.fixture
def url(quizzes: dict[str, Lesson]) -> str:
    return reverse("quiz_page", args=["backpropagation"])


def as_user(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def question(key: str, lesson: str = "backpropagation") -> QuizQuestion:
    return QuizQuestion.objects.get(lesson__slug=lesson, key=key)


def correct_key(q: QuizQuestion) -> str:
    return next(choice["key"] for choice in q.choices if choice["correct"])


def wrong_key(q: QuizQuestion) -> str:
    return next(choice["key"] for choice in q.choices if not choice["correct"])


def parameterized_form(user: User, q: QuizQuestion, variant: int, answer: str) -> dict[str, str]:
    seed = variant_seed(user.pk, q.pk, variant)
    return {"question": q.key, "variant": str(variant), "seed": str(seed), "answer": answer}


def right_parameterized_answer(user: User, q: QuizQuestion, variant: int) -> str:
    return format_matrix(question_variant(q, user.pk, variant).answer)


# --- reading ---------------------------------------------------------------------------


def test_a_guest_can_read_the_quiz_but_must_log_in_to_answer(client: Client, url: str) -> None:
    response = client.get(url)
    assertContains(response, "Quiz: Backpropagation")
    assertContains(response, "How does backpropagation obtain")
    assertContains(response, "Log in</a> to answer")
    assertNotContains(response, "Check answer")


def test_a_guest_post_redirects_to_log_in_and_stores_nothing(client: Client, url: str) -> None:
    q = question("two-paths-sum")
    response = client.post(url, {"question": q.key, "choice": correct_key(q)})
    assert response.status_code == 302
    assert "next=" in response["Location"]
    fetch = client.post(url, {"question": q.key, "choice": correct_key(q)}, **FETCH)
    assert fetch.status_code == 403
    assert "Log in" in fetch.json()["error"]
    assert QuizAttempt.objects.count() == 0


def test_a_learner_sees_forms_with_their_own_variant_seed(learner: User, url: str) -> None:
    q = question("scalar-network-dw2")
    response = as_user(learner).get(url)
    assertContains(response, "Check answer")
    assertContains(response, f'name="seed" value="{variant_seed(learner.pk, q.pk, 0)}"')
    assertContains(response, "Tolerance: within ±0.001.")  # stated to the learner (sgd-step)
    assertContains(response, "3 rows of 2 numbers")  # the entry hint of the 3x2 dW question


def test_an_unknown_lesson_is_404(client: Client, quizzes: dict[str, Lesson]) -> None:
    assert client.get(reverse("quiz_page", args=["no-such-lesson"])).status_code == 404


def test_every_quiz_page_renders(learner: User, quizzes: dict[str, Lesson]) -> None:
    client = as_user(learner)
    for slug in SLUGS:
        response = client.get(reverse("quiz_page", args=[slug]))
        assertContains(response, 'class="quiz-card')
        assertContains(response, "Score: <strong>0 / ")


def test_the_page_takes_a_fixed_number_of_queries_whatever_the_attempts(
    learner: User, url: str, django_assert_max_num_queries
) -> None:
    client = as_user(learner)
    q = question("scalar-network-dw2")
    for variant in range(3):
        client.post(url, parameterized_form(learner, q, variant, "12345"))
    with django_assert_max_num_queries(8):
        client.get(url)


# --- answering ------------------------------------------------------------------------


def test_a_right_single_choice_is_stored_and_the_explanation_shown(learner: User, url: str) -> None:
    client = as_user(learner)
    q = question("two-paths-sum")
    response = client.post(url, {"question": q.key, "choice": correct_key(q)})
    assert response.status_code == 302
    assert response["Location"].endswith("#q-two-paths-sum")
    attempt = QuizAttempt.objects.get(user=learner, question=q)
    assert attempt.score == 1.0 and attempt.is_correct
    page = client.get(url)
    assertContains(page, "&#10004; Correct")
    assertContains(page, "accumulate")  # from the explanation
    assertContains(page, "Score: <strong>1 / 11</strong>")


def test_a_fixed_question_allows_three_attempts_with_decreasing_credit_and_hides_the_answer_until_settled(
    learner: User, url: str
) -> None:
    client = as_user(learner)
    q = question("two-paths-sum")
    client.post(url, {"question": q.key, "choice": wrong_key(q)})
    page = client.get(url)
    assertContains(page, "Not quite: attempt 1 of 3.")
    assertContains(page, "2 attempts left; the next one earns up to 50% of the point.")
    assertNotContains(page, "accumulate")  # the explanation waits
    assertNotContains(page, "quiz-choice-review")  # and so does the right choice
    right = client.post(url, {"question": q.key, "choice": correct_key(q)})
    assert right.status_code == 302
    assert list(QuizAttempt.objects.filter(question=q).values_list("score", "variant")) == [(0.0, 0), (0.5, 1)]
    page = client.get(url)
    assertContains(page, "&#10004; Correct")
    assertContains(page, "accumulate")
    again = client.post(url, {"question": q.key, "choice": correct_key(q)})
    assertContains(again, "You already answered this question correctly", status_code=400)


def test_after_three_wrong_attempts_the_answer_is_shown_and_no_fourth_is_taken(learner: User, url: str) -> None:
    client = as_user(learner)
    q = question("two-paths-sum")
    for _ in range(3):
        assert client.post(url, {"question": q.key, "choice": wrong_key(q)}).status_code == 302
    fourth = client.post(url, {"question": q.key, "choice": correct_key(q)})
    assertContains(fourth, "You have used all 3 attempts", status_code=400)
    assert QuizAttempt.objects.filter(question=q).count() == 3
    page = client.get(url)
    assertContains(page, "&#10008; Not quite")
    assertContains(page, "accumulate")
    assertContains(page, "No attempts left")


def test_a_quiz_policy_changes_the_attempts_and_credits_stated_on_the_page(learner: User, url: str) -> None:
    from quizzes.models import QuizPolicy

    QuizPolicy.objects.create(lesson=Lesson.objects.get(slug="backpropagation"), max_attempts=2, credits=[1, 0.3])
    client = as_user(learner)
    page = client.get(url)
    assertContains(page, "up to <strong>2 attempts</strong>")
    assertContains(page, "A right answer earns 100% and 30% of the point on attempt 1 and 2.")
    q = question("sgd-step")
    client.post(url, {"question": q.key, "answer": "123456"})
    client.post(url, {"question": q.key, "answer": q.answer if isinstance(q.answer, str) else str(q.answer)})
    assert [round(s, 2) for s in QuizAttempt.objects.filter(question=q).values_list("score", flat=True)] == [0, 0.3]


def test_choices_are_shuffled_per_learner_stably_and_stored_with_the_attempt(
    learner: User, other_learner: User, url: str
) -> None:
    from quizzes.services import choice_order

    questions = list(QuizQuestion.objects.filter(kind__in=["single_choice", "multiple_choice"]))
    assert len(questions) >= 10
    orders = {q.pk: choice_order(learner.pk, q) for q in questions}
    # The files list a right choice first; a shuffled order puts one first only by chance.
    right_first = [q for q in questions if next(c for c in q.choices if c["key"] == orders[q.pk][0])["correct"]]
    assert len(right_first) < len(questions) * 0.75
    assert any(orders[q.pk] != [c["key"] for c in q.choices] for q in questions)
    assert all(sorted(orders[q.pk]) == sorted(c["key"] for c in q.choices) for q in questions)
    assert any(choice_order(other_learner.pk, q) != orders[q.pk] for q in questions)
    assert all(choice_order(learner.pk, q) == orders[q.pk] for q in questions)  # stable
    client = as_user(learner)
    q = question("two-paths-sum")
    page = client.get(url).content.decode()
    card = page[page.index('id="q-two-paths-sum"') :]
    positions = [card.index(f'name="choice" value="{key}"') for key in orders[q.pk]]
    assert positions == sorted(positions)
    client.post(url, {"question": q.key, "choice": wrong_key(q)})
    assert QuizAttempt.objects.get(question=q).choice_order == orders[q.pk]


def feedback_of(page: str, key: str) -> str:
    """The feedback block of question `key` on the quiz page."""
    card = page[page.index(f'id="q-{key}"') :]
    card = card[: card.index("</article>")]
    return card[card.index('class="quiz-feedback') : card.index("</section>")]


def test_a_wrong_choice_with_attempts_left_says_what_was_picked_and_not_which_choice_is_right(
    learner: User, url: str
) -> None:
    client = as_user(learner)
    q = question("two-paths-sum")
    picked = next(choice for choice in q.choices if not choice["correct"])
    right = next(choice for choice in q.choices if choice["correct"])
    client.post(url, {"question": q.key, "choice": picked["key"]})
    feedback = feedback_of(client.get(url).content.decode(), q.key)
    assert "Your answer:" in feedback and f"<li>{picked['text_html']}</li>" in feedback
    assert right["text_html"] not in feedback
    # Several picks of a multiple-choice question are all listed.
    q = question("what-forward-must-keep")
    client.post(url, {"question": q.key, "choice": ["a", "d"]})
    feedback = feedback_of(client.get(url).content.decode(), q.key)
    shown = {choice["key"]: f"<li>{choice['text_html']}</li>" for choice in q.choices}
    assert feedback.count("<li>") == 2 and shown["a"] in feedback and shown["d"] in feedback


def test_multiple_choice_earns_partial_credit(learner: User, url: str) -> None:
    client = as_user(learner)
    q = question("what-forward-must-keep")  # a, b, c correct; d, e wrong
    client.post(url, {"question": q.key, "choice": ["a", "b", "d"]})
    attempt = QuizAttempt.objects.get(question=q)
    assert attempt.score == pytest.approx(1 / 3)
    page = client.get(url)
    assertContains(page, "Partly right: attempt 1 of 3.")  # not settled: the right picks stay hidden
    assertContains(page, "Some of your picks were right, not all.")
    assertContains(page, "best 0.33 / 1")


def test_a_numeric_answer_through_fetch_returns_the_card_in_place(learner: User, url: str) -> None:
    response = as_user(learner).post(url, {"question": "sgd-step", "answer": "1.0505"}, **FETCH)
    data = response.json()
    assert response.status_code == 200 and data["ok"]
    assert "Correct" in data["card_html"] and "Explanation" in data["card_html"]
    assert "Score: <strong>1 / 11</strong>" in data["score_html"]


def test_a_wrong_matrix_shows_the_expected_answer_once_out_of_attempts(learner: User, url: str) -> None:
    client = as_user(learner)
    client.post(url, {"question": "bias-gradient", "answer": "5, 4"})
    page = client.get(url)
    assertContains(page, "entry 1, entry 2")
    assertNotContains(page, "<code>4, 5</code>")
    client.post(url, {"question": "bias-gradient", "answer": "5, 3"})
    client.post(url, {"question": "bias-gradient", "answer": "5, 2"})
    assertContains(client.get(url), "<code>4, 5</code>")


def test_a_parameterized_question_is_retried_with_new_numbers_and_keeps_the_best(learner: User, url: str) -> None:
    client = as_user(learner)
    q = question("scalar-network-dw2")
    wrong = str(float(right_parameterized_answer(learner, q, 0)) + 1)
    client.post(url, parameterized_form(learner, q, 0, wrong))
    page = client.get(url)
    assertContains(page, "Try again with new numbers")
    assertContains(page, f'name="seed" value="{variant_seed(learner.pk, q.pk, 1)}"')
    assertContains(page, "The numbers you answered")
    client.post(url, parameterized_form(learner, q, 1, right_parameterized_answer(learner, q, 1)))
    client.post(url, parameterized_form(learner, q, 2, wrong))
    scores = list(QuizAttempt.objects.filter(question=q).order_by("variant").values_list("variant", "score"))
    assert scores == [(0, 0.0), (1, 1.0), (2, 0.0)]
    assert quiz_scores_for(learner)[q.lesson_id].points == 1.0  # best, not latest


def test_two_learners_get_different_numbers_for_the_same_question(learner: User, other_learner: User, url: str) -> None:
    q = question("linear-layer-dw")
    assert variant_seed(learner.pk, q.pk, 0) != variant_seed(other_learner.pk, q.pk, 0)
    mine = question_variant(q, learner.pk, 0).values
    theirs = question_variant(q, other_learner.pk, 0).values
    assert mine != theirs


# --- bad input: a clear message, nothing stored -----------------------------------------


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"question": "sgd-step", "answer": ""}, "The answer is empty"),
        ({"question": "sgd-step", "answer": "one point oh five"}, "is not a number"),
        ({"question": "sgd-step", "answer": "9" * (MAX_ANSWER_CHARS + 1)}, "too long"),
        ({"question": "bias-gradient", "answer": "4, 5, 6"}, "Expected 2 numbers, got 3"),
        ({"question": "two-paths-sum"}, "Pick one of the choices"),
        ({"question": "two-paths-sum", "choice": "z"}, "does not belong to this question"),
        ({"question": "what-forward-must-keep", "choice": ["a", "q"]}, "does not belong to this question"),
        ({"question": "two-paths-sum", "choice": list("abcdefghijk")}, "Too many choices"),
        ({"question": "receptive-field", "choice": "a"}, "not part of this quiz"),  # a CNN question
        ({"question": "no-such-question", "answer": "1"}, "not part of this quiz"),
    ],
)
def test_bad_input_gets_a_clear_message_and_uses_no_attempt(learner: User, url: str, form: dict, message: str) -> None:
    client = as_user(learner)
    response = client.post(url, form)
    assertContains(response, message, status_code=400)
    fetched = client.post(url, form, **FETCH)
    assert fetched.status_code == 400
    assert message in json.loads(fetched.content)["error"]
    assert QuizAttempt.objects.count() == 0


def test_a_refused_answer_is_kept_in_the_box(learner: User, url: str) -> None:
    response = as_user(learner).post(
        url, {"question": "linear-layer-dw", "variant": "0", "seed": "1", "answer": "1, 2; 3"}
    )
    assertContains(response, "not generated for you", status_code=400)
    assertContains(response, "1, 2; 3</textarea>", status_code=400)


def test_a_tampered_seed_is_refused(learner: User, url: str) -> None:
    q = question("scalar-network-dw2")
    form = parameterized_form(learner, q, 0, "1")
    form["seed"] = str(int(form["seed"]) + 1)
    response = as_user(learner).post(url, form)
    assertContains(response, "These numbers were not generated for you", status_code=400)
    assert not QuizAttempt.objects.exists()


def test_another_learners_variant_is_refused(learner: User, other_learner: User, url: str) -> None:
    q = question("scalar-network-dw2")
    borrowed = parameterized_form(other_learner, q, 0, right_parameterized_answer(other_learner, q, 0))
    response = as_user(learner).post(url, borrowed)
    assertContains(response, "not generated for you", status_code=400)
    assert not QuizAttempt.objects.exists()


def test_a_missing_or_stale_variant_is_refused(learner: User, url: str) -> None:
    client = as_user(learner)
    q = question("scalar-network-dw2")
    missing = client.post(url, {"question": q.key, "answer": "1"})
    assertContains(missing, "missing its question variant", status_code=400)
    client.post(url, parameterized_form(learner, q, 0, "1"))
    stale = client.post(url, parameterized_form(learner, q, 0, right_parameterized_answer(learner, q, 0)))
    assertContains(stale, "You already answered this variant", status_code=400)
    assert QuizAttempt.objects.filter(question=q).count() == 1


# --- access and progress -----------------------------------------------------------------


def test_a_learner_never_sees_another_learners_answers(learner: User, other_learner: User, url: str) -> None:
    as_user(learner).post(url, {"question": "sgd-step", "answer": "7.77"})
    page = as_user(other_learner).get(url)
    assertNotContains(page, "7.77")
    assertContains(page, "Score: <strong>0 / 11</strong>")


def test_scores_per_lesson_count_best_attempts_over_active_questions(learner: User, url: str) -> None:
    client = as_user(learner)
    client.post(url, {"question": "sgd-step", "answer": "1.05"})
    client.post(url, {"question": "what-forward-must-keep", "choice": ["a", "b"]})
    scores = quiz_scores_for(learner)
    backprop = scores[Lesson.objects.get(slug="backpropagation").pk]
    assert (backprop.answered, backprop.total) == (2, 11)
    assert backprop.points == pytest.approx(1 + 2 / 3)
    assert backprop.percent == 15
    attention = scores[Lesson.objects.get(slug="attention-mechanisms").pk]
    assert (attention.answered, attention.points) == (0, 0.0)


def test_a_wrong_answer_with_attempts_left_is_answered_but_not_done(learner: User, url: str) -> None:
    client = as_user(learner)
    backprop = Lesson.objects.get(slug="backpropagation")
    dw2 = question("scalar-network-dw2")

    def both() -> list[tuple[int, int, int]]:
        on_page = quiz_score_from_states(quiz_states_for(learner, backprop))
        bulk = quiz_scores_for(learner)[backprop.pk]
        return [(score.answered, score.done, score.to_retry) for score in (on_page, bulk)]

    client.post(url, {"question": "sgd-step", "answer": "0.55"})
    client.post(url, parameterized_form(learner, dw2, 0, "12345"))
    assert both() == [(2, 0, 2)] * 2
    assertContains(client.get(url), "0 of 11 done, 2 to try again")
    assert not quiz_scores_for(learner)[backprop.pk].is_complete

    client.post(url, {"question": "sgd-step", "answer": "0.56"})
    client.post(url, {"question": "sgd-step", "answer": "0.57"})  # the third and last attempt
    client.post(url, parameterized_form(learner, dw2, 1, right_parameterized_answer(learner, dw2, 1)))
    assert both() == [(2, 2, 0)] * 2
    assertContains(client.get(url), "2 of 11 done</span>")
    progress = client.get(reverse("progress"))
    assertContains(progress, "2 of 11 done)")


def test_a_lessons_own_attempt_limit_decides_when_a_wrong_answer_is_done(learner: User, url: str) -> None:
    from quizzes.models import QuizPolicy

    backprop = Lesson.objects.get(slug="backpropagation")
    QuizPolicy.objects.create(lesson=backprop, max_attempts=1, credits=[1])
    as_user(learner).post(url, {"question": "sgd-step", "answer": "0.55"})
    score = quiz_scores_for(learner)[backprop.pk]
    assert (score.answered, score.done) == (1, 1)
    assert quiz_score_from_states(quiz_states_for(learner, backprop)).done == 1


def test_scores_for_every_lesson_take_two_queries(learner: User, url: str, django_assert_num_queries) -> None:
    as_user(learner).post(url, {"question": "sgd-step", "answer": "1.05"})
    with django_assert_num_queries(2):
        scores = quiz_scores_for(learner)
    assert len(scores) == len(SLUGS)


def test_the_progress_include_shows_the_score_and_links_to_the_quiz(learner: User, url: str) -> None:
    as_user(learner).post(url, {"question": "sgd-step", "answer": "1.05"})
    lesson = Lesson.objects.get(slug="backpropagation")
    html = render_to_string(
        "quizzes/quiz_progress.html", {"lesson": lesson, "quiz_score": quiz_scores_for(learner)[lesson.pk]}
    )
    assert f'href="{reverse("quiz_page", args=["backpropagation"])}"' in html
    assert "1 / 11 (9%)" in html


# --- admin ------------------------------------------------------------------------------


def admin_form(lesson: Lesson, **overrides: str) -> dict[str, str]:
    form = {
        "lesson": str(lesson.pk),
        "key": "admin-made",
        "order": "20",
        "kind": "single_choice",
        "prompt_md": "Which is $1 + 1$?",
        "explanation_md": "Counting.",
        "choices": '[{"text": "2", "correct": true}, {"text": "3"}]',
        "answer": "null",
        "tolerance": "{}",
        "generator": "",
        "is_active": "on",
    }
    return {**form, **overrides}


def test_staff_author_a_question_in_the_admin_with_the_importers_validation(staff: User, url: str) -> None:
    client = as_user(staff)
    lesson = Lesson.objects.get(slug="backpropagation")
    add = reverse("admin:quizzes_quizquestion_add")
    bad = client.post(
        add, admin_form(lesson, choices='[{"text": "2", "correct": true}, {"text": "3", "correct": true}]')
    )
    assertContains(bad, "exactly 1 correct choice, found 2")
    assert not QuizQuestion.objects.filter(key="admin-made").exists()
    good = client.post(add, admin_form(lesson))
    assert good.status_code == 302
    made = QuizQuestion.objects.get(key="admin-made")
    assert "<p>" in made.prompt_html, "the Markdown is rendered on save"
    assert [choice["key"] for choice in made.choices] == ["a", "b"]
    assertContains(client.get(url), "Which is")


def test_a_learner_cannot_open_the_quiz_admin(learner: User, url: str) -> None:
    response = as_user(learner).get(reverse("admin:quizzes_quizattempt_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
