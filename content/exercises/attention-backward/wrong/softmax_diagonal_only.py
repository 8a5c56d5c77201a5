# mistake: wrong_derivative
# description: treats the softmax as element-wise (ds = p * dp), dropping the -p * sum(p * dp) term of its Jacobian
import numpy as np


def attention_backward(dout, q, k, v, causal):
    scale = 1.0 / np.sqrt(q.shape[-1])
    scores = (q @ k.transpose(0, 2, 1)) * scale
    if causal:
        t_q, t_k = scores.shape[1:]
        scores = np.where(np.triu(np.ones((t_q, t_k), dtype=bool), k=1), -np.inf, scores)
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    dv = p.transpose(0, 2, 1) @ dout
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * dp
    dq = (ds @ k) * scale
    dk = (ds.transpose(0, 2, 1) @ q) * scale
    return dq, dk, dv
