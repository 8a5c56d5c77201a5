import numpy as np


def simple_nn_backward(params, x, y):
    """Loss and parameter gradients of the lesson's SimpleNN with nn.MSELoss().

    Forward: h = relu(x @ W1.T + b1); out = h @ W2.T + b2; loss = mean((out - y)**2).

    Args:
        params: dict with "fc1.weight" (H, D), "fc1.bias" (H,), "fc2.weight" (O, H), "fc2.bias" (O,).
        x: (N, D) inputs.
        y: (N, O) targets.

    Returns:
        (loss, grads): loss a float; grads a dict with the same keys as params,
        each a float64 array shaped like its parameter. Do not modify the inputs.
    """
    # Your code here. The zeros below only have the right shapes: replace each with its gradient.
    loss = 0.0
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    return loss, grads
