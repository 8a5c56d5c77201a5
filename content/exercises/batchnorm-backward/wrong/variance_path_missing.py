# mistake: bn_missing_mean_var_terms
# description: follows x through x_hat and the mean but treats the variance as a constant, so the x_hat-weighted term is missing
import numpy as np


def batchnorm_backward(dout, x, gamma, beta, eps):
    n = x.shape[0]
    centred = x - x.mean(axis=0)
    inv_std = 1.0 / np.sqrt(np.mean(centred**2, axis=0) + eps)
    x_hat = centred * inv_std
    dx_hat = dout * gamma
    dx = inv_std * (dx_hat - dx_hat.sum(axis=0) / n)
    return dx, np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)
