import numpy as np


def conv2d_backward(dout, x, w, b, stride, pad):
    """Backward pass of a 2-D cross-correlation with zero padding `pad` and step `stride`.

    Returns (dx, dw, db) with the shapes of x (N, C, H, W), w (F, C, HH, WW) and b (F,).
    """
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    _, _, h_out, w_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)

    # One kernel offset (i, j) at a time: the inputs it touches form a strided
    # view of the padded input, of the same spatial size as dout.
    for i in range(hh):
        for j in range(ww):
            rows = slice(i, i + stride * h_out, stride)
            cols = slice(j, j + stride * w_out, stride)
            patch = x_pad[:, :, rows, cols]  # (N, C, H_out, W_out)
            dw[:, :, i, j] = np.einsum("nfyx,ncyx->fc", dout, patch)
            dx_pad[:, :, rows, cols] += np.einsum("nfyx,fc->ncyx", dout, w[:, :, i, j])

    dx = dx_pad[:, :, pad : pad + h, pad : pad + wd]  # the padding is not an input
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
