# mistake: scaled_by_n
# description: sums the squared errors instead of averaging them, in the loss and in the gradient
import numpy as np


def mse_loss(pred, target):
    diff = pred - target
    loss = float(np.sum(diff**2))
    dpred = 2.0 * diff
    return loss, dpred
