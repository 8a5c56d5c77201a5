# mistake: missing_chain_rule
# description: returns ReLU's local derivative (the 0/1 mask) without multiplying by dout
import numpy as np


def relu_backward(dout, x):
    return (x > 0).astype(np.float64)
