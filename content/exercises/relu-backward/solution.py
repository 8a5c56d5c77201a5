import numpy as np


def relu_backward(dout, x):
    """dL/dx for out = max(0, x): dout where x > 0, zero elsewhere (a new array)."""
    return dout * (x > 0)
