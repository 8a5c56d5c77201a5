"""Correct solutions written in other styles than the reference, each graded through the real engine.

Loops, einsum, im2col and as_strided, np.add.at and bincount routing, a staged or per-column batch
norm, log-sum-exp variants, a float32 mask, in-place work on copies, the math module, lists
instead of tuples and a 0-d loss: whatever the style, a correct gradient is accepted.
"""

from __future__ import annotations

import pytest

from grader.engine import Engine
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict
from tests.submission_helpers import EXERCISES_DIR

pytestmark = pytest.mark.sandbox

STYLES: dict[tuple[str, str], str] = {
    ("attention-backward", "einsum"): """\
import numpy as np
def attention_backward(dout, q, k, v, causal):
    d = q.shape[-1]
    s = np.einsum("bid,bjd->bij", q, k) / np.sqrt(d)
    if causal:
        Tq, Tk = s.shape[1:]
        mask = np.arange(Tk)[None, :] > np.arange(Tq)[:, None]
        s = s - 1e30 * mask
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s); p = p / p.sum(-1, keepdims=True)
    dv = np.einsum("bij,bie->bje", p, dout)
    dp = np.einsum("bie,bje->bij", dout, v)
    ds = p * dp - p * np.einsum("bij,bij->bi", p, dp)[..., None]
    dq = np.einsum("bij,bjd->bid", ds, k) / np.sqrt(d)
    dk = np.einsum("bij,bid->bjd", ds, q) / np.sqrt(d)
    return dq, dk, dv
""",
    ("attention-backward", "loops_jacobian"): """\
import math
import numpy as np
def attention_backward(dout, q, k, v, causal):
    B, Tq, d = q.shape
    Tk = k.shape[1]
    dq = np.zeros_like(q); dk = np.zeros_like(k); dv = np.zeros_like(v)
    sc = 1 / math.sqrt(d)
    for b in range(B):
        for i in range(Tq):
            n = min(i + 1, Tk) if causal else Tk
            s = k[b, :n] @ q[b, i] * sc
            p = np.exp(s - s.max()); p /= p.sum()
            J = np.diag(p) - np.outer(p, p)
            dv[b, :n] += np.outer(p, dout[b, i])
            dp = v[b, :n] @ dout[b, i]
            ds = J @ dp
            dq[b, i] = sc * ds @ k[b, :n]
            dk[b, :n] += sc * np.outer(ds, q[b, i])
    return dq, dk, dv
""",
    ("batchnorm-backward", "centered"): """\
import numpy as np
def batchnorm_backward(dout, x, gamma, beta, eps):
    xc = x - x.mean(0)
    ivar = 1 / np.sqrt((xc * xc).mean(0) + eps)
    xhat = xc * ivar
    g = dout * gamma
    dx = ivar * (g - g.mean(0) - xhat * (g * xhat).mean(0))
    return dx, (dout * xhat).sum(0), dout.sum(0)
""",
    ("batchnorm-backward", "columns"): """\
import math
import numpy as np
def batchnorm_backward(dout, x, gamma, beta, eps):
    n, d = x.shape
    dx = np.empty_like(x); dg = np.empty(d); db = np.empty(d)
    for j in range(d):
        col = x[:, j]
        mu = col.mean()
        var = ((col - mu) ** 2).mean()
        inv = 1 / math.sqrt(var + eps)
        xh = (col - mu) * inv
        go = dout[:, j]
        db[j] = go.sum(); dg[j] = (go * xh).sum()
        dxh = go * gamma[j]
        dx[:, j] = inv / n * (n * dxh - dxh.sum() - xh * (dxh * xh).sum())
    return (dx, dg, db)
""",
    ("batchnorm-backward", "ddof_var_std"): """\
import numpy as np
def batchnorm_backward(dout, x, gamma, beta, eps):
    N = len(x)
    sd = np.sqrt(np.var(x, axis=0, ddof=0) + eps)
    xh = (x - np.mean(x, axis=0)) / sd
    dxh = gamma * dout
    dx = (N * dxh - dxh.sum(0) - xh * np.sum(dxh * xh, axis=0)) / (N * sd)
    return dx, np.einsum("nd,nd->d", dout, xh), np.add.reduce(dout, axis=0)
""",
    ("batchnorm-backward", "staged"): """\
import numpy as np
def batchnorm_backward(dout, x, gamma, beta, eps):
    n = x.shape[0]
    mu = np.sum(x, axis=0) / n
    xc = x - mu
    var = np.sum(xc ** 2, axis=0) / n
    std = np.sqrt(var + eps)
    xhat = xc / std
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dxc = dxhat / std
    dstd = -np.sum(dxhat * xc, axis=0) / std ** 2
    dvar = 0.5 * dstd / std
    dxc += 2 * xc * dvar / n
    dmu = -np.sum(dxc, axis=0)
    dx = dxc + dmu / n
    return dx, dgamma, dbeta
""",
    ("conv2d-backward", "im2col"): """\
import numpy as np
from numpy.lib.stride_tricks import as_strided
def conv2d_backward(dout, x, w, b, stride, pad):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    s = xp.strides
    cols = as_strided(xp, shape=(N, C, HH, WW, Ho, Wo),
                      strides=(s[0], s[1], s[2], s[3], s[2] * stride, s[3] * stride))
    cols = cols.transpose(1, 2, 3, 0, 4, 5).reshape(C * HH * WW, -1)
    d2 = dout.transpose(1, 0, 2, 3).reshape(F, -1)
    dw = (d2 @ cols.T).reshape(w.shape)
    dcols = (w.reshape(F, -1).T @ d2).reshape(C, HH, WW, N, Ho, Wo)
    dxp = np.zeros_like(xp)
    for i in range(HH):
        for j in range(WW):
            dxp[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += dcols[:, i, j].transpose(1, 0, 2, 3)
    H2, W2 = xp.shape[2], xp.shape[3]
    dx = dxp[:, :, pad:H2 - pad, pad:W2 - pad]
    return dx, dw, d2.sum(axis=1)
""",
    ("conv2d-backward", "loops"): """\
import numpy as np
def conv2d_backward(dout, x, w, b, stride, pad):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            db[f] += dout[n, f].sum()
            for i in range(Ho):
                for j in range(Wo):
                    hs, ws = i * stride, j * stride
                    dw[f] += dout[n, f, i, j] * xp[n, :, hs:hs + HH, ws:ws + WW]
                    dxp[n, :, hs:hs + HH, ws:ws + WW] += dout[n, f, i, j] * w[f]
    dx = dxp[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db
""",
    ("conv2d-backward", "sliding_window"): """\
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
def conv2d_backward(dout, x, w, b, stride, pad):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = dout.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    win = sliding_window_view(xp, (HH, WW), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :Ho, :Wo]
    dw = np.einsum("nchwij,nfhw->fcij", win, dout)
    dwin = np.einsum("nfhw,fcij->nchwij", dout, w)
    dxp = np.zeros_like(xp)
    for a in range(Ho):
        for c in range(Wo):
            dxp[:, :, a * stride:a * stride + HH, c * stride:c * stride + WW] += dwin[:, :, a, c]
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, dout.sum((0, 2, 3))
""",
    ("conv2d-backward", "transposed_conv"): """\
import numpy as np
def conv2d_backward(dout, x, w, b, stride, pad):
    # dx as a full correlation of the dilated dout with the flipped kernel.
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    dil = np.zeros((N, F, (Ho - 1) * stride + 1, (Wo - 1) * stride + 1))
    dil[:, :, ::stride, ::stride] = dout
    full = np.pad(dil, ((0, 0), (0, 0), (HH - 1, HH - 1), (WW - 1, WW - 1)))
    wf = w[:, :, ::-1, ::-1]
    Hd, Wd = full.shape[2] - HH + 1, full.shape[3] - WW + 1
    dxp = np.zeros((N, C, Hp, Wp))
    for i in range(Hd):
        for j in range(Wd):
            dxp[:, :, i, j] = np.einsum("nfhw,fchw->nc", full[:, :, i:i + HH, j:j + WW], wf)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dw = np.zeros_like(w)
    for i in range(HH):
        for j in range(WW):
            dw[:, :, i, j] = np.einsum("nfyx,ncyx->fc", dout, xp[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride])
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, np.einsum("nfyx->f", dout)
""",
    ("linear-backward", "dot_keepdims"): """\
import numpy as np
def linear_backward(dout, x, w, b):
    dx = np.dot(dout, w.T)
    dw = np.matmul(x.T, dout)
    db = np.sum(dout, axis=0, keepdims=True).reshape(b.shape)
    return dx, dw, db.astype(np.float64)
""",
    ("linear-backward", "einsum_list"): """\
import numpy as np
def linear_backward(dout, x, w, b):
    dx = np.einsum("nm,dm->nd", dout, w)
    dw = np.einsum("nd,nm->dm", x, dout)
    db = np.einsum("nm->m", dout)
    return [dx, dw, db]
""",
    ("linear-backward", "loops"): """\
import numpy as np
def linear_backward(dout, x, w, b):
    n, d = x.shape
    m = w.shape[1]
    dx = np.zeros((n, d)); dw = np.zeros((d, m)); db = np.zeros(m)
    for i in range(n):
        dx[i] = w @ dout[i]
        dw += np.outer(x[i], dout[i])
        db += dout[i]
    return dx, dw, db
""",
    ("maxpool2d-backward", "loops"): """\
import numpy as np
def maxpool2d_backward(dout, x, pool, stride):
    N, C, H, W = x.shape
    _, _, Ho, Wo = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = x[n, c, i * stride:i * stride + pool, j * stride:j * stride + pool]
                    r, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, c, i * stride + r, j * stride + q] += dout[n, c, i, j]
    return dx
""",
    ("maxpool2d-backward", "mask_equal"): """\
import numpy as np
def maxpool2d_backward(dout, x, pool, stride):
    dx = np.zeros(x.shape)
    Ho, Wo = dout.shape[2:]
    for i in range(Ho):
        for j in range(Wo):
            sl = (slice(None), slice(None), slice(i * stride, i * stride + pool), slice(j * stride, j * stride + pool))
            win = x[sl]
            m = win == win.max(axis=(2, 3), keepdims=True)
            dx[sl] += m * dout[:, :, i:i + 1, j:j + 1]
    return dx
""",
    ("maxpool2d-backward", "reshape_nonoverlap"): """\
import numpy as np
def maxpool2d_backward(dout, x, pool, stride):
    # general path via flat indices and bincount
    N, C, H, W = x.shape
    Ho, Wo = dout.shape[2:]
    dx = np.zeros(x.size)
    base = (np.arange(N)[:, None] * C + np.arange(C)[None, :]) * H * W
    for i in range(Ho):
        for j in range(Wo):
            win = x[:, :, i*stride:i*stride+pool, j*stride:j*stride+pool].reshape(N, C, -1)
            a = win.argmax(-1)
            flat = base + (i * stride + a // pool) * W + (j * stride + a % pool)
            dx += np.bincount(flat.ravel(), weights=dout[:, :, i, j].ravel(), minlength=x.size)
    return dx.reshape(x.shape)
""",
    ("maxpool2d-backward", "strided_addat"): """\
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
def maxpool2d_backward(dout, x, pool, stride):
    N, C, H, W = x.shape
    Ho, Wo = dout.shape[2:]
    win = sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :Ho, :Wo]
    flat = win.reshape(N, C, Ho, Wo, pool * pool).argmax(-1)
    r, q = flat // pool, flat % pool
    n, c, i, j = np.indices((N, C, Ho, Wo))
    dx = np.zeros_like(x)
    np.add.at(dx, (n, c, i * stride + r, j * stride + q), dout)
    return dx
""",
    ("mse-loss", "0d_loss"): """\
import numpy as np
def mse_loss(pred, target):
    d = pred - target
    return np.mean(d ** 2, keepdims=False) * np.ones(()), np.multiply(d, 2) / d.size
""",
    ("mse-loss", "math_loops"): """\
import math
import numpy as np
def mse_loss(pred, target):
    flat_p = pred.ravel(); flat_t = target.ravel()
    n = flat_p.size
    total = math.fsum((float(a) - float(b)) ** 2 for a, b in zip(flat_p, flat_t))
    grad = np.empty(n)
    for i in range(n):
        grad[i] = 2.0 * (flat_p[i] - flat_t[i]) / n
    return total / n, grad.reshape(pred.shape)
""",
    ("mse-loss", "np_scalar_list"): """\
import numpy as np
def mse_loss(pred, target):
    d = np.subtract(pred, target)
    loss = np.square(d).sum() / np.prod(pred.shape)
    return [loss, d * (2 / pred.size)]
""",
    ("multihead-attention-backward", "einsum_heads"): """\
import numpy as np
def mha_backward(dout, x, w_q, w_k, w_v, w_o, num_heads):
    B, T, E = x.shape
    H = num_heads; d = E // H
    q = (x @ w_q).reshape(B, T, H, d)
    k = (x @ w_k).reshape(B, T, H, d)
    v = (x @ w_v).reshape(B, T, H, d)
    s = np.einsum("bthd,bshd->bhts", q, k) / d ** 0.5
    s -= s.max(-1, keepdims=True)
    p = np.exp(s); p /= p.sum(-1, keepdims=True)
    o = np.einsum("bhts,bshd->bthd", p, v).reshape(B, T, E)
    dw_o = np.tensordot(o, dout, axes=([0, 1], [0, 1]))
    do = (dout @ w_o.T).reshape(B, T, H, d)
    dv = np.einsum("bhts,bthd->bshd", p, do)
    dp = np.einsum("bthd,bshd->bhts", do, v)
    ds = p * (dp - (p * dp).sum(-1, keepdims=True)) / d ** 0.5
    dq = np.einsum("bhts,bshd->bthd", ds, k).reshape(B, T, E)
    dk = np.einsum("bhts,bthd->bshd", ds, q).reshape(B, T, E)
    dv = dv.reshape(B, T, E)
    dw_q = np.tensordot(x, dq, axes=([0, 1], [0, 1]))
    dw_k = np.tensordot(x, dk, axes=([0, 1], [0, 1]))
    dw_v = np.tensordot(x, dv, axes=([0, 1], [0, 1]))
    return dq @ w_q.T + dk @ w_k.T + dv @ w_v.T, dw_q, dw_k, dw_v, dw_o
""",
    ("multihead-attention-backward", "per_head_loop"): """\
import numpy as np
def mha_backward(dout, x, w_q, w_k, w_v, w_o, num_heads):
    B, T, E = x.shape
    d = E // num_heads
    Q, K, V = x @ w_q, x @ w_k, x @ w_v
    concat = np.zeros_like(Q)
    dQ = np.zeros_like(Q); dK = np.zeros_like(K); dV = np.zeros_like(V)
    dcat = dout @ w_o.T
    for h in range(num_heads):
        sl = slice(h * d, (h + 1) * d)
        q, k, v = Q[..., sl], K[..., sl], V[..., sl]
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        p = np.exp(s - s.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
        concat[..., sl] = p @ v
        g = dcat[..., sl]
        dV[..., sl] = p.transpose(0, 2, 1) @ g
        dp = g @ v.transpose(0, 2, 1)
        ds = p * (dp - np.sum(p * dp, -1, keepdims=True))
        dQ[..., sl] = ds @ k / np.sqrt(d)
        dK[..., sl] = ds.transpose(0, 2, 1) @ q / np.sqrt(d)
    dw_o = np.einsum("bte,btf->ef", concat, dout)
    dw_q = np.einsum("bte,btf->ef", x, dQ)
    dw_k = np.einsum("bte,btf->ef", x, dK)
    dw_v = np.einsum("bte,btf->ef", x, dV)
    dx = dQ @ w_q.T + dK @ w_k.T + dV @ w_v.T
    return [dx, dw_q, dw_k, dw_v, dw_o]
""",
    ("relu-backward", "copy_inplace"): """\
import numpy as np
def relu_backward(dout, x):
    dx = dout.copy()
    dx[x <= 0] = 0
    return dx
""",
    ("relu-backward", "float32_mask"): """\
import numpy as np
def relu_backward(dout, x):
    return dout * (x > 0).astype(np.float32)
""",
    ("relu-backward", "heaviside"): """\
import numpy as np
def relu_backward(dout, x):
    return dout * np.heaviside(x, 0.0)
""",
    ("relu-backward", "where"): """\
import numpy as np
def relu_backward(dout, x):
    return np.where(x > 0, dout, 0.0)
""",
    ("sigmoid-backward", "math_loop"): """\
import math
import numpy as np
def sigmoid_backward(dout, x):
    dx = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        s = 1.0 / (1.0 + math.exp(-float(x[idx]))) if x[idx] > -700 else 0.0
        dx[idx] = dout[idx] * s * (1 - s)
    return dx
""",
    ("sigmoid-backward", "stable_exp"): """\
import numpy as np
def sigmoid_backward(dout, x):
    e = np.exp(-np.abs(x))
    return dout * e / (1.0 + e) ** 2
""",
    ("sigmoid-backward", "tanh_form"): """\
import numpy as np
def sigmoid_backward(dout, x):
    s = 0.5 * (1.0 + np.tanh(0.5 * x))
    return dout * s * (1 - s)
""",
    ("simple-nn", "einsum"): """\
import numpy as np
def simple_nn_backward(params, x, y):
    w1 = params["fc1.weight"]; b1 = params["fc1.bias"]; w2 = params["fc2.weight"]; b2 = params["fc2.bias"]
    z = np.einsum("nd,hd->nh", x, w1) + b1
    mask = z > 0
    h = np.where(mask, z, 0.0)
    out = np.einsum("nh,oh->no", h, w2) + b2
    r = out - y
    loss = np.mean(r * r)
    g = r * (2.0 / r.size)
    dh = np.einsum("no,oh->nh", g, w2)
    dz = np.where(mask, dh, 0.0)
    grads = dict()
    grads["fc2.bias"] = g.sum(0)
    grads["fc2.weight"] = np.einsum("no,nh->oh", g, h)
    grads["fc1.bias"] = dz.sum(0)
    grads["fc1.weight"] = np.einsum("nh,nd->hd", dz, x)
    return loss, grads
""",
    ("simple-nn", "per_example"): """\
import numpy as np
def simple_nn_backward(params, x, y):
    w1, b1, w2, b2 = (params[k] for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"))
    n, o = y.shape
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    loss = 0.0
    for i in range(n):
        z = w1 @ x[i] + b1
        h = np.maximum(z, 0)
        out = w2 @ h + b2
        e = out - y[i]
        loss += float(e @ e)
        g = 2 * e / (n * o)
        grads["fc2.weight"] += np.outer(g, h)
        grads["fc2.bias"] += g
        dz = (w2.T @ g) * (z > 0)
        grads["fc1.weight"] += np.outer(dz, x[i])
        grads["fc1.bias"] += dz
    return loss / (n * o), grads
""",
    ("softmax-cross-entropy", "logaddexp"): """\
import numpy as np
def softmax_cross_entropy(logits, y):
    n = len(y)
    lse = np.logaddexp.reduce(logits, axis=1)
    loss = np.mean(lse - logits[np.arange(n), y])
    grad = np.exp(logits - lse[:, None])
    np.subtract.at(grad, (np.arange(n), y), 1)
    return loss, grad / n
""",
    ("softmax-cross-entropy", "logsumexp_loop"): """\
import math
import numpy as np
def softmax_cross_entropy(logits, y):
    n, c = logits.shape
    d = np.zeros_like(logits)
    total = 0.0
    for i in range(n):
        row = logits[i]
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        total += lse - row[y[i]]
        for j in range(c):
            d[i, j] = math.exp(row[j] - lse) / n
        d[i, y[i]] -= 1.0 / n
    return total / n, d
""",
    ("softmax-cross-entropy", "onehot"): """\
import numpy as np
def softmax_cross_entropy(logits, y):
    n, c = logits.shape
    z = logits - np.max(logits, axis=-1)[:, None]
    e = np.exp(z)
    p = e / e.sum(-1)[:, None]
    onehot = np.eye(c)[y]
    loss = -(onehot * (z - np.log(e.sum(-1))[:, None])).sum() / n
    return loss, (p - onehot) / n
""",
    ("tanh-backward", "cosh"): """\
import numpy as np
def tanh_backward(dout, x):
    return dout / np.cosh(x) ** 2
""",
    ("tanh-backward", "sigmoid_form"): """\
import numpy as np
def tanh_backward(dout, x):
    s = 1 / (1 + np.exp(-2 * x))
    return dout * 4 * s * (1 - s)
""",
    ("tanh-backward", "vectorize_math"): """\
import math
import numpy as np
def tanh_backward(dout, x):
    d = np.vectorize(lambda v: 1.0 - math.tanh(v) ** 2)(x)
    return dout * d
""",
}


@pytest.mark.parametrize(("slug", "style"), list(STYLES))
def test_a_correct_solution_in_another_style_is_accepted(engine: Engine, slug: str, style: str) -> None:
    result = engine.grade(ExerciseSpec.from_folder(EXERCISES_DIR / slug), STYLES[slug, style])

    failed = [(check.name, check.message) for check in result.checks if not check.passed]
    assert result.verdict == Verdict.ACCEPTED, (failed, [(d.output, d.title) for d in result.diagnosis])
    assert result.diagnosis == []
