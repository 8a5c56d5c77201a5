"""The five exercises of tests/test_kinds_cnn_attention*.py: their slugs, alternative correct solutions
in other styles than solution.py, their known-wrong variants, and their cases with references and
mistake models, computed once per test process."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from grader.diagnosis import Mistake
from grader.kinds import KINDS
from grader.kinds.base import Case, Kind

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


@functools.cache
def cases_with_references(slug: str) -> tuple[tuple[Case, dict[str, Any]], ...]:
    """Every case of the kind over SEEDS with its reference outputs (PyTorch autograd, the heavy part).

    Computed once per test process and shared by the tests; the arrays are made
    read-only so that no test can change what the next one compares against.
    """
    kind = KINDS[slug]
    rows = []
    for case in all_cases(kind):
        expected = kind.reference(case)
        for value in expected.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        rows.append((case, expected))
    return tuple(rows)


@functools.cache
def case_models(slug: str, index: int) -> dict[str, list[tuple[Mistake, str, str, Any]]]:
    """`evaluated_models` of case `index` of `cases_with_references(slug)`, computed once per test process."""
    case, _ = cases_with_references(slug)[index]
    return evaluated_models(KINDS[slug], case)


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
