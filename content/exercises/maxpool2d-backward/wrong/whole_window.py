# mistake: wrong_mask
# description: spreads each upstream gradient evenly over the whole window, as average pooling would
import numpy as np


def maxpool2d_backward(dout, x, pool, stride):
    _, _, h_out, w_out = dout.shape
    dx = np.zeros_like(x)
    for y in range(h_out):
        for z in range(w_out):
            top, left = y * stride, z * stride
            dx[:, :, top : top + pool, left : left + pool] += dout[:, :, y, z][:, :, None, None] / (pool * pool)
    return dx
