import numpy as np


def linear_backward(dout, x, w, b):
    """Backward pass of a linear layer out = x @ w + b.

    Args:
        dout: (N, M) upstream gradient dL/dout.
        x: (N, D) input of the forward pass.
        w: (D, M) weights.
        b: (M,) bias.

    Returns:
        (dx, dw, db) with shapes (N, D), (D, M), (M,), float64.
        Do not modify the inputs.
    """
    # Your code here. The zeros below only have the right shapes: replace each with its gradient.
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    return dx, dw, db
