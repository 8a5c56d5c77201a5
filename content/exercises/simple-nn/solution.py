import numpy as np


def simple_nn_backward(params, x, y):
    """Loss and gradients of relu(x @ W1.T + b1) @ W2.T + b2 under nn.MSELoss()."""
    w1, b1 = params["fc1.weight"], params["fc1.bias"]
    w2, b2 = params["fc2.weight"], params["fc2.bias"]

    z = x @ w1.T + b1
    h = np.maximum(z, 0.0)
    out = h @ w2.T + b2
    loss = float(np.mean((out - y) ** 2))

    d_out = 2.0 * (out - y) / out.size
    d_h = d_out @ w2
    d_z = d_h * (z > 0)
    grads = {
        "fc1.weight": d_z.T @ x,
        "fc1.bias": d_z.sum(axis=0),
        "fc2.weight": d_out.T @ h,
        "fc2.bias": d_out.sum(axis=0),
    }
    return loss, grads
