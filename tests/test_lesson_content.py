"""The five lessons in content/lessons/ are well-formed, their code runs and their formulas hold.

No database: the files are parsed here, independently of the loader, so a lesson that
breaks the format contract fails in this module with the file and line named.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lesson_checks import CHECKS, LESSONS_DIR, DisplayFormula, Lesson, load_lessons, scan_body
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin

from tests.conftest import unavailable

# Each lesson builds on the ones before it: the softmax Jacobian (activations) before attention's
# backward pass, the forks of batch norm before multi-head attention's three paths.
EXPECTED_LESSONS = {
    "backpropagation": ("MEDIUM", 1),
    "activation-functions": ("MEDIUM", 2),
    "batch-normalization": ("MEDIUM", 3),
    "cnn-architecture": ("MEDIUM", 4),
    "attention-mechanisms": ("HARD", 5),
}
REQUIRED_KEYS = ("slug", "title", "difficulty", "order", "summary", "question", "related", "references")
DIFFICULTIES = {"EASY", "MEDIUM", "HARD"}
REQUIRED_SUBSECTIONS = (
    "### Theoretical background",
    "### Mathematical foundations",
    "### Practical applications",
    "### Code example",
    "### Diagram",
)
PROSE_WORDS_MIN, PROSE_WORDS_MAX = 800, 2400
EXAMPLE_TIMEOUT_S = 120
MERMAID_HEADER = re.compile(r"^(graph|flowchart)\s+(LR|RL|TD|TB|BT)\s*$")
UNQUOTED_LABEL = re.compile(r"\[(?!\")([^\]]*)\]")
MERMAID_SPECIAL = set('()[]{}<>|";')
ROOT = LESSONS_DIR.parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

LESSONS = load_lessons()
BY_SLUG = {lesson.path.stem: lesson for lesson in LESSONS}
FORMULAS = [(lesson, formula) for lesson in LESSONS for formula in lesson.formulas]
PYTHON_BLOCKS = [(lesson, block) for lesson in LESSONS for block in lesson.code_blocks if block.language == "python"]


def where(lesson: Lesson, line: int) -> str:
    return f"{lesson.path.name}:{line}"


def lesson_params() -> list[object]:
    return [pytest.param(lesson, id=lesson.path.stem) for lesson in LESSONS]


def formula_params(named_only: bool = False) -> list[object]:
    return [
        pytest.param(lesson, formula, id=where(lesson, formula.line))
        for lesson, formula in FORMULAS
        if not named_only or formula.check not in (None, "none")
    ]


# --- Files and front matter ----------------------------------------------------------


def test_the_five_lessons_exist_under_their_fixed_slugs() -> None:
    assert sorted(BY_SLUG) == sorted(EXPECTED_LESSONS), f"lesson files in {LESSONS_DIR}"


@pytest.mark.parametrize("lesson", lesson_params())
def test_front_matter_has_every_required_key_with_a_valid_value(lesson: Lesson) -> None:
    meta = lesson.meta
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    assert not missing, f"{lesson.path.name}: missing front-matter keys {missing}"
    assert meta["slug"] == lesson.path.stem, "the slug must match the file name"
    assert meta["difficulty"] in DIFFICULTIES
    assert (meta["difficulty"], meta["order"]) == EXPECTED_LESSONS[lesson.path.stem]
    for key in ("title", "summary", "question"):
        assert isinstance(meta[key], str) and meta[key].strip(), f"{key} must be a non-empty string"
    assert len(meta["question"].split()) >= 8, "the question is worded in full, as the learner sees it"
    assert isinstance(meta["references"], list) and len(meta["references"]) >= 3
    for reference in meta["references"]:
        assert set(reference) == {"title", "url"}, f"a reference has keys title and url: {reference}"
        assert reference["title"].strip()
        assert re.fullmatch(r"https?://[^\s/]+\.[^\s/]+/\S*", reference["url"]), reference["url"]


@pytest.mark.parametrize("lesson", lesson_params())
def test_related_names_every_other_existing_lesson(lesson: Lesson) -> None:
    related = lesson.meta["related"]
    assert isinstance(related, list) and all(isinstance(slug, str) for slug in related)
    assert len(related) == len(set(related)), "related slugs are listed once"
    assert lesson.path.stem not in related, "a lesson is not related to itself"
    unknown = set(related) - set(BY_SLUG)
    assert not unknown, f"related slugs without a lesson file: {sorted(unknown)}"
    assert set(related) == set(BY_SLUG) - {lesson.path.stem}


# --- Body structure ------------------------------------------------------------------


@pytest.mark.parametrize("lesson", lesson_params())
def test_body_has_an_answer_an_explanation_and_every_subsection_in_order(lesson: Lesson) -> None:
    headings = [line.strip() for line in lesson.prose.splitlines() if line.startswith("#")]
    assert headings[:2] == ["## Answer", "## Explanation"], f"first headings are {headings[:2]}"
    positions = []
    for subsection in REQUIRED_SUBSECTIONS:
        assert subsection in headings, f"{lesson.path.name} lacks '{subsection}'"
        positions.append(headings.index(subsection))
    assert positions == sorted(positions), "subsections appear in the contract's order"
    assert all(not heading.startswith("# ") for heading in headings), "the page renders the title; no level-1 heading"


@pytest.mark.parametrize("lesson", lesson_params())
def test_lesson_has_a_runnable_example_and_a_diagram_and_a_full_explanation(lesson: Lesson) -> None:
    languages = [block.language for block in lesson.code_blocks]
    assert "python" in languages and "mermaid" in languages, f"code blocks: {languages}"
    assert set(languages) <= {"python", "mermaid", "text"}, f"unexpected code-block languages {languages}"
    words = len(re.findall(r"[A-Za-z]{2,}", lesson.prose))
    assert PROSE_WORDS_MIN <= words <= PROSE_WORDS_MAX, f"{words} words of prose"


@pytest.mark.parametrize("lesson", lesson_params())
def test_mermaid_diagrams_use_plain_graph_syntax_with_safe_labels(lesson: Lesson) -> None:
    for block in (b for b in lesson.code_blocks if b.language == "mermaid"):
        lines = [line.strip() for line in block.code.splitlines() if line.strip()]
        assert MERMAID_HEADER.match(lines[0]), f"{where(lesson, block.line)}: starts with {lines[0]!r}"
        assert len(lines) >= 4, f"{where(lesson, block.line)}: a diagram of at least three edges"
        for offset, line in enumerate(lines[1:], start=2):
            for label in UNQUOTED_LABEL.findall(line):
                bad = MERMAID_SPECIAL & set(label)
                assert not bad, f"{where(lesson, block.line + offset)}: quote the label {label!r} (it has {bad})"
            assert line.count('"') % 2 == 0, f"{where(lesson, block.line + offset)}: unbalanced quote"


def markdown_math(lesson: Lesson) -> tuple[list[str], list[str], list[str]]:
    """Parse a body as the pages do (CommonMark, tables, dollarmath): (display formulas, inline formulas, stray text)."""
    parser = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)
    display, inline, stray = [], [], []

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            if token.type.startswith("math_block"):
                display.append(token.content.strip())
            elif token.type == "math_inline":
                inline.append(token.content)
            elif token.type == "text" and "$" in token.content:
                stray.append(token.content)
            walk(token.children or [])

    walk(parser.parse(lesson.body))
    return display, inline, stray


@pytest.mark.parametrize("lesson", lesson_params())
def test_markdown_math_parser_sees_the_same_formulas_and_no_stray_dollar(lesson: Lesson) -> None:
    display, inline, stray = markdown_math(lesson)
    assert display == [formula.latex for formula in lesson.formulas], "markdown-it and the scanner disagree"
    assert inline, "the explanation uses inline math"
    assert not stray, f"{lesson.path.name}: a '$' that is not math: {stray}"


# --- Display formulas and their checks ------------------------------------------------


def test_the_scanner_finds_formulas_and_reads_their_check_comments() -> None:
    body = [
        "Text.",
        "$$",
        "a = b",
        "$$",
        "<!-- check: chain-rule -->",
        "$$",
        "c = d",
        "$$",
        "",
        "<!-- check: none (a definition) -->",
        "$$",
        "e = f",
        "$$",
        "More text.",
        "$$ g = h $$",
        "<!-- check: none -->",
        "```python",
        "x = '$$'",
        "```",
    ]
    _, formulas, prose = scan_body(body, first_line=1)
    assert [(f.latex, f.line, f.check) for f in formulas] == [
        ("a = b", 2, "chain-rule"),
        ("c = d", 6, "none"),
        ("e = f", 11, None),
        ("g = h", 15, None),
    ]
    assert prose == ["Text.", "More text."]


def test_lessons_have_display_formulas_and_most_are_checked() -> None:
    for lesson in LESSONS:
        named = [f for f in lesson.formulas if f.check not in (None, "none")]
        assert len(named) >= 3, f"{lesson.path.name}: only {len(named)} checked display formulas"
        assert len(named) * 2 > len(lesson.formulas), f"{lesson.path.name}: most formulas should be checked"


@pytest.mark.parametrize(("lesson", "formula"), formula_params())
def test_every_display_formula_carries_a_check_comment_naming_a_known_check(
    lesson: Lesson, formula: DisplayFormula
) -> None:
    assert formula.check is not None, (
        f"{where(lesson, formula.line)}: follow the formula with <!-- check: NAME --> or "
        f"<!-- check: none (reason) -->; found {formula.check_comment!r}"
    )
    assert formula.check == "none" or formula.check in CHECKS, (
        f"{where(lesson, formula.line)}: no check named {formula.check!r} in tests/lesson_checks/"
    )


def test_every_registered_check_verifies_some_formula() -> None:
    used = {formula.check for _, formula in FORMULAS}
    assert set(CHECKS) <= used, f"checks no formula uses: {sorted(set(CHECKS) - used)}"


@pytest.mark.parametrize(("lesson", "formula"), formula_params(named_only=True))
def test_display_formula_holds_numerically(lesson: Lesson, formula: DisplayFormula) -> None:
    assert formula.check is not None
    CHECKS[formula.check](formula.latex)


def test_a_check_fails_when_its_formula_is_changed() -> None:
    with pytest.raises(AssertionError, match="no longer contains"):
        CHECKS["chain-rule"](r"\frac{\partial L}{\partial w} = \frac{\partial L}{\partial a}")


# --- Code examples ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lesson", "code"),
    [pytest.param(lesson, block.code, id=where(lesson, block.line)) for lesson, block in PYTHON_BLOCKS],
)
def test_python_example_runs_cleanly_in_a_fresh_interpreter(lesson: Lesson, code: str, tmp_path: Path) -> None:
    assert "assert" in code, "an example checks its own result"
    assert "torch.manual_seed(" in code, "an example seeds PyTorch so that every run prints the same numbers"
    environment = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    environment["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{lesson.path.name} example failed:\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), "an example prints what it shows the learner"


# --- KaTeX and Mermaid, in the browser ---------------------------------------------------


def vendor_script(package: str, filename: str) -> Path | None:
    """The built browser bundle of an npm package: static/vendor/ (built by scripts/build-assets.sh),
    node_modules/, or $GRADLAB_NODE_MODULES (a node_modules folder elsewhere)."""
    candidates = sorted((ROOT / "static" / "vendor").glob(f"**/{filename}"))
    for modules in (ROOT / "node_modules", os.environ.get("GRADLAB_NODE_MODULES")):
        if modules:
            candidates.append(Path(modules) / package / "dist" / filename)
    return next((path for path in candidates if path.is_file()), None)


RENDER_ALL = """
async ({formulas, diagrams}) => {
  const errors = [];
  for (const f of formulas) {
    try { katex.renderToString(f.latex, {displayMode: f.display, throwOnError: true, strict: "error"}); }
    catch (e) { errors.push(`${f.where}: KaTeX: ${e.message}`); }
  }
  mermaid.initialize({startOnLoad: false});
  for (const d of diagrams) {
    try { await mermaid.parse(d.code); }
    catch (e) { errors.push(`${d.where}: Mermaid: ${e.message || e}`); }
  }
  return errors;
}
"""


@pytest.mark.browser
def test_every_formula_renders_in_katex_and_every_diagram_parses_in_mermaid() -> None:
    katex, mermaid = vendor_script("katex", "katex.min.js"), vendor_script("mermaid", "mermaid.min.js")
    chromium = shutil.which("chromium")
    if katex is None or mermaid is None or chromium is None:
        unavailable(
            "needs katex.min.js and mermaid.min.js (scripts/build-assets.sh) and Debian's chromium",
            required_by="GRADLAB_REQUIRE_BROWSER",
        )
    from playwright.sync_api import sync_playwright

    formulas, diagrams = [], []
    for lesson in LESSONS:
        display, inline, _ = markdown_math(lesson)
        formulas += [{"latex": latex, "display": True, "where": lesson.path.name} for latex in display]
        formulas += [{"latex": latex, "display": False, "where": lesson.path.name} for latex in inline]
        diagrams += [
            {"code": block.code, "where": where(lesson, block.line)}
            for block in lesson.code_blocks
            if block.language == "mermaid"
        ]
    broken_formula = {"latex": r"\frac{1}{", "display": False, "where": "deliberately broken formula"}
    broken_diagram = {"code": "graph LR\n  A[f(x)] --> B\n", "where": "deliberately broken diagram"}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.add_script_tag(path=str(katex))
            page.add_script_tag(path=str(mermaid))
            errors = page.evaluate(
                RENDER_ALL, {"formulas": [*formulas, broken_formula], "diagrams": [*diagrams, broken_diagram]}
            )
        finally:
            browser.close()
    reported = {error.split(":")[0] for error in errors}
    assert {"deliberately broken formula", "deliberately broken diagram"} <= reported, "the renderers report errors"
    real_errors = [error for error in errors if not error.startswith("deliberately broken")]
    assert not real_errors, json.dumps(real_errors, indent=2)
    assert len(formulas) > 200 and len(diagrams) >= 5


def test_the_activation_table_states_the_mean_output_for_standard_normal_inputs() -> None:
    import torch
    import torch.nn.functional as F

    functions = {
        "ReLU": F.relu,
        "Leaky ReLU / PReLU": lambda x: F.leaky_relu(x, 0.01),
        "ELU": F.elu,
        "GELU": F.gelu,
        "Swish / SiLU": F.silu,
    }
    rows = {}
    for line in BY_SLUG["activation-functions"].body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in functions:
            rows[cells[0]] = cells[2]
    assert set(rows) == set(functions)
    x = torch.randn(2_000_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for name, function in functions.items():
        stated = re.search(r"mean (\d\.\d\d)", rows[name])
        assert stated, f"{name}: {rows[name]!r} gives no mean"
        assert abs(function(x).mean().item() - float(stated.group(1))) < 0.006, name
