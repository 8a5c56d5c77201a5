import numpy as np


def attention_backward(dout, q, k, v, causal):
    """Backward pass of scaled dot-product attention.

    Forward: s = q @ k^T / sqrt(d) (per batch element), with causal=True every
    key j > query i gets -inf; p = softmax(s) over the keys; out = p @ v.

    Args:
        dout: (B, Tq, dv) upstream gradient.
        q: (B, Tq, d).  k: (B, Tk, d).  v: (B, Tk, dv).  causal: bool.

    Returns:
        (dq, dk, dv) with shapes (B, Tq, d), (B, Tk, d), (B, Tk, dv).
        Do not modify the inputs.
    """
    # Your code here. The zeros below only have the right shapes: replace each with its gradient.
    dq = np.zeros_like(q)
    dk = np.zeros_like(k)
    dv = np.zeros_like(v)
    return dq, dk, dv
