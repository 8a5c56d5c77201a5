import numpy as np


def linear_backward(dout, x, w, b):
    """Backward pass of out = x @ w + b; returns (dx, dw, db) shaped like x, w and b."""
    dx = dout @ w.T
    dw = x.T @ dout
    # b was broadcast to every row, so its gradient collects every row's.
    db = dout.sum(axis=0)
    return dx, dw, db
