# mistake: flipped_kernel
# description: back-propagates to x through the kernel rotated by 180 degrees, as for a true convolution, although the forward pass is a cross-correlation
import numpy as np


def conv2d_backward(dout, x, w, b, stride, pad):
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    _, _, h_out, w_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    w_flipped = w[:, :, ::-1, ::-1]
    for y in range(h_out):
        for z in range(w_out):
            top, left = y * stride, z * stride
            window = x_pad[:, :, top : top + hh, left : left + ww]
            dw += np.einsum("nf,nchw->fchw", dout[:, :, y, z], window)
            dx_pad[:, :, top : top + hh, left : left + ww] += np.einsum("nf,fchw->nchw", dout[:, :, y, z], w_flipped)
    dx = dx_pad[:, :, pad : pad + h, pad : pad + wd]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
