# mistake: attention_scale_missing
# description: scales the scores in the forward recomputation but forgets the 1/sqrt(d) of the chain rule in dq and dk
import numpy as np


def attention_backward(dout, q, k, v, causal):
    d = q.shape[-1]
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
    if causal:
        t_q, t_k = scores.shape[1:]
        scores = np.where(np.triu(np.ones((t_q, t_k), dtype=bool), k=1), -np.inf, scores)
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    dv = p.transpose(0, 2, 1) @ dout
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = ds @ k
    dk = ds.transpose(0, 2, 1) @ q
    return dq, dk, dv
