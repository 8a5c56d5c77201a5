# mistake: attention_scale_missing
# description: divides every head's scores by sqrt(E), the model width, instead of sqrt(d), the head size
import numpy as np


def mha_backward(dout, x, w_q, w_k, w_v, w_o, num_heads):
    b, t, e = x.shape
    d = e // num_heads
    scale = 1.0 / np.sqrt(e)

    def split(a):
        return a.reshape(b, t, num_heads, d).transpose(0, 2, 1, 3)

    def merge(a):
        return a.transpose(0, 2, 1, 3).reshape(b, t, e)

    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    scores = (q @ k.swapaxes(-1, -2)) * scale
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    concat = merge(p @ v)
    dw_o = concat.reshape(-1, e).T @ dout.reshape(-1, e)
    d_heads = split(dout @ w_o.T)
    dv = p.swapaxes(-1, -2) @ d_heads
    dp = d_heads @ v.swapaxes(-1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq, dk, dv = merge((ds @ k) * scale), merge((ds.swapaxes(-1, -2) @ q) * scale), merge(dv)
    x_rows = x.reshape(-1, e)
    dw_q = x_rows.T @ dq.reshape(-1, e)
    dw_k = x_rows.T @ dk.reshape(-1, e)
    dw_v = x_rows.T @ dv.reshape(-1, e)
    dx = dq @ w_q.T + dk @ w_k.T + dv @ w_v.T
    return dx, dw_q, dw_k, dw_v, dw_o
