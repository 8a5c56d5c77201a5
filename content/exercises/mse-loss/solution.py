import numpy as np


def mse_loss(pred, target):
    """Mean of (pred - target)**2 over all elements; returns (loss, dL/dpred)."""
    diff = pred - target
    loss = float(np.mean(diff**2))
    dpred = 2.0 * diff / diff.size
    return loss, dpred
