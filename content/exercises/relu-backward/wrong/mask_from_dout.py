# mistake: wrong_mask
# description: masks where the upstream gradient is positive instead of where the input x was
import numpy as np


def relu_backward(dout, x):
    return np.where(dout > 0, dout, 0.0)
