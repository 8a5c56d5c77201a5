import numpy as np


def maxpool2d_backward(dout, x, pool, stride):
    """Backward pass of 2-D max pooling over pool x pool windows placed every `stride` pixels.

    Returns dx with the shape of x (N, C, H, W): each window's upstream gradient goes to
    the position of its maximum, and overlapping windows add up.
    """
    n, c, _, _ = x.shape
    _, _, h_out, w_out = dout.shape
    dx = np.zeros_like(x)
    for y in range(h_out):
        for z in range(w_out):
            top, left = y * stride, z * stride
            window = x[:, :, top : top + pool, left : left + pool].reshape(n, c, pool * pool)
            winner = window.argmax(axis=2)  # (N, C), flat index inside the window
            rows, cols = np.divmod(winner, pool)
            batch, channel = np.indices((n, c))
            np.add.at(dx, (batch, channel, top + rows, left + cols), dout[:, :, y, z])
    return dx
