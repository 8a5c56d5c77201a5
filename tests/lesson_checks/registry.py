"""The registry of formula checks and the helpers every check uses."""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

FormulaCheck = Callable[[str], None]
CHECKS: dict[str, FormulaCheck] = {}


def formula_check(name: str) -> Callable[[FormulaCheck], FormulaCheck]:
    """Register a check under the NAME used in `<!-- check: NAME -->`."""

    def register(function: FormulaCheck) -> FormulaCheck:
        assert name not in CHECKS, f"two checks are named {name}"
        CHECKS[name] = function
        return function

    return register


def assert_mentions(latex: str, *fragments: str) -> None:
    """Assert the formula contains each fragment, ignoring whitespace, so a check cannot drift from its formula."""
    squashed = re.sub(r"\s+", "", latex)
    for fragment in fragments:
        assert re.sub(r"\s+", "", fragment) in squashed, f"the formula no longer contains {fragment!r}: {latex}"


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str, *, rtol: float = 1e-10) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert torch.allclose(actual, expected, rtol=rtol, atol=1e-12), (
        f"{what}: largest difference {(actual - expected).abs().max().item():.3e}"
    )


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int, requires_grad: bool = False) -> torch.Tensor:
    tensor = torch.randn(*shape, generator=generator(seed), dtype=torch.float64)
    return tensor.requires_grad_(requires_grad)


def latex_matrices(latex: str) -> list[torch.Tensor]:
    """The bmatrix environments of a formula, in order, as float64 tensors (worked examples are read, not retyped)."""
    found = []
    for body in re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", latex, re.DOTALL):
        rows = [row for row in body.split(r"\\") if row.strip()]
        found.append(torch.tensor([[float(cell) for cell in row.split("&")] for row in rows], dtype=torch.float64))
    return found
