import numpy as np


def batchnorm_backward(dout, x, gamma, beta, eps):
    """Backward pass of batch normalization in training mode.

    Forward: mean and biased variance of x over axis 0 (the batch),
    x_hat = (x - mean) / sqrt(var + eps), out = gamma * x_hat + beta.

    Args:
        dout: (N, D) upstream gradient dL/dout.
        x: (N, D) input of the forward pass.
        gamma: (D,) scale.  beta: (D,) shift.  eps: float added to the variance.

    Returns:
        (dx, dgamma, dbeta) with shapes (N, D), (D,), (D,).
        Do not modify the inputs.
    """
    # Your code here. The zeros below only have the right shapes: replace each with its gradient.
    dx = np.zeros_like(x)
    dgamma = np.zeros_like(gamma)
    dbeta = np.zeros_like(beta)
    return dx, dgamma, dbeta
