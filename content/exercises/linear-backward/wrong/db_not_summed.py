# mistake: bias_not_summed
# description: db returned as dout itself, one row per example, instead of the sum over the batch
import numpy as np


def linear_backward(dout, x, w, b):
    dx = dout @ w.T
    dw = x.T @ dout
    db = dout
    return dx, dw, db
