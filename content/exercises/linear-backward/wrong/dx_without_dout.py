# mistake: missing_chain_rule
# description: dx is the local derivative of out with respect to x, summed, without multiplying by dout
import numpy as np


def linear_backward(dout, x, w, b):
    dx = np.ones_like(dout) @ w.T
    dw = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db
