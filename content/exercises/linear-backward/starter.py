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
    raise NotImplementedError
