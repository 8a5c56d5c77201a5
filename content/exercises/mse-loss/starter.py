import numpy as np


def mse_loss(pred, target):
    """Mean squared error over all elements, as nn.MSELoss().

    Args:
        pred: predictions, any shape.
        target: targets, the same shape as pred.

    Returns:
        (loss, dpred): loss a float, dpred = dL/dpred shaped like pred, float64.
        Do not modify the inputs.
    """
    # Your code here. The zeros below only have the right shapes: replace each with its gradient.
    loss = 0.0
    dpred = np.zeros_like(pred)
    return loss, dpred
