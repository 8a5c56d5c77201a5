# mistake: wrong_derivative
# description: applies s * (1 - s) to the input x instead of to s = sigmoid(x)
import numpy as np


def sigmoid_backward(dout, x):
    return dout * x * (1.0 - x)
