# mistake: missing_chain_rule
# description: returns 1 - tanh(x)**2 without multiplying by dout
import numpy as np


def tanh_backward(dout, x):
    return 1.0 - np.tanh(x) ** 2
