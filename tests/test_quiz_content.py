"""The quiz loader (quizzes/content.py) on the real content/quizzes files and on broken ones."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin

from contentsync.files import ContentReport
from lessons.models import Lesson
from quizzes.content import SLOT, load_quizzes, parse_quiz_file
from quizzes.models import QuestionKind, QuizAttempt, QuizQuestion
from quizzes.parameterized import variant_for
from tests.conftest import unavailable

LESSON_SLUGS = [
    "backpropagation",
    "attention-mechanisms",
    "cnn-architecture",
    "activation-functions",
    "batch-normalization",
]
MIN_QUESTIONS_PER_LESSON = 8
MIN_PARAMETERIZED_PER_LESSON = 2

GOOD_QUIZ = """\
questions:
  - key: pick-one
    type: single_choice
    prompt: Which is right?
    choices:
      - text: this one
        correct: true
      - text: that one
    explanation: Because.
  - key: a-number
    type: numeric
    prompt: How much is $1/4$?
    answer: 0.25
    tolerance: {absolute: 0.01}
    explanation: One quarter.
"""


def make_lessons(*slugs: str) -> None:
    for order, slug in enumerate(slugs):
        Lesson.objects.create(slug=slug, title=slug.replace("-", " ").title(), question="?", order=order)


def write(root: Path, name: str, text: str) -> Path:
    path = root / "quizzes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(root: Path, *, write: bool = True) -> ContentReport:
    report = ContentReport(root=root)
    load_quizzes(root, report, write=write)
    return report


# --- the real content ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_real_quizzes_load_without_errors_and_cover_every_lesson() -> None:
    make_lessons(*LESSON_SLUGS)
    report = load(settings.CONTENT_DIR)
    assert report.errors == []
    for slug in LESSON_SLUGS:
        questions = QuizQuestion.objects.filter(lesson__slug=slug)
        assert questions.count() >= MIN_QUESTIONS_PER_LESSON, slug
        assert questions.filter(kind=QuestionKind.PARAMETERIZED).count() >= MIN_PARAMETERIZED_PER_LESSON, slug
        assert all(q.explanation_html.strip() for q in questions), slug
    assert QuizQuestion.objects.count() >= 40
    kinds = set(QuizQuestion.objects.values_list("kind", flat=True))
    assert kinds == set(QuestionKind.values)


@pytest.mark.django_db
def test_reimporting_the_real_quizzes_changes_nothing() -> None:
    make_lessons(*LESSON_SLUGS)
    first = load(settings.CONTENT_DIR)
    ids = dict(QuizQuestion.objects.values_list("key", "id"))
    again = load(settings.CONTENT_DIR)
    assert again.created == [] and again.updated == []
    assert len(again.unchanged) == len(first.created)
    assert dict(QuizQuestion.objects.values_list("key", "id")) == ids


@pytest.mark.django_db
def test_math_in_prompts_is_kept_for_katex_and_not_mangled() -> None:
    make_lessons(*LESSON_SLUGS)
    load(settings.CONTENT_DIR)
    question = QuizQuestion.objects.get(lesson__slug="backpropagation", key="bias-gradient")
    assert r"\begin{bmatrix} 1 &amp; 2 \\ 3" in question.prompt_html
    assert "<script" not in question.prompt_html


# --- validation ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_good_file_is_imported_with_choice_keys_in_order(tmp_path: Path) -> None:
    make_lessons("backpropagation")
    write(tmp_path, "backpropagation.yaml", GOOD_QUIZ)
    report = load(tmp_path)
    assert report.errors == []
    assert report.created == ["quiz backpropagation/pick-one", "quiz backpropagation/a-number"]
    pick = QuizQuestion.objects.get(key="pick-one")
    assert [(c["key"], c["correct"]) for c in pick.choices] == [("a", True), ("b", False)]
    assert pick.source_path == f"{tmp_path.name}/quizzes/backpropagation.yaml"
    number = QuizQuestion.objects.get(key="a-number")
    assert number.answer == 0.25 and number.tolerance == {"absolute": 0.01, "relative": 0.0}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("questions:\n  - key: x\n    type: [unclosed\n", 4, "invalid YAML"),
        ("questions: []\n", 1, "no questions"),
        ("quiz:\n  - 1\n", 1, "'questions' list"),
        (
            "questions:\n  - key: Bad Key\n    type: numeric\n",
            2,
            "'key' must be a slug",
        ),
        (
            "questions:\n  - key: q\n    type: essay\n    prompt: p\n    explanation: e\n",
            2,
            "'type' must be one of",
        ),
        (
            "questions:\n  - key: q\n    type: numeric\n    prompt: p\n    explanation: e\n    answer: 1\n",
            2,
            "'tolerance' is required",
        ),
        (
            "questions:\n  - key: q\n    type: numeric\n    prompt: p\n    explanation: e\n    answer: one\n"
            "    tolerance: {absolute: 0.1}\n",
            2,
            "'answer' must be a finite number",
        ),
        (
            "questions:\n  - key: q\n    type: numeric\n    prompt: p\n    answer: 1\n    tolerance: {absolute: 0.1}\n",
            2,
            "'explanation' must be non-empty",
        ),
        (
            "questions:\n  - key: q\n    type: single_choice\n    prompt: p\n    explanation: e\n    choices:\n"
            "      - text: a\n        correct: true\n      - text: b\n        correct: true\n",
            2,
            "exactly 1 correct choice, found 2",
        ),
        (
            "questions:\n  - key: q\n    type: matrix\n    prompt: p\n    explanation: e\n"
            "    answer: [[1, 2], [3]]\n    tolerance: {absolute: 0.1}\n",
            2,
            "same number of entries",
        ),
        (
            "questions:\n  - key: q\n    type: parameterized\n    prompt: 'x = {{x}}'\n    explanation: e\n"
            "    generator: os.system\n",
            2,
            "unknown generator 'os.system'",
        ),
        (
            "questions:\n  - key: q\n    type: parameterized\n    prompt: 'w = {{weights}}'\n    explanation: e\n"
            "    generator: linear_backward_dw\n",
            2,
            "slot(s) weights that generator linear_backward_dw does not fill",
        ),
        (
            "questions:\n  - key: q\n    type: numeric\n    prompt: p\n    explanation: e\n    answer: 1\n"
            "    tolerance: {absolute: 0.1}\n    choices: []\n",
            2,
            "unknown key(s) for numeric: choices",
        ),
        (
            "questions:\n  - key: q\n    type: numeric\n    prompt: p\n    explanation: e\n    answer: 1\n"
            "    tolerance: {absolute: 0.1}\n  - key: q\n    type: numeric\n    prompt: p\n    explanation: e\n"
            "    answer: 1\n    tolerance: {absolute: 0.1}\n",
            8,
            "used twice (first on line 2)",
        ),
    ],
)
@pytest.mark.django_db
def test_a_bad_file_is_reported_with_its_line_and_a_clear_message(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    make_lessons("backpropagation")
    write(tmp_path, "backpropagation.yaml", text)
    report = load(tmp_path)
    assert len(report.errors) == 1, report.errors
    error = report.errors[0]
    assert error.path.endswith("quizzes/backpropagation.yaml")
    assert error.line == line, str(error)
    assert message in error.message, str(error)
    assert QuizQuestion.objects.count() == 0


@pytest.mark.django_db
def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    make_lessons("backpropagation", "batch-normalization")
    write(tmp_path, "backpropagation.yaml", "questions:\n  - key: broken\n    type: numeric\n")
    write(tmp_path, "batch-normalization.yaml", GOOD_QUIZ)
    report = load(tmp_path)
    assert [str(error).split(":")[0] for error in report.errors] == [
        str(Path(tmp_path.name) / "quizzes" / "backpropagation.yaml")
    ]
    assert QuizQuestion.objects.filter(lesson__slug="batch-normalization").count() == 2
    assert not QuizQuestion.objects.filter(lesson__slug="backpropagation").exists()


@pytest.mark.django_db
def test_a_quiz_for_a_lesson_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "no-such-lesson.yaml", GOOD_QUIZ)
    report = load(tmp_path)
    assert "no lesson 'no-such-lesson'" in report.errors[0].message


@pytest.mark.django_db
def test_check_mode_validates_but_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "backpropagation.yaml", GOOD_QUIZ)
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "backpropagation.md").write_text("---\ntitle: x\n---\n")
    report = load(tmp_path, write=False)
    assert report.errors == []
    assert QuizQuestion.objects.count() == 0


@pytest.mark.django_db
def test_an_edited_question_is_updated_in_place_and_a_removed_one_is_retired(tmp_path: Path, learner) -> None:
    make_lessons("backpropagation")
    write(tmp_path, "backpropagation.yaml", GOOD_QUIZ)
    load(tmp_path)
    number = QuizQuestion.objects.get(key="a-number")
    QuizAttempt.objects.create(user=learner, question=number, answer_text="0.25", score=1.0, is_correct=True)
    only_the_number_edited = "questions:\n  - key: a-number" + GOOD_QUIZ.split("  - key: a-number")[1]
    write(tmp_path, "backpropagation.yaml", only_the_number_edited.replace("answer: 0.25", "answer: 0.5"))
    report = load(tmp_path)
    assert "quiz backpropagation/a-number" in report.updated
    assert any("pick-one (retired" in name for name in report.updated)
    number.refresh_from_db()
    assert number.answer == 0.5
    assert number.attempts.count() == 1, "the learner's attempt survives the edit"
    assert not QuizQuestion.objects.get(key="pick-one").is_active


@pytest.mark.django_db
def test_import_content_prints_file_and_line_and_imports_the_good_files(tmp_path: Path, settings) -> None:
    """Through the real command (only the quiz loader, so this test does not depend on the lessons')."""
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.CONTENT_LOADERS = ["quizzes.content.load_quizzes"]
    make_lessons("backpropagation", "batch-normalization")
    write(tmp_path, "backpropagation.yaml", "questions:\n  - key: q\n    type: numeric\n    prompt: p\n    answer: x\n")
    write(tmp_path, "batch-normalization.yaml", GOOD_QUIZ)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 content error"):
        call_command("import_content", "--path", str(tmp_path), stdout=out, stderr=err)
    assert (
        f"error     {tmp_path.name}/quizzes/backpropagation.yaml:2: 'explanation' must be non-empty text"
        in err.getvalue()
    )
    assert "created   quiz batch-normalization/pick-one" in out.getvalue()
    assert QuizQuestion.objects.filter(lesson__slug="batch-normalization").count() == 2


# --- math renders in KaTeX (as the quiz page does in the browser) --------------------------

KATEX_RENDER_ALL = """
(formulas) => {
  const errors = [];
  for (const f of formulas) {
    try { katex.renderToString(f.latex, {displayMode: f.display, throwOnError: true, strict: "error"}); }
    catch (e) { errors.push(`${f.where}: ${e.message}`); }
  }
  return errors;
}
"""


def katex_bundle() -> Path | None:
    """katex.min.js from static/vendor/ (scripts/build-assets.sh), node_modules/ or $GRADLAB_NODE_MODULES."""
    root = Path(settings.BASE_DIR)
    candidates = sorted((root / "static" / "vendor").glob("**/katex.min.js"))
    for modules in (root / "node_modules", os.environ.get("GRADLAB_NODE_MODULES")):
        if modules:
            candidates.append(Path(modules) / "katex" / "dist" / "katex.min.js")
    return next((path for path in candidates if path.is_file()), None)


def quiz_formulas() -> tuple[list[dict[str, object]], list[str]]:
    """Every formula of every quiz (parameterized prompts filled for 20 seeds each), and any stray '$'."""
    parser = MarkdownIt("commonmark").use(dollarmath_plugin)
    formulas: list[dict[str, object]] = []
    stray: list[str] = []

    def collect(markdown: str, where: str) -> None:
        def walk(tokens: list[Token]) -> None:
            for token in tokens:
                if token.type.startswith("math_block") or token.type == "math_inline":
                    formulas.append({"latex": token.content, "display": token.type != "math_inline", "where": where})
                elif token.type == "text" and "$" in token.content:
                    stray.append(f"{where}: {token.content}")
                walk(token.children or [])

        walk(parser.parse(markdown))

    for path in sorted((Path(settings.CONTENT_DIR) / "quizzes").glob("*.yaml")):
        for key, fields in parse_quiz_file(path.read_text()):
            where = f"{path.name}/{key}"
            collect(fields["explanation_md"], where)
            for choice in fields["choices"]:
                collect(choice["text_md"], f"{where} choice {choice['key']}")
            if not fields["generator"]:
                collect(fields["prompt_md"], where)
                continue
            for seed in range(20):
                values = variant_for(fields["generator"], seed).values
                filled = SLOT.sub(lambda match, values=values: values[match.group(1)], fields["prompt_md"])
                collect(filled, f"{where} seed {seed}")
    return formulas, stray


def test_quiz_markdown_has_no_stray_dollar_sign() -> None:
    formulas, stray = quiz_formulas()
    assert len(formulas) > 300
    assert stray == []


@pytest.mark.browser
def test_every_formula_in_the_quizzes_renders_in_katex() -> None:
    bundle = katex_bundle()
    if bundle is None or not Path("/usr/bin/chromium").exists():
        unavailable(
            "needs katex.min.js (scripts/build-assets.sh builds static/vendor/) and Debian's chromium",
            required_by="GRADLAB_REQUIRE_BROWSER",
        )
    from playwright.sync_api import sync_playwright

    formulas, _ = quiz_formulas()
    broken = {"latex": r"\begin{bmatrix} 1 & 2", "display": False, "where": "deliberately broken"}
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    args += ["--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            page = browser.new_page()
            page.add_script_tag(path=str(bundle))
            errors = page.evaluate(KATEX_RENDER_ALL, [*formulas, broken])
        finally:
            browser.close()
    assert errors[-1:] and errors[-1].startswith("deliberately broken"), "KaTeX reports errors"
    assert errors[:-1] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fails_on", "message"),
    [
        ("raise", "generator flaky_generator fails on seed 3: ZeroDivisionError"),
        ("nan", "generator flaky_generator gives a non-finite answer on seed 3"),
        ("slot", "slot(s) x that generator flaky_generator does not fill on seed 3"),
    ],
)
def test_a_generator_that_fails_on_a_later_seed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails_on: str, message: str
) -> None:
    """Seed 0 is not enough: a generator that breaks on another learner's seed is caught at import."""
    import numpy as np

    from quizzes.grading import Tolerance
    from quizzes.parameterized import GENERATORS, Variant

    def flaky_generator(rng: np.random.Generator) -> Variant:
        seed_three = int(rng.integers(0, 2**31)) == int(np.random.default_rng(3).integers(0, 2**31))
        answer, values = np.array([1.0]), {"x": "1"}
        if seed_three and fails_on == "raise":
            raise ZeroDivisionError("division by zero")
        if seed_three and fails_on == "nan":
            answer = np.array([np.nan])
        if seed_three and fails_on == "slot":
            values = {}
        return Variant(values=values, answer=answer, tolerance=Tolerance(absolute=0.01))

    monkeypatch.setitem(GENERATORS, "flaky_generator", flaky_generator)
    make_lessons("backpropagation")
    write(
        tmp_path,
        "backpropagation.yaml",
        "questions:\n  - key: q\n    type: parameterized\n    prompt: 'x = {{x}}'\n    explanation: e\n"
        "    generator: flaky_generator\n",
    )
    report = load(tmp_path)
    assert [message in error.message for error in report.errors] == [True], report.errors
    assert QuizQuestion.objects.count() == 0
