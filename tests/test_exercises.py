"""Every exercise folder: the reference solution is accepted, each known-wrong variant is rejected with its mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.content import WrongVariant, parse_exercise_folder
from grader.engine import Engine
from grader.verdicts import Verdict

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

EXERCISES = Path(__file__).resolve().parent.parent / "content" / "exercises"
FOLDERS = sorted(path for path in EXERCISES.iterdir() if path.is_dir())
VARIANTS = [
    (folder, variant)
    for folder in FOLDERS
    for variant in (parse_exercise_folder(folder).wrong if (folder / "exercise.yaml").is_file() else [])
]


def test_the_catalog_has_all_twelve_exercises() -> None:
    expected = {
        "linear-backward",
        "mse-loss",
        "simple-nn",
        "relu-backward",
        "sigmoid-backward",
        "tanh-backward",
        "softmax-cross-entropy",
        "batchnorm-backward",
        "conv2d-backward",
        "maxpool2d-backward",
        "attention-backward",
        "multihead-attention-backward",
    }
    assert expected <= {folder.name for folder in FOLDERS}


@pytest.mark.parametrize("folder", FOLDERS, ids=[folder.name for folder in FOLDERS])
def test_the_reference_solution_is_accepted(engine: Engine, folder: Path) -> None:
    parsed = parse_exercise_folder(folder)
    result = engine.grade(parsed.spec, parsed.solution)
    assert result.verdict == Verdict.ACCEPTED, result.feedback
    assert result.diagnosis == []


@pytest.mark.parametrize("folder", FOLDERS, ids=[folder.name for folder in FOLDERS])
def test_the_starter_code_is_not_accepted(engine: Engine, folder: Path) -> None:
    parsed = parse_exercise_folder(folder)
    result = engine.grade(parsed.spec, parsed.starter)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert "is all zeros" in result.feedback


@pytest.mark.parametrize(
    ("folder", "variant"), VARIANTS, ids=[f"{folder.name}/{variant.name}" for folder, variant in VARIANTS]
)
def test_each_known_wrong_variant_is_rejected_with_its_mistake(
    engine: Engine, folder: Path, variant: WrongVariant
) -> None:
    parsed = parse_exercise_folder(folder)
    result = engine.grade(parsed.spec, variant.code)
    assert result.verdict != Verdict.ACCEPTED
    diagnosed = [entry.mistake for entry in result.diagnosis]
    assert variant.mistake.value in diagnosed, result.feedback
    entry = next(entry for entry in result.diagnosis if entry.mistake == variant.mistake.value)
    assert entry.title and entry.why and entry.hint
    assert entry.lesson_url.startswith("/lessons/")
