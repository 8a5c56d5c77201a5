# mistake: wrong_derivative
# description: drops the factor 2 of the square in the gradient
import numpy as np


def mse_loss(pred, target):
    diff = pred - target
    loss = float(np.mean(diff**2))
    dpred = diff / diff.size
    return loss, dpred
