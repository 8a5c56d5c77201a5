# mistake: stride_ignored
# description: places window (y, z) at row y and column z, as if the stride were 1
import numpy as np


def maxpool2d_backward(dout, x, pool, stride):
    n, c, _, _ = x.shape
    _, _, h_out, w_out = dout.shape
    dx = np.zeros_like(x)
    for k in range(n):
        for ch in range(c):
            for y in range(h_out):
                for z in range(w_out):
                    window = x[k, ch, y : y + pool, z : z + pool]
                    row, col = np.unravel_index(np.argmax(window), window.shape)
                    dx[k, ch, y + row, z + col] += dout[k, ch, y, z]
    return dx
