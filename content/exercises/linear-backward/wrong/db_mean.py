# mistake: scaled_by_1_over_n
# description: db averages dout over the batch instead of summing it
import numpy as np


def linear_backward(dout, x, w, b):
    dx = dout @ w.T
    dw = x.T @ dout
    db = np.mean(dout, axis=0)
    return dx, dw, db
