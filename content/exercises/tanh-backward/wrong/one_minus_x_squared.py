# mistake: wrong_derivative
# description: uses 1 - x**2, squaring the input instead of tanh(x)
import numpy as np


def tanh_backward(dout, x):
    return dout * (1.0 - x**2)
