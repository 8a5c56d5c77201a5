# mistake: softmax_overflow
# description: exponentiates the raw logits, which overflows to inf (and NaN) at magnitude 1000
import numpy as np


def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    exps = np.exp(logits)
    probs = exps / exps.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(-np.log(probs[rows, y]).mean())
    dlogits = probs.copy()
    dlogits[rows, y] -= 1.0
    return loss, dlogits / n
