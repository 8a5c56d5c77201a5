"""The batch-norm, convolution, max-pool, attention and multi-head attention exercises.

Kind-level pieces are tested directly (references against hand-written NumPy gradients
and central differences, mistake models, case coverage, training runs); the engine
tests grade alternative correct solutions, written in other styles than solution.py,
and every known-wrong variant through the real sandbox.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.diagnosis import Mistake, diagnose_array
from grader.gradcheck import check_numerically, rel_error
from grader.kinds import KINDS
from grader.kinds.base import Case, Kind
from grader.training import run_training

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "content" / "exercises"
SLUGS = (
    "batchnorm-backward",
    "conv2d-backward",
    "maxpool2d-backward",
    "attention-backward",
    "multihead-attention-backward",
)
SEEDS = range(6)
# "A few hundred elements at most" per array keeps grading fast.
MAX_ARRAY_ELEMENTS = 400


# --- Alternative correct solutions, in other styles than solution.py ------------------------

ALTERNATIVES: dict[str, dict[str, str]] = {
    "batchnorm-backward": {
        "staged computational graph": """
            import numpy as np


            def batchnorm_backward(dout, x, gamma, beta, eps):
                n = x.shape[0]
                mu = np.sum(x, axis=0) / n
                xc = x - mu
                var = np.sum(xc**2, axis=0) / n
                std = np.sqrt(var + eps)
                inv = 1.0 / std
                xhat = xc * inv
                dbeta = np.sum(dout, axis=0)
                dgamma = np.sum(dout * xhat, axis=0)
                dxhat = dout * gamma
                dinv = np.sum(dxhat * xc, axis=0)
                dxc = dxhat * inv
                dstd = -dinv / std**2
                dvar = dstd * 0.5 / std
                dxc = dxc + 2.0 * xc * dvar / n
                dmu = -np.sum(dxc, axis=0)
                dx = dxc + dmu / n
                return dx, dgamma, dbeta
        """,
        "per-feature Jacobian with loops": """
            import math

            import numpy as np


            def batchnorm_backward(dout, x, gamma, beta, eps):
                n, d = x.shape
                dx = np.zeros((n, d))
                dgamma = np.zeros(d)
                dbeta = np.zeros(d)
                for j in range(d):
                    col = x[:, j]
                    mean = sum(col) / n
                    var = sum((c - mean) ** 2 for c in col) / n
                    s = math.sqrt(var + eps)
                    xhat = (col - mean) / s
                    dgamma[j] = float(dout[:, j] @ xhat)
                    dbeta[j] = float(dout[:, j].sum())
                    # J[i, k] = d xhat_i / d x_k = (delta_ik - 1/n - xhat_i xhat_k / n) / s
                    jac = (np.eye(n) - 1.0 / n - np.outer(xhat, xhat) / n) / s
                    dx[:, j] = jac.T @ (dout[:, j] * gamma[j])
                return dx, dgamma, dbeta
        """,
    },
    "conv2d-backward": {
        "im2col": """
            import numpy as np


            def conv2d_backward(dout, x, w, b, stride, pad):
                n, c, h, wd = x.shape
                f, _, kh, kw = w.shape
                _, _, ho, wo = dout.shape
                xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
                windows = []
                for i in range(ho):
                    for j in range(wo):
                        windows.append(xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw].reshape(n, -1))
                cols = np.stack(windows, axis=1)  # (N, Ho*Wo, C*kh*kw)
                d = dout.reshape(n, f, ho * wo).transpose(0, 2, 1)  # (N, Ho*Wo, F)
                dw = np.einsum("npf,npk->fk", d, cols).reshape(w.shape)
                db = d.sum(axis=(0, 1))
                dcols = d @ w.reshape(f, -1)
                dxp = np.zeros_like(xp)
                p = 0
                for i in range(ho):
                    for j in range(wo):
                        dxp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw] += dcols[:, p].reshape(n, c, kh, kw)
                        p += 1
                return dxp[:, :, pad : pad + h, pad : pad + wd], dw, db
        """,
    },
    "maxpool2d-backward": {
        "equality mask, no argmax": """
            import numpy as np


            def maxpool2d_backward(dout, x, pool, stride):
                dx = np.zeros(x.shape)
                ho, wo = dout.shape[2], dout.shape[3]
                for i in range(ho):
                    for j in range(wo):
                        rows = slice(i * stride, i * stride + pool)
                        cols = slice(j * stride, j * stride + pool)
                        win = x[:, :, rows, cols]
                        mask = win == win.max(axis=(2, 3), keepdims=True)
                        dx[:, :, rows, cols] += mask * dout[:, :, i : i + 1, j : j + 1]
                return dx
        """,
    },
    "attention-backward": {
        "row by row with the softmax Jacobian matrix": """
            import math

            import numpy as np


            def attention_backward(dout, q, k, v, causal):
                dq, dk, dv = np.zeros(q.shape), np.zeros(k.shape), np.zeros(v.shape)
                scale = 1.0 / math.sqrt(q.shape[2])
                for b in range(q.shape[0]):
                    for i in range(q.shape[1]):
                        s = np.einsum("d,jd->j", q[b, i], k[b]) * scale
                        if causal:
                            s[i + 1 :] = -np.inf
                        e = np.exp(s - s.max())
                        p = e / e.sum()
                        dv[b] += np.outer(p, dout[b, i])
                        ds = (np.diag(p) - np.outer(p, p)) @ (v[b] @ dout[b, i])
                        dq[b, i] = scale * ds @ k[b]
                        dk[b] += scale * np.outer(ds, q[b, i])
                return dq, dk, dv
        """,
    },
    "multihead-attention-backward": {
        "head by head with einsum and column slices": """
            import numpy as np


            def mha_backward(dout, x, w_q, w_k, w_v, w_o, num_heads):
                e = x.shape[2]
                d = e // num_heads
                dx = np.zeros(x.shape)
                dw_q, dw_k, dw_v, dw_o = (np.zeros(w.shape) for w in (w_q, w_k, w_v, w_o))
                dconcat = np.einsum("bto,eo->bte", dout, w_o)
                for h in range(num_heads):
                    cols = slice(h * d, (h + 1) * d)
                    q = np.einsum("bte,ed->btd", x, w_q[:, cols])
                    k = np.einsum("bte,ed->btd", x, w_k[:, cols])
                    v = np.einsum("bte,ed->btd", x, w_v[:, cols])
                    s = np.einsum("bid,bjd->bij", q, k) / np.sqrt(d)
                    p = np.exp(s - s.max(axis=2, keepdims=True))
                    p = p / p.sum(axis=2, keepdims=True)
                    head = np.einsum("bij,bjd->bid", p, v)
                    dw_o[cols] += np.einsum("btd,bto->do", head, dout)
                    dhead = dconcat[:, :, cols]
                    dv = np.einsum("bij,bid->bjd", p, dhead)
                    dp = np.einsum("bid,bjd->bij", dhead, v)
                    ds = p * (dp - np.sum(dp * p, axis=2, keepdims=True)) / np.sqrt(d)
                    dq = np.einsum("bij,bjd->bid", ds, k)
                    dk = np.einsum("bij,bid->bjd", ds, q)
                    for w, dw, g in ((w_q, dw_q, dq), (w_k, dw_k, dk), (w_v, dw_v, dv)):
                        dw[:, cols] += np.einsum("bte,btd->ed", x, g)
                        dx += np.einsum("btd,ed->bte", g, w[:, cols])
                return dx, dw_q, dw_k, dw_v, dw_o
        """,
    },
}


def alternative_sources() -> list[tuple[str, str, str]]:
    return [
        (slug, style, textwrap.dedent(code)) for slug, styles in ALTERNATIVES.items() for style, code in styles.items()
    ]


def load_function(source: str, name: str) -> Any:
    """Run trusted source (solutions in this repository) in a fresh namespace and return its function."""
    namespace: dict[str, Any] = {}
    exec(compile(source, name, "exec"), namespace)
    return namespace[name]


def wrong_variants() -> list[tuple[str, Path, str]]:
    rows = []
    for slug in SLUGS:
        for path in sorted((EXERCISES / slug / "wrong").glob("*.py")):
            header = path.read_text().splitlines()[0]
            assert header.startswith("# mistake: "), path
            rows.append((slug, path, header.removeprefix("# mistake: ").strip()))
    return rows


def all_cases(kind: Kind) -> list[Case]:
    return [case for seed in SEEDS for case in kind.make_cases(np.random.default_rng(seed))]


def returned(kind: Kind, function: Any, case: Case) -> dict[str, Any]:
    copies = {name: value.copy() if isinstance(value, np.ndarray) else value for name, value in case.args.items()}
    return kind.split_result(function(*kind.call_args(copies)))


def evaluated_models(kind: Kind, case: Case) -> dict[str, list[tuple[Mistake, str, str, Any]]]:
    """{output: [(mistake, title, why, value)]} of the kind's models that apply to the case, as the engine builds it."""
    models: dict[str, list[tuple[Mistake, str, str, Any]]] = {}
    for model in [*kind.mistake_models(), *kind.generic_mistake_models()]:
        values = model.compute(case)
        for output, value in (values or {}).items():
            if model.outputs is None or output in model.outputs:
                models.setdefault(output, []).append((model.mistake, model.title, model.why, value))
    return models


