# mistake: wrong_derivative
# description: uses 1 - tanh(x) and forgets the square
import numpy as np


def tanh_backward(dout, x):
    return dout * (1.0 - np.tanh(x))
