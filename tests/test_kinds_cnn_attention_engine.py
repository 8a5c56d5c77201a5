"""The batch-norm, convolution, max-pool, attention and multi-head attention exercises through the engine.

The engine grades alternative correct solutions, written in other styles than solution.py, and every
known-wrong variant through the real sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cnn_attention_helpers import EXERCISES, SLUGS, alternative_sources, wrong_variants

# --- Through the engine and the sandbox ---------------------------------------------------


def spec_of(slug: str) -> Any:
    from grader.spec import ExerciseSpec

    return ExerciseSpec.from_folder(EXERCISES / slug)


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize(("slug", "style", "source"), alternative_sources())
def test_an_alternative_correct_solution_is_accepted(engine: Any, slug: str, style: str, source: str) -> None:
    result = engine.grade(spec_of(slug), source, seed=11)
    assert result.verdict == "accepted", (style, result.feedback, result.checks)
    assert result.score == 1.0
    assert result.training is not None and result.training["rel_error"] < 1e-6


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("slug", SLUGS)
def test_the_reference_solution_is_accepted_and_reports_every_check(engine: Any, slug: str) -> None:
    result = engine.grade(spec_of(slug), (EXERCISES / slug / "solution.py").read_text(), seed=5)
    assert result.verdict == "accepted", result.feedback
    names = {check.name for check in result.checks}
    assert {"load", "outputs", "no_inplace", "autograd", "numerical", "training"} <= names
    assert any(name.startswith("edge_cases") for name in names)


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize(("slug", "path", "mistake"), wrong_variants(), ids=lambda v: getattr(v, "name", str(v)))
def test_a_known_wrong_variant_gets_wrong_answer_and_its_diagnosis(
    engine: Any, slug: str, path: Path, mistake: str
) -> None:
    result = engine.grade(spec_of(slug), path.read_text(), seed=3)
    assert result.verdict == "wrong_answer", result.feedback
    assert mistake in {entry.mistake.value for entry in result.diagnosis}, result.diagnosis


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_unchanged_starter_code_has_the_right_shapes_but_is_a_wrong_answer_of_zeros(engine: Any) -> None:
    for slug in SLUGS:
        result = engine.grade(spec_of(slug), (EXERCISES / slug / "starter.py").read_text(), seed=1)
        assert result.verdict == "wrong_answer", slug
        assert next(check for check in result.checks if check.name == "outputs").passed, slug
        assert "is all zeros" in result.feedback, (slug, result.feedback)
