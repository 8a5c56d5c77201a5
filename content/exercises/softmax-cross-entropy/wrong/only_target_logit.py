# mistake: missing_log_softmax_grad
# description: differentiates only the -z_y term, dropping the softmax that the log-sum-exp term contributes
import numpy as np


def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = float(-log_probs[rows, y].mean())
    dlogits = np.zeros_like(logits)
    dlogits[rows, y] = -1.0
    return loss, dlogits / n
