# mistake: padding_ignored
# description: returns the gradient of the padded input, border included, instead of cropping it to the shape of x
import numpy as np


def conv2d_backward(dout, x, w, b, stride, pad):
    f, _, hh, ww = w.shape
    _, _, h_out, w_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for y in range(h_out):
        for z in range(w_out):
            top, left = y * stride, z * stride
            window = x_pad[:, :, top : top + hh, left : left + ww]
            dw += np.einsum("nf,nchw->fchw", dout[:, :, y, z], window)
            dx[:, :, top : top + hh, left : left + ww] += np.einsum("nf,fchw->nchw", dout[:, :, y, z], w)
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
