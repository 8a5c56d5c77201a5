# mistake: sign_flipped
# description: writes the derivative as s * (s - 1), which has the wrong sign
import numpy as np


def sigmoid_backward(dout, x):
    s = 1.0 / (1.0 + np.exp(-x))
    return dout * s * (s - 1.0)
