import numpy as np


def batchnorm_backward(dout, x, gamma, beta, eps):
    """Backward pass of training-mode batch normalization over axis 0 of x (N, D).

    Returns (dx, dgamma, dbeta) with the shapes of x, gamma and beta.
    """
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)  # biased: divides by N, as the forward pass does
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std

    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)

    # The three paths from x_i to the loss (direct, through the mean, through the
    # variance) collapse into one projection of dx_hat.
    dx_hat = dout * gamma
    dx = (inv_std / n) * (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    return dx, dgamma, dbeta
