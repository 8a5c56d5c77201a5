import numpy as np


def mha_backward(dout, x, w_q, w_k, w_v, w_o, num_heads):
    """Backward pass of multi-head self-attention (no biases, no mask).

    Forward: q = x @ w_q, k = x @ w_k, v = x @ w_v, each (B, T, E) with
    E = num_heads * d.  Head h takes the contiguous columns h*d : (h+1)*d of
    q, k and v and computes softmax(q_h k_h^T / sqrt(d)) v_h; the heads are
    concatenated back in order to (B, T, E) and out = concat @ w_o.

    Args:
        dout: (B, T, E) upstream gradient.  x: (B, T, E).
        w_q, w_k, w_v, w_o: (E, E).  num_heads: int dividing E.

    Returns:
        (dx, dw_q, dw_k, dw_v, dw_o) with the shapes of x, w_q, w_k, w_v, w_o.
        Do not modify the inputs.
    """
    # Your code here. The zeros below only have the right shapes: replace each with its gradient.
    dx = np.zeros_like(x)
    dw_q = np.zeros_like(w_q)
    dw_k = np.zeros_like(w_k)
    dw_v = np.zeros_like(w_v)
    dw_o = np.zeros_like(w_o)
    return dx, dw_q, dw_k, dw_v, dw_o
