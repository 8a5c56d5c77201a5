import numpy as np


def attention_backward(dout, q, k, v, causal):
    """Backward pass of scaled dot-product attention softmax(q k^T / sqrt(d) + mask) v.

    q (B, Tq, d), k (B, Tk, d), v (B, Tk, dv), dout (B, Tq, dv); with causal=True, key j is
    hidden from query i when j > i.  Returns (dq, dk, dv) with the shapes of q, k, v.
    """
    scale = 1.0 / np.sqrt(q.shape[-1])
    scores = (q @ k.transpose(0, 2, 1)) * scale
    if causal:
        t_q, t_k = scores.shape[1:]
        hidden = np.triu(np.ones((t_q, t_k), dtype=bool), k=1)
        scores = np.where(hidden, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)

    dv = p.transpose(0, 2, 1) @ dout
    dp = dout @ v.transpose(0, 2, 1)
    # Softmax Jacobian applied row by row: ds = p * (dp - <dp, p>).  Masked
    # entries have p = 0, so they receive no gradient.
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = (ds @ k) * scale
    dk = (ds.transpose(0, 2, 1) @ q) * scale
    return dq, dk, dv
