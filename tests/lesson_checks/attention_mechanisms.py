"""The checks behind the display formulas of content/lessons/attention-mechanisms.md."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import assert_close, assert_mentions, formula_check, latex_matrices, randn


@formula_check("attention-weights")
def check_attention_weights(latex: str) -> None:
    assert_mentions(latex, r"c_i = \sum_{j=1}^{T} \alpha_{ij} h_j", r"\frac{\exp(e_{ij})}{\sum_{k=1}^{T}\exp(e_{ik})}")
    scores, states = randn(4, 6, seed=30), randn(6, 3, seed=31)
    alpha = scores.exp() / scores.exp().sum(dim=1, keepdim=True)
    assert_close(alpha, torch.softmax(scores, dim=1), "alpha equals a softmax over j")
    assert_close(alpha.sum(dim=1), torch.ones(4, dtype=torch.float64), "weights sum to one")
    assert bool((alpha > 0).all()), "weights are positive"
    context = torch.stack([torch.stack([alpha[i, j] * states[j] for j in range(6)]).sum(dim=0) for i in range(4)])
    assert_close(context, alpha @ states, "context vectors")
    low, high = states.min(dim=0).values, states.max(dim=0).values
    assert bool(((context >= low) & (context <= high)).all()), "a convex combination stays inside the states' range"


@formula_check("additive-score")
def check_additive_score(latex: str) -> None:
    assert_mentions(latex, r"e_{ij} = v_a^{\top} \tanh\left(W_a s_{i-1} + U_a h_j\right)")
    query_size, key_size, hidden = 3, 5, 4
    w_a, u_a, v_a = randn(hidden, query_size, seed=40), randn(hidden, key_size, seed=41), randn(hidden, seed=42)
    decoder_states, encoder_states = randn(2, query_size, seed=43), randn(6, key_size, seed=44)
    broadcast = torch.tanh((decoder_states @ w_a.T)[:, None, :] + (encoder_states @ u_a.T)[None, :, :]) @ v_a
    layer = torch.nn.Linear(query_size + key_size, hidden, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.cat([w_a, u_a], dim=1))
        for i in range(2):
            for j in range(6):
                concatenated = torch.cat([decoder_states[i], encoder_states[j]])
                as_network = v_a @ torch.tanh(layer(concatenated))
                assert_close(broadcast[i, j], as_network, f"additive score e[{i},{j}] as a feed-forward layer")


@formula_check("multiplicative-score")
def check_multiplicative_score(latex: str) -> None:
    assert_mentions(latex, r"s_i^{\top} W_a h_j", r"s_i^{\top} h_j")
    queries, keys, w_a = randn(3, 4, seed=50), randn(6, 5, seed=51), randn(4, 5, seed=52)
    general = queries @ w_a @ keys.T
    bilinear = F.bilinear(queries[:, None, :].expand(3, 6, 4), keys[None].expand(3, 6, 5), w_a[None]).squeeze(-1)
    assert_close(general, bilinear, "general score against F.bilinear")
    same_size_keys = randn(6, 4, seed=53)
    dot = torch.stack([torch.stack([queries[i] @ same_size_keys[j] for j in range(6)]) for i in range(3)])
    assert_close(queries @ same_size_keys.T, dot, "dot score")
    assert_close(queries @ torch.eye(4, dtype=torch.float64) @ same_size_keys.T, dot, "dot is general with W_a = I")


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    return torch.softmax(scores, dim=-1) @ v


@formula_check("scaled-dot-product")
def check_scaled_dot_product(latex: str) -> None:
    assert_mentions(latex, r"\mathrm{softmax}\left(\frac{QK^{\top}}{\sqrt{d_k}}\right)V")
    for t_q, t_k, d_k, d_v in ((1, 1, 1, 1), (4, 7, 8, 3), (9, 5, 64, 16)):
        q, k, v = randn(2, t_q, d_k, seed=t_q), randn(2, t_k, d_k, seed=t_k + 10), randn(2, t_k, d_v, seed=d_v)
        expected = F.scaled_dot_product_attention(q, k, v)
        assert_close(_attention(q, k, v), expected, f"attention for T_q={t_q}, T_k={t_k}, d_k={d_k}")


@formula_check("dot-product-variance")
def check_dot_product_variance(latex: str) -> None:
    assert_mentions(latex, r"\mathbb{E}[q \cdot k] = 0", r"\operatorname{Var}(q \cdot k) = d_k")
    samples = 40_000
    for d_k in (4, 32, 128):
        q, k = randn(samples, d_k, seed=d_k), randn(samples, d_k, seed=d_k + 1)
        dots = (q * k).sum(dim=1)
        standard_error_of_mean = math.sqrt(d_k / samples)
        assert abs(dots.mean().item()) < 4 * standard_error_of_mean, f"mean for d_k={d_k}"
        assert abs(dots.var().item() / d_k - 1) < 0.04, f"variance for d_k={d_k}: {dots.var().item():.2f}"
        assert abs((dots / math.sqrt(d_k)).var().item() - 1) < 0.04, "scaling restores unit variance"


@formula_check("causal-mask")
def check_causal_mask(latex: str) -> None:
    assert_mentions(latex, r"0 & j \le i", r"-\infty & j > i", r"+ M\right)V")
    for length in (1, 2, 6):
        q, k, v = randn(3, length, 4, seed=length), randn(3, length, 4, seed=length + 1), randn(3, length, 2, seed=7)
        rows, columns = torch.arange(length)[:, None], torch.arange(length)[None, :]
        mask = torch.where(columns <= rows, 0.0, float("-inf")).double()
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert_close(_attention(q, k, v, mask), expected, f"causal attention for T={length}")
        changed_future = v.clone()
        changed_future[:, -1] += 100.0
        assert_close(_attention(q, k, changed_future, mask)[:, :-1], expected[:, :-1], "the future is invisible")


@formula_check("multi-head")
def check_multi_head(latex: str) -> None:
    assert_mentions(
        latex,
        r"\mathrm{head}_h = \mathrm{Attention}\left(XW_h^Q, XW_h^K, XW_h^V\right)",
        r"\mathrm{Concat}\left(\mathrm{head}_1, \ldots, \mathrm{head}_H\right) W^O",
    )
    torch.manual_seed(60)
    for embed, heads in ((8, 1), (8, 2), (12, 4)):
        module = torch.nn.MultiheadAttention(embed, heads, bias=False, batch_first=True).double()
        x = randn(2, 5, embed, seed=embed + heads)
        expected, _ = module(x, x, x, need_weights=False)
        w_q, w_k, w_v = (w.T for w in module.in_proj_weight.detach().chunk(3))
        w_o, d_k = module.out_proj.weight.detach().T, embed // heads
        head_outputs = [
            _attention(x @ w_q[:, s], x @ w_k[:, s], x @ w_v[:, s])
            for s in (slice(h * d_k, (h + 1) * d_k) for h in range(heads))
        ]
        assert_close(torch.cat(head_outputs, dim=-1) @ w_o, expected.detach(), f"{heads} heads of width {d_k}")


@formula_check("attention-cost")
def check_attention_cost(latex: str) -> None:
    assert_mentions(latex, r"T^2 d_k \text{ multiply-adds}", r"T^2 \text{ scores per head}")
    from torch.utils.flop_counter import FlopCounterMode

    for length, d_k in ((8, 4), (16, 4), (32, 16)):
        q, k = randn(length, d_k, seed=length), randn(length, d_k, seed=d_k)
        with FlopCounterMode(display=False) as counter:
            scores = q @ k.T
        floating_point_operations_per_multiply_add = 2
        assert counter.get_total_flops() == floating_point_operations_per_multiply_add * length**2 * d_k
        assert scores.numel() == length**2


@formula_check("positional-encoding")
def check_positional_encoding(latex: str) -> None:
    assert_mentions(latex, r"PE_{(p, 2i)} = \sin\left(\frac{p}{10000^{2i/d}}\right)", r"PE_{(p, 2i+1)} = \cos")
    d, positions = 16, torch.arange(50, dtype=torch.float64)
    frequencies = 1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    encoding = torch.zeros(50, d, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(positions[:, None] * frequencies)
    encoding[:, 1::2] = torch.cos(positions[:, None] * frequencies)
    assert_close(encoding[:, 0], torch.sin(positions), "the first pair has frequency 1")
    for offset in (1, 5, 13):
        angle = offset * frequencies
        sin_p, cos_p = encoding[:-offset, 0::2], encoding[:-offset, 1::2]
        rotated_sin = sin_p * torch.cos(angle) + cos_p * torch.sin(angle)
        rotated_cos = cos_p * torch.cos(angle) - sin_p * torch.sin(angle)
        assert_close(rotated_sin, encoding[offset:, 0::2], f"PE(p+{offset}) is a rotation of PE(p) (sine)")
        assert_close(rotated_cos, encoding[offset:, 1::2], f"PE(p+{offset}) is a rotation of PE(p) (cosine)")


def _attention_case(seed: int, t_q: int, t_k: int, d_k: int, d_v: int, causal: bool) -> dict[str, torch.Tensor]:
    """Attention with its intermediates and autograd gradients, float64, batch of 2."""
    q = randn(2, t_q, d_k, seed=seed, requires_grad=True)
    k = randn(2, t_k, d_k, seed=seed + 1, requires_grad=True)
    v = randn(2, t_k, d_v, seed=seed + 2, requires_grad=True)
    mask = torch.zeros(t_q, t_k, dtype=torch.float64)
    if causal:
        mask = torch.full((t_q, t_k), float("-inf"), dtype=torch.float64).triu(diagonal=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d_k) + mask
    scores.retain_grad()
    p = torch.softmax(scores, dim=-1)
    p.retain_grad()
    out = p @ v
    d_out = randn(*out.shape, seed=seed + 3)
    out.backward(d_out)
    assert q.grad is not None and k.grad is not None and v.grad is not None
    assert scores.grad is not None and p.grad is not None
    detached = {"q": q, "k": k, "v": v, "p": p, "out": out}
    case = {name: tensor.detach() for name, tensor in detached.items()}
    case.update(d_out=d_out, dq=q.grad, dk=k.grad, dv=v.grad, ds=scores.grad, dp=p.grad)
    return case


ATTENTION_SHAPES = ((1, 1, 1, 1, False), (3, 5, 4, 2, False), (4, 4, 8, 3, True), (6, 6, 2, 5, True))


@formula_check("attention-backward-pv")
def check_attention_backward_pv(latex: str) -> None:
    assert_mentions(latex, r"dV = P^{\top}\, dO", r"dP = dO\, V^{\top}")
    for index, shape in enumerate(ATTENTION_SHAPES):
        case = _attention_case(200 + 10 * index, *shape)
        assert_close(case["p"].transpose(-1, -2) @ case["d_out"], case["dv"], f"dV for {shape}")
        assert_close(case["d_out"] @ case["v"].transpose(-1, -2), case["dp"], f"dP for {shape}")


@formula_check("attention-softmax-backward")
def check_attention_softmax_backward(latex: str) -> None:
    assert_mentions(latex, r"dS_{ij} = P_{ij}\left(dP_{ij} - \sum_{k} P_{ik}\, dP_{ik}\right)")
    for index, shape in enumerate(ATTENTION_SHAPES):
        case = _attention_case(300 + 10 * index, *shape)
        p, dp = case["p"], case["dp"]
        ds = p * (dp - (p * dp).sum(dim=-1, keepdim=True))
        assert_close(ds, case["ds"], f"dS for {shape}")
        assert_close(ds.sum(dim=-1), torch.zeros(ds.shape[:-1], dtype=torch.float64), "rows of dS sum to zero")
        row_sums = (case["d_out"] * case["out"]).sum(dim=-1, keepdim=True)
        assert_close((p * dp).sum(dim=-1, keepdim=True), row_sums, "the row sums equal sum(dO * O)")
        if shape[-1]:
            assert bool((ds[p == 0] == 0).all()), "masked positions get no gradient"


@formula_check("attention-backward-qk")
def check_attention_backward_qk(latex: str) -> None:
    assert_mentions(latex, r"dQ = \frac{dS\, K}{\sqrt{d_k}}", r"dK = \frac{dS^{\top}\, Q}{\sqrt{d_k}}")
    for index, shape in enumerate(ATTENTION_SHAPES):
        case = _attention_case(400 + 10 * index, *shape)
        scale = math.sqrt(shape[2])
        assert_close(case["ds"] @ case["k"] / scale, case["dq"], f"dQ for {shape}")
        assert_close(case["ds"].transpose(-1, -2) @ case["q"] / scale, case["dk"], f"dK for {shape}")
        without_scale = case["ds"] @ case["k"]
        assert not torch.allclose(without_scale, case["dq"]) or shape[2] == 1, "the scale matters"


def _rounded(tensor: torch.Tensor, places: int = 4) -> torch.Tensor:
    return torch.round(tensor * 10**places) / 10**places


@formula_check("attention-worked-example")
def check_attention_worked_example(latex: str) -> None:
    assert_mentions(latex, r"dV =", r"dq =", r"dK =")
    q, k, v, dv, dq, dk = latex_matrices(latex)
    q, k, v = q.requires_grad_(), k.requires_grad_(), v.requires_grad_()
    assert q.shape[-1] == 4, "the example's d_k is 4"
    out = torch.softmax(q @ k.T / 2, dim=-1) @ v
    out.backward(torch.ones_like(out))
    assert q.grad is not None and k.grad is not None and v.grad is not None
    for name, ours, autograd in (("dV", dv, v.grad), ("dq", dq, q.grad), ("dK", dk, k.grad)):
        assert torch.equal(ours, _rounded(autograd)), f"{name} is {autograd.tolist()}"


def _mha_pieces(x: torch.Tensor, weights: list[torch.Tensor], heads: int) -> dict[str, torch.Tensor]:
    """Multi-head self-attention (contiguous head slices, no bias, no mask), keeping Q, K, V and the concat."""
    batch, length, embed = x.shape
    width = embed // heads
    projections = [x @ w for w in weights[:3]]
    for tensor in projections:
        tensor.retain_grad()

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, length, heads, width).transpose(1, 2)

    q, k, v = (split(t) for t in projections)
    concat = (torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(width), dim=-1) @ v).transpose(1, 2)
    concat = concat.reshape(batch, length, embed)
    concat.retain_grad()
    return {"q": projections[0], "k": projections[1], "v": projections[2], "concat": concat, "out": concat @ weights[3]}


@formula_check("multi-head-backward")
def check_multi_head_backward(latex: str) -> None:
    assert_mentions(
        latex,
        r"dW^Q = X^{\top} dQ",
        r"dX = dQ\,(W^Q)^{\top} + dK\,(W^K)^{\top} + dV\,(W^V)^{\top}",
    )
    for batch, length, embed, heads in ((1, 1, 2, 1), (2, 4, 6, 3), (3, 5, 8, 2)):
        x = randn(batch, length, embed, seed=500 + embed, requires_grad=True)
        weights = [randn(embed, embed, seed=510 + i, requires_grad=True) / math.sqrt(embed) for i in range(4)]
        for weight in weights:
            weight.retain_grad()
        pieces = _mha_pieces(x, weights, heads)
        d_out = randn(*pieces["out"].shape, seed=520 + heads)
        pieces["out"].backward(d_out)
        grads = {name: pieces[name].grad for name in ("q", "k", "v", "concat")}
        assert all(grad is not None for grad in grads.values()) and x.grad is not None
        dq, dk, dv, dconcat = (grad for grad in grads.values() if grad is not None)
        flat_x = x.detach().reshape(-1, embed)
        w_q, w_k, w_v, w_o = (w.detach() for w in weights)
        for weight, grad, name in ((weights[0], dq, "Q"), (weights[1], dk, "K"), (weights[2], dv, "V")):
            assert weight.grad is not None
            assert_close(flat_x.T @ grad.reshape(-1, embed), weight.grad, f"dW^{name}, summed over the batch")
        assert weights[3].grad is not None
        concat = pieces["concat"].detach().reshape(-1, embed)
        assert_close(concat.T @ d_out.reshape(-1, embed), weights[3].grad, "dW^O = C^T dout")
        assert_close(d_out @ w_o.T, dconcat, "dC = dout W^O^T")
        assert_close(dq @ w_q.T + dk @ w_k.T + dv @ w_v.T, x.grad, f"dX as three paths, {heads} heads")


@formula_check("multi-head-worked-example")
def check_multi_head_worked_example(latex: str) -> None:
    assert_mentions(latex, r"dX =")
    x, d_out, dq, dk, dv, dx = latex_matrices(latex)
    x = x[None].requires_grad_()
    identity = [torch.eye(2, dtype=torch.float64) for _ in range(4)]
    pieces = _mha_pieces(x, identity, heads=2)
    pieces["out"].backward(d_out[None])
    for name, ours in (("q", dq), ("k", dk), ("v", dv)):
        autograd = pieces[name].grad
        assert autograd is not None
        assert torch.equal(ours, _rounded(autograd[0])), f"d{name.upper()} is {autograd[0].tolist()}"
    assert x.grad is not None
    assert torch.equal(dx, _rounded(x.grad[0])), f"dX is {x.grad[0].tolist()}"
    assert torch.equal(dx, _rounded(dq + dk + dv)), "with identity weights dX is the sum of the three paths"
