# mistake: scaled_by_n
# description: divides by the number of rows N instead of the number of elements N * M
import numpy as np


def mse_loss(pred, target):
    n = pred.shape[0]
    diff = pred - target
    loss = float(np.sum(diff**2) / n)
    dpred = 2.0 * diff / n
    return loss, dpred
