# mistake: sign_flipped
# description: returns (one_hot - softmax) / N, the negative gradient
import numpy as np


def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = float(-log_probs[rows, y].mean())
    one_hot = np.zeros_like(logits)
    one_hot[rows, y] = 1.0
    return loss, (one_hot - np.exp(log_probs)) / n
