# mistake: pool_wrong_position
# description: writes the gradient with = instead of +=, so where windows overlap the last window wins
import numpy as np


def maxpool2d_backward(dout, x, pool, stride):
    n, c, _, _ = x.shape
    _, _, h_out, w_out = dout.shape
    dx = np.zeros_like(x)
    for k in range(n):
        for ch in range(c):
            for y in range(h_out):
                for z in range(w_out):
                    top, left = y * stride, z * stride
                    window = x[k, ch, top : top + pool, left : left + pool]
                    row, col = np.unravel_index(np.argmax(window), window.shape)
                    dx[k, ch, top + row, left + col] = dout[k, ch, y, z]
    return dx
