# mistake: scaled_by_n
# description: sums the loss over the batch instead of averaging, so loss and gradient are N times too large
import numpy as np


def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = float(-log_probs[rows, y].sum())
    dlogits = np.exp(log_probs)
    dlogits[rows, y] -= 1.0
    return loss, dlogits
