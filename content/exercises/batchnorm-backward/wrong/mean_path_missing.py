# mistake: bn_missing_mean_var_terms
# description: staged backward that sends the gradient through the variance but forgets the mean's own path
import numpy as np


def batchnorm_backward(dout, x, gamma, beta, eps):
    n = x.shape[0]
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    std = np.sqrt(var + eps)
    x_hat = (x - mu) / std
    dx_hat = dout * gamma
    dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * std**-3
    dx = dx_hat / std + dvar * 2.0 * (x - mu) / n
    return dx, np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)
