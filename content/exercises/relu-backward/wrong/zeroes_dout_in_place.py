# mistake: inplace_modification
# description: right values, but computed by zeroing entries of the caller's dout in place
import numpy as np


def relu_backward(dout, x):
    dout[x <= 0] = 0.0
    return dout
