# mistake: stride_ignored
# description: slides the kernel one pixel at a time whatever the stride
import numpy as np


def conv2d_backward(dout, x, w, b, stride, pad):
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    _, _, h_out, w_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for y in range(h_out):
        for z in range(w_out):
            window = x_pad[:, :, y : y + hh, z : z + ww]
            dw += np.einsum("nf,nchw->fchw", dout[:, :, y, z], window)
            dx_pad[:, :, y : y + hh, z : z + ww] += np.einsum("nf,fchw->nchw", dout[:, :, y, z], w)
    dx = dx_pad[:, :, pad : pad + h, pad : pad + wd]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
