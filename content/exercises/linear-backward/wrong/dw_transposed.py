# mistake: transposed
# description: dw computed as dout.T @ x, which has shape (M, D) instead of w's (D, M)
import numpy as np


def linear_backward(dout, x, w, b):
    dx = dout @ w.T
    dw = dout.T @ x
    db = dout.sum(axis=0)
    return dx, dw, db
