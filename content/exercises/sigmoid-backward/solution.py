import numpy as np


def sigmoid_backward(dout, x):
    """dL/dx for out = sigmoid(x): dout * s * (1 - s) with s = sigmoid(x)."""
    s = 1.0 / (1.0 + np.exp(-x))
    return dout * s * (1.0 - s)
