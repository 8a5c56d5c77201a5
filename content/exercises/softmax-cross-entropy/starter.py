import numpy as np


def softmax_cross_entropy(logits, y):
    """Mean softmax cross-entropy over the batch, as F.cross_entropy(logits, y).

    Args:
        logits: (N, C) scores; some tests use magnitudes around 1000.
        y: (N,) integer class labels in [0, C).

    Returns:
        (loss, dlogits): loss a float, dlogits = dL/dlogits of shape (N, C), float64.
        Do not modify the inputs.
    """
    # Your code here. The zeros below only have the right shapes: replace each with its gradient.
    loss = 0.0
    dlogits = np.zeros_like(logits)
    return loss, dlogits
