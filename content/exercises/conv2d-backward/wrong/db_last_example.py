# mistake: bias_not_summed
# description: the loop over the batch assigns db instead of adding to it, so only the last example counts
import numpy as np


def conv2d_backward(dout, x, w, b, stride, pad):
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    _, _, h_out, w_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for k in range(n):
        db = dout[k].sum(axis=(1, 2))
        for y in range(h_out):
            for z in range(w_out):
                top, left = y * stride, z * stride
                window = x_pad[k, :, top : top + hh, left : left + ww]
                dw += dout[k, :, y, z][:, None, None, None] * window[None]
                dx_pad[k, :, top : top + hh, left : left + ww] += np.einsum("f,fchw->chw", dout[k, :, y, z], w)
    dx = dx_pad[:, :, pad : pad + h, pad : pad + wd]
    return dx, dw, db
