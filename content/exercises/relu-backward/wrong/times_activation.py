# mistake: wrong_derivative
# description: multiplies dout by the activation relu(x) instead of its slope
import numpy as np


def relu_backward(dout, x):
    return dout * np.maximum(x, 0.0)
