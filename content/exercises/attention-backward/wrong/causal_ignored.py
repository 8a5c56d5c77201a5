# mistake: causal_mask_ignored
# description: never applies the causal mask, so future keys receive weight and gradient
import numpy as np


def attention_backward(dout, q, k, v, causal):
    scale = 1.0 / np.sqrt(q.shape[-1])
    scores = (q @ k.transpose(0, 2, 1)) * scale
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    dv = p.transpose(0, 2, 1) @ dout
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = (ds @ k) * scale
    dk = (ds.transpose(0, 2, 1) @ q) * scale
    return dq, dk, dv
