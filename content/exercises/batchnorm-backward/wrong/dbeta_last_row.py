# mistake: bias_not_summed
# description: the loop assigns dbeta and dgamma for each example instead of adding them up, so only the last row counts
import numpy as np


def batchnorm_backward(dout, x, gamma, beta, eps):
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    dbeta = np.zeros_like(beta)
    dgamma = np.zeros_like(gamma)
    for i in range(n):
        dbeta = dout[i]
        dgamma = dout[i] * x_hat[i]
    dx_hat = dout * gamma
    dx = (inv_std / n) * (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    return dx, dgamma, dbeta
