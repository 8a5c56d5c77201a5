"""The batch-norm, convolution, max-pool, attention and multi-head attention exercises, kind by kind.

Kind-level pieces are tested directly: references against hand-written NumPy gradients and central
differences, mistake models, case coverage, training runs; tests/test_kinds_cnn_attention_engine.py
grades the same exercises through the real sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.diagnosis import Mistake, diagnose_array
from grader.gradcheck import check_numerically, rel_error
from grader.kinds import KINDS
from grader.kinds.base import Case, Kind
from grader.training import run_training
from tests.cnn_attention_helpers import (
    EXERCISES,
    MAX_ARRAY_ELEMENTS,
    SLUGS,
    all_cases,
    alternative_sources,
    case_models,
    cases_with_references,
    evaluated_models,
    load_function,
    returned,
    wrong_variants,
)

# --- References ---------------------------------------------------------------------------


@pytest.mark.parametrize(("slug", "style", "source"), alternative_sources())
def test_the_torch_reference_equals_hand_written_numpy_gradients(slug: str, style: str, source: str) -> None:
    kind = KINDS[slug]
    solutions = {
        "solution.py": load_function((EXERCISES / slug / "solution.py").read_text(), kind.function_name),
        style: load_function(source, kind.function_name),
    }
    for case, expected in cases_with_references(slug):
        for name, function in solutions.items():
            got = returned(kind, function, case)
            for output, value in expected.items():
                assert np.shape(got[output]) == np.shape(value)
                assert rel_error(got[output], value) < 1e-9, (name, case.label, output)


@pytest.mark.slow
@pytest.mark.parametrize("slug", SLUGS)
def test_the_reference_agrees_with_central_differences(slug: str) -> None:
    kind = KINDS[slug]
    for seed in range(3):
        for case in kind.make_cases(np.random.default_rng(seed)):
            expected = kind.reference(case)
            names = {output.name: output.of for output in kind.outputs if output.of is not None}
            inputs = {name: case.args[name] for name in kind.differentiable}
            comparisons = check_numerically(
                kind.numeric_function(case), inputs, expected, expected, names,
                rng=np.random.default_rng(seed), samples=8,
            )  # fmt: skip
            for comparison in comparisons:
                assert comparison.rel_error < 1e-6, (case.label, comparison.name, comparison.rel_error)


def test_batchnorm_reference_is_a_projection_that_sums_to_zero() -> None:
    kind = KINDS["batchnorm-backward"]
    for case in all_cases(kind):
        dx = kind.reference(case)["dx"]
        assert np.abs(dx.sum(axis=0)).max() < 1e-10 * np.abs(dx).max() * len(dx)


# --- Cases --------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_cases_are_small_float64_batches_and_depend_on_the_seed(slug: str) -> None:
    kind = KINDS[slug]
    first = kind.make_cases(np.random.default_rng(1))
    again = kind.make_cases(np.random.default_rng(1))
    other = kind.make_cases(np.random.default_rng(2))
    assert [case.label for case in first] == [case.label for case in again]
    assert np.array_equal(first[0].args["dout"], again[0].args["dout"])
    assert not np.array_equal(first[0].args["dout"], other[0].args["dout"])
    assert any(case.edge for case in first) and any(not case.edge for case in first)
    for case in first:
        assert set(case.args) == set(kind.arg_names)
        for value in case.args.values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float64
                assert value.size <= MAX_ARRAY_ELEMENTS, case.label
        assert case.args["dout"].shape[0] > 1, "every case has a batch of more than one"


def test_conv_cases_cover_stride_one_and_two_padding_zero_and_one_and_non_square_shapes() -> None:
    cases = KINDS["conv2d-backward"].make_cases(np.random.default_rng(0))
    assert {case.args["stride"] for case in cases} == {1, 2}
    assert {case.args["pad"] for case in cases} == {0, 1}
    assert (2, 1) in {(case.args["stride"], case.args["pad"]) for case in cases}
    assert any(case.args["x"].shape[2] != case.args["x"].shape[3] for case in cases)
    assert any(case.args["w"].shape[2] != case.args["w"].shape[3] for case in cases)
    # A stride that leaves the last input rows unread: their gradient must be exactly zero.
    assert any((case.args["x"].shape[2] - case.args["w"].shape[2]) % case.args["stride"] for case in cases)


def test_maxpool_cases_cover_overlapping_and_disjoint_windows() -> None:
    cases = KINDS["maxpool2d-backward"].make_cases(np.random.default_rng(0))
    pairs = {(case.args["pool"], case.args["stride"]) for case in cases}
    assert any(stride < pool for pool, stride in pairs)
    assert any(stride == pool for pool, stride in pairs)
    assert {stride for _, stride in pairs} >= {1, 2}


def test_attention_cases_cover_causal_on_and_off_and_different_query_and_key_lengths() -> None:
    cases = KINDS["attention-backward"].make_cases(np.random.default_rng(0))
    combos = {(case.args["causal"], case.args["q"].shape[1] == case.args["k"].shape[1]) for case in cases}
    assert combos == {(True, True), (True, False), (False, True), (False, False)}
    assert any(case.args["q"].shape[2] != case.args["v"].shape[2] for case in cases)


def test_mha_cases_have_several_heads_of_size_above_one_and_sequences_not_as_long_as_wide() -> None:
    cases = KINDS["multihead-attention-backward"].make_cases(np.random.default_rng(0))
    for case in cases:
        heads, width = case.args["num_heads"], case.args["x"].shape[2]
        assert heads > 1 and width // heads > 1 and width % heads == 0
    assert {case.args["num_heads"] for case in cases} >= {2, 3}
    assert all(case.args["x"].shape[1] != case.args["x"].shape[2] for case in cases)


@pytest.mark.parametrize("seed", range(40))
def test_maxpool_windows_never_tie_and_keep_their_maximum_under_a_nudge(seed: int) -> None:
    for case in KINDS["maxpool2d-backward"].make_cases(np.random.default_rng(seed)):
        x, pool, stride = case.args["x"], case.args["pool"], case.args["stride"]
        assert len(np.unique(x)) == x.size
        h_out, w_out = case.args["dout"].shape[2:]
        for y in range(h_out):
            for z in range(w_out):
                window = np.sort(x[:, :, y * stride : y * stride + pool, z * stride : z * stride + pool].reshape(
                    *x.shape[:2], -1), axis=-1)  # fmt: skip
                # The top two differ by far more than a central-difference step (1e-6).
                assert (window[..., -1] - window[..., -2]).min() > 1e-3


def test_overlapping_maxpool_cases_have_a_maximum_shared_by_two_windows() -> None:
    kind = KINDS["maxpool2d-backward"]
    for case in all_cases(kind):
        pool, stride = case.args["pool"], case.args["stride"]
        if stride >= pool:
            continue
        x = case.args["x"][0, 0]
        h_out, w_out = case.args["dout"].shape[2:]
        winners = [
            np.unravel_index(x[y * stride : y * stride + pool, z * stride : z * stride + pool].argmax(), (pool, pool))
            for y in range(h_out)
            for z in range(w_out)
        ]
        positions = [
            (y * stride + int(r), z * stride + int(c))
            for (y, z), (r, c) in zip(np.ndindex(h_out, w_out), winners, strict=True)
        ]
        assert len(set(positions)) < len(positions), case.label


# --- Mistake models -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("slug", SLUGS)
def test_every_mistake_model_differs_from_the_reference_on_every_case(slug: str) -> None:
    kind = KINDS[slug]
    used = set()
    for case, expected in cases_with_references(slug):
        for index, model in enumerate(kind.mistake_models()):
            values = model.compute(case)
            if values is None:
                continue
            used.add(index)
            for output, value in values.items():
                if model.outputs is not None and output not in model.outputs:
                    continue
                assert np.shape(value) == np.shape(expected[output]), (model.title, output)
                assert rel_error(value, expected[output]) > 1e-3, (model.title, case.label, output)
    assert used == set(range(len(kind.mistake_models()))), "every model applies to some case"


@pytest.mark.slow
@pytest.mark.parametrize(("slug", "path", "mistake"), wrong_variants(), ids=lambda v: getattr(v, "name", str(v)))
def test_each_known_wrong_variant_is_diagnosed_with_its_labelled_mistake(slug: str, path: Path, mistake: str) -> None:
    kind = KINDS[slug]
    function = load_function(path.read_text(), kind.function_name)
    assert mistake in set(Mistake)
    wrong_somewhere = False
    for index, (case, expected) in enumerate(cases_with_references(slug)):
        got = returned(kind, function, case)
        models = None
        for output, value in expected.items():
            if np.shape(got[output]) == np.shape(value) and rel_error(got[output], value) <= 1e-6:
                continue
            wrong_somewhere = True
            specific = kind.likely_mistakes(case, output, value, got[output])
            models = models if models is not None else case_models(slug, index)
            diagnosis = (
                specific[0]
                if specific
                else diagnose_array(
                    output=output,
                    expected=value,
                    got=got[output],
                    case_args=case.args,
                    upstream=kind.upstream,
                    models=models.get(output, []),
                    hints=kind.hints,
                    lesson_url=kind.lesson_url(),
                )
            )
            assert diagnosis.mistake == mistake, (case.label, output, diagnosis.title)
            assert diagnosis.hint and diagnosis.lesson_url.startswith(f"/lessons/{kind.lesson_slug}/")
    assert wrong_somewhere


def test_each_exercise_has_at_least_three_known_wrong_variants() -> None:
    for slug in SLUGS:
        assert len(list((EXERCISES / slug / "wrong").glob("*.py"))) >= 3, slug


# --- Training runs ------------------------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_training_with_the_solution_follows_autograd_and_learns(slug: str) -> None:
    kind = KINDS[slug]
    setup = kind.training()
    assert setup is not None
    solution = load_function((EXERCISES / slug / "solution.py").read_text(), kind.function_name)
    run = run_training(kind, setup, lambda args: solution(*args), seed=7)
    assert run.rel_error < 1e-9
    assert run.reference_loss[-1] < 0.5 * run.reference_loss[0]


@pytest.mark.parametrize("slug", SLUGS)
def test_training_with_a_wrong_backward_drifts_from_autograd(slug: str) -> None:
    kind = KINDS[slug]
    setup = kind.training()
    assert setup is not None
    path = sorted((EXERCISES / slug / "wrong").glob("*.py"))[-1]
    wrong = load_function(path.read_text(), kind.function_name)
    run = run_training(kind, setup, lambda args: wrong(*args), seed=7)
    assert run.rel_error > 1e-4, path.name


# --- Content ------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_statement_links_its_lesson_and_starter_has_the_catalog_signature(slug: str) -> None:
    import ast

    from grader.spec import ExerciseSpec

    spec = ExerciseSpec.from_folder(EXERCISES / slug)
    kind = KINDS[slug]
    statement = (EXERCISES / slug / "statement.md").read_text()
    assert f"](/lessons/{spec.lesson}/" in statement
    assert kind.lesson_slug == spec.lesson
    assert f"def {kind.function_name}({', '.join(kind.arg_names)})" in statement
    for name in ("starter.py", "solution.py"):
        tree = ast.parse((EXERCISES / slug / name).read_text())
        function = next(node for node in tree.body if isinstance(node, ast.FunctionDef))
        assert function.name == kind.function_name
        assert tuple(arg.arg for arg in function.args.args) == kind.arg_names
    assert "np.zeros_like" in (EXERCISES / slug / "starter.py").read_text()


# --- Mistakes that share a shape: each gets its own name and hint ---------------------------


def diagnosis_of(kind: Kind, case: Case, output: str, got: Any) -> Any:
    expected = kind.reference(case)[output]
    specific = kind.likely_mistakes(case, output, expected, got)
    if specific:
        return specific[0]
    return diagnose_array(
        output=output,
        expected=expected,
        got=got,
        case_args=case.args,
        upstream=kind.upstream,
        models=evaluated_models(kind, case).get(output, []),
        hints=kind.hints,
        lesson_url=kind.lesson_url(),
    )


def square_kernel_case() -> Case:
    kind = KINDS["conv2d-backward"]
    return next(c for c in all_cases(kind) if c.args["w"].shape[2] == c.args["w"].shape[3] and c.args["stride"] > 1)


def conv_dx_with_kernel(case: Case, kernel: np.ndarray) -> np.ndarray:
    """dx of the scatter form run with another kernel (what a learner's loop computes with a wrong index)."""
    dout, x, stride, pad = case.args["dout"], case.args["x"], case.args["stride"], case.args["pad"]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    rows, columns = kernel.shape[2:]
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            top, left = i * stride, j * stride
            dx_pad[:, :, top : top + rows, left : left + columns] += np.einsum(
                "nf,fcuv->ncuv", dout[:, :, i, j], kernel
            )
    return dx_pad[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]


def test_conv_a_flipped_and_a_transposed_kernel_get_different_mistakes_and_hints() -> None:
    kind = KINDS["conv2d-backward"]
    case = square_kernel_case()
    w = case.args["w"]
    flipped = diagnosis_of(kind, case, "dx", conv_dx_with_kernel(case, w[:, :, ::-1, ::-1]))
    transposed = diagnosis_of(kind, case, "dx", conv_dx_with_kernel(case, w.transpose(0, 1, 3, 2)))
    assert flipped.mistake == Mistake.FLIPPED_KERNEL, flipped.title
    assert transposed.mistake == Mistake.TRANSPOSED, transposed.title
    assert flipped.hint != transposed.hint
    assert "rotat" in flipped.hint and "rotat" not in transposed.hint
    assert "scatter" in flipped.hint and "full correlation" in flipped.hint, "the hint says which form rotates"
    assert flipped.lesson_url == "/lessons/cnn-architecture/#convolution-backward"
    dw = kind.reference(case)["dw"]
    assert diagnosis_of(kind, case, "dw", dw.transpose(0, 1, 3, 2).copy()).mistake == Mistake.TRANSPOSED
    assert diagnosis_of(kind, case, "dw", dw[:, :, ::-1, ::-1].copy()).mistake == Mistake.FLIPPED_KERNEL


def test_conv_filter_and_channel_axes_swapped_is_named_transposed() -> None:
    kind = KINDS["conv2d-backward"]
    case = next(c for c in all_cases(kind) if c.args["w"].shape[0] == c.args["w"].shape[1])
    got = conv_dx_with_kernel(case, case.args["w"].transpose(1, 0, 2, 3))
    diagnosis = diagnosis_of(kind, case, "dx", got)
    assert diagnosis.mistake == Mistake.TRANSPOSED and "filter and channel" in diagnosis.title


@pytest.mark.parametrize("output", ["dw_q", "dw_k", "dw_v"])
def test_mha_a_transposed_projection_gradient_gets_a_hint_about_that_projection(output: str) -> None:
    kind = KINDS["multihead-attention-backward"]
    case = all_cases(kind)[1]
    expected = kind.reference(case)[output]
    diagnosis = diagnosis_of(kind, case, output, expected.T.copy())
    assert diagnosis.mistake == Mistake.TRANSPOSED
    assert "w_o" not in diagnosis.hint and "concat" not in diagnosis.hint
    assert f"x^T @ d{output[-1]}" in diagnosis.hint
    assert diagnosis.lesson_url == "/lessons/attention-mechanisms/#multi-head-attention-backward"
    dw_o = kind.reference(case)["dw_o"]
    assert "w_o" in diagnosis_of(kind, case, "dw_o", dw_o.T.copy()).hint
