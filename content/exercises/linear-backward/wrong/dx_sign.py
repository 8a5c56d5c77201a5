# mistake: sign_flipped
# description: a stray minus sign: dx = -dout @ w.T, as if the gradient were already the descent direction
import numpy as np


def linear_backward(dout, x, w, b):
    dx = -dout @ w.T
    dw = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db
