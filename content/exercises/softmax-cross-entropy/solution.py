import numpy as np


def softmax_cross_entropy(logits, y):
    """Mean of -log softmax(logits)[i, y_i]; returns (loss, dL/dlogits). Stable for large logits."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_sum
    rows = np.arange(n)
    loss = float(-log_probs[rows, y].mean())
    dlogits = np.exp(log_probs)
    dlogits[rows, y] -= 1.0
    return loss, dlogits / n
