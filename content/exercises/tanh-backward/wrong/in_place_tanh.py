# mistake: inplace_modification
# description: right values, but computes tanh(x) into the caller's x with out=x
import numpy as np


def tanh_backward(dout, x):
    t = np.tanh(x, out=x)
    return dout * (1.0 - t**2)
