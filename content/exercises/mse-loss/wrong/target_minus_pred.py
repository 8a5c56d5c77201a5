# mistake: sign_flipped
# description: differentiates with respect to the target: 2 (target - pred) / S
import numpy as np


def mse_loss(pred, target):
    loss = float(np.mean((pred - target) ** 2))
    dpred = 2.0 * (target - pred) / pred.size
    return loss, dpred
