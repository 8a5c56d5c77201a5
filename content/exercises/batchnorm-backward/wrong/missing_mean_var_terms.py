# mistake: bn_missing_mean_var_terms
# description: dx treats the batch mean and variance as constants (only the direct path through x_hat)
import numpy as np


def batchnorm_backward(dout, x, gamma, beta, eps):
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = dout * gamma / np.sqrt(var + eps)
    return dx, dgamma, dbeta