# --- References ---------------------------------------------------------------------------


@pytest.mark.parametrize(("slug", "style", "source"), alternative_sources())
def test_the_torch_reference_equals_hand_written_numpy_gradients(slug: str, style: str, source: str) -> None:
    kind = KINDS[slug]
    solutions = {
        "solution.py": load_function((EXERCISES / slug / "solution.py").read_text(), kind.function_name),
        style: load_function(source, kind.function_name),
    }
    for case in all_cases(kind):
        expected = kind.reference(case)
        for name, function in solutions.items():
            got = returned(kind, function, case)
            for output, value in expected.items():
                assert np.shape(got[output]) == np.shape(value)
                assert rel_error(got[output], value) < 1e-9, (name, case.label, output)


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


@pytest.mark.parametrize("slug", SLUGS)
def test_every_mistake_model_differs_from_the_reference_on_every_case(slug: str) -> None:
    kind = KINDS[slug]
    used = set()
    for case in all_cases(kind):
        expected = kind.reference(case)
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


@pytest.mark.parametrize(("slug", "path", "mistake"), wrong_variants(), ids=lambda v: getattr(v, "name", str(v)))
def test_each_known_wrong_variant_is_diagnosed_with_its_labelled_mistake(slug: str, path: Path, mistake: str) -> None:
    kind = KINDS[slug]
    function = load_function(path.read_text(), kind.function_name)
    assert mistake in set(Mistake)
    wrong_somewhere = False
    for case in all_cases(kind):
        expected = kind.reference(case)
        got = returned(kind, function, case)
        models = None
        for output, value in expected.items():
            if np.shape(got[output]) == np.shape(value) and rel_error(got[output], value) <= 1e-6:
                continue
            wrong_somewhere = True
            specific = kind.likely_mistakes(case, output, value, got[output])
            models = models if models is not None else evaluated_models(kind, case)
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


# --- Through the engine and the sandbox ---------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Any:
    from grader.engine import Engine

    return Engine.get()


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
    names = {check["name"] for check in result.checks}
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
    assert mistake in {entry["mistake"] for entry in result.diagnosis}, result.diagnosis


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_unchanged_starter_code_has_the_right_shapes_but_is_a_wrong_answer_of_zeros(engine: Any) -> None:
    for slug in SLUGS:
        result = engine.grade(spec_of(slug), (EXERCISES / slug / "starter.py").read_text(), seed=1)
        assert result.verdict == "wrong_answer", slug
        assert next(check for check in result.checks if check["name"] == "outputs")["passed"], slug
        assert "is all zeros" in result.feedback, (slug, result.feedback)


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
