"""Whole-grade latency of linear-backward with a warm engine, and the cost of the gradient check.

Usage: ``.venv/bin/python bench/bench_grading.py [--gradings 100] [--no-write]``

(a) `Engine.grade` of linear-backward's reference solution (every check and the 25-step
    training run), fresh seed each time, after a warm-up: p50/p95 over ``--gradings``
    (the budget in docs/performance.md: p50 at most 150 ms on a 2-core machine), with the p50 of each
    phase the engine reports (sandbox_s, checks_s, training_s);
(b) the same for a wrong answer (a transposed dw), which adds the diagnosis;
(c) the numerical gradient check of grader/gradcheck.py on one linear-backward case
    (6 sampled entries per array, and every entry) next to `torch.autograd.gradcheck`
    on the same forward and inputs (every entry, float64, its default tolerances).
Replaces the "## Grading" section of docs/benchmarks.md with the figures, the date and the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradlab.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import machine, percentile, section_replace  # noqa: E402
from grader.engine import Engine  # noqa: E402
from grader.gradcheck import check_numerically  # noqa: E402
from grader.kinds import get_kind  # noqa: E402
from grader.spec import ExerciseSpec  # noqa: E402

SECTION = "## Grading"
FOLDER = ROOT / "content" / "exercises" / "linear-backward"


def bench_gradings(engine: Engine, spec: ExerciseSpec, source: str, count: int) -> tuple[list[float], dict[str, float]]:
    for _ in range(10):  # warm-up: allocator, torch dispatch caches
        engine.grade(spec, source)
    totals: list[float] = []
    phases: dict[str, list[float]] = {"sandbox_s": [], "checks_s": [], "training_s": []}
    for _ in range(count):
        start = time.perf_counter()
        result = engine.grade(spec, source)
        totals.append(time.perf_counter() - start)
        for key, values in phases.items():
            values.append(result.timings[key])
    return totals, {key: statistics.median(values) for key, values in phases.items()}


def timed(function: Callable[[], object], repeat: int) -> float:
    """Median seconds per call of `function` over `repeat` calls (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_gradient_checks(repeat: int) -> dict[str, float]:
    kind = get_kind("linear-backward")
    case = kind.make_cases(np.random.default_rng(0))[0]
    expected = kind.reference(case)
    inputs = {name: case.args[name] for name in kind.differentiable}
    names = {output.name: output.of for output in kind.outputs if output.of is not None}
    rng = np.random.default_rng(1)
    function = kind.numeric_function(case)
    biggest = max(np.size(case.args[name]) for name in kind.differentiable)

    def ours(samples: int) -> Callable[[], object]:
        return lambda: check_numerically(function, inputs, expected, expected, names, rng=rng, samples=samples)

    tensors = tuple(torch.tensor(case.args[name], dtype=torch.float64, requires_grad=True) for name in ("x", "w", "b"))

    def forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return x @ w + b

    def torch_check() -> object:
        return torch.autograd.gradcheck(forward, tensors)

    return {
        "ours_sampled_s": timed(ours(6), repeat),
        "ours_all_s": timed(ours(biggest), repeat),
        "torch_gradcheck_s": timed(torch_check, repeat),
        "entries": float(sum(np.size(case.args[name]) for name in kind.differentiable)),
        "outputs": float(np.size(case.args["dout"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--gradings", type=int, default=100)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    options = parser.parse_args()

    torch.set_num_threads(1)
    started = time.perf_counter()
    engine = Engine.get()
    start_s = time.perf_counter() - started
    spec = ExerciseSpec.from_folder(FOLDER)
    solution = (FOLDER / "solution.py").read_text()
    wrong = (FOLDER / "wrong" / "dw_transposed.py").read_text()
    wrong_mean = (FOLDER / "wrong" / "db_mean.py").read_text()

    totals, phases = bench_gradings(engine, spec, solution, options.gradings)
    wrong_totals, _ = bench_gradings(engine, spec, wrong, max(20, options.gradings // 5))
    mean_totals, _ = bench_gradings(engine, spec, wrong_mean, max(20, options.gradings // 5))
    checks = bench_gradient_checks(repeat=50)
    p50, p95 = percentile(totals, 0.5), percentile(totals, 0.95)
    target = 0.150
    verdict = "meets" if p50 <= target else f"misses by {(p50 - target) * 1000:.0f} ms"

    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [
        f"### {date} — {machine()}, isolation `{engine.isolation}`",
        "",
        f"Load average at the end of the run (1, 5, 15 min): {load}; other processes share these 2 cores.",
        "",
        f"Engine start (sandbox zygote + PyTorch warm-up), once per worker process: {start_s * 1000:.0f} ms.",
        "",
        "| what | p50 | p95 | n |",
        "|---|---|---|---|",
        f"| whole grade, linear-backward reference (accepted; 9 checks incl. 25-step training run) "
        f"| {p50 * 1000:.1f} ms | {p95 * 1000:.1f} ms | {len(totals)} |",
        f"| - sandbox session start (fork from zygote, load code) | {phases['sandbox_s'] * 1000:.1f} ms | | |",
        f"| - checks (cases, autograd reference, numerical check) | {phases['checks_s'] * 1000:.1f} ms | | |",
        f"| - training run (2 x 25 SGD steps, 50 sandbox calls) | {phases['training_s'] * 1000:.1f} ms | | |",
        f"| whole grade, db averaged (wrong answer, training runs, diagnosis) "
        f"| {percentile(mean_totals, 0.5) * 1000:.1f} ms | {percentile(mean_totals, 0.95) * 1000:.1f} ms "
        f"| {len(mean_totals)} |",
        f"| whole grade, dw transposed (wrong shape: training skipped, diagnosis) "
        f"| {percentile(wrong_totals, 0.5) * 1000:.1f} ms | {percentile(wrong_totals, 0.95) * 1000:.1f} ms "
        f"| {len(wrong_totals)} |",
        "",
        f"Target p50 <= 150 ms: **{verdict}** ({p50 * 1000:.1f} ms).",
        "",
        f"Gradient check on one linear-backward case (N=4, D=3, M=5: {checks['entries']:.0f} input entries, "
        f"{checks['outputs']:.0f} outputs), median of 50:",
        "",
        "| check | time |",
        "|---|---|",
        f"| grader/gradcheck.py, 6 sampled entries per array (what a grading runs) | "
        f"{checks['ours_sampled_s'] * 1000:.2f} ms |",
        f"| grader/gradcheck.py, every entry | {checks['ours_all_s'] * 1000:.2f} ms |",
        f"| `torch.autograd.gradcheck` (every entry, full Jacobian) | {checks['torch_gradcheck_s'] * 1000:.2f} ms |",
        "",
        "Both use central differences in float64 (h = 1e-6). `torch.autograd.gradcheck` builds the whole numerical "
        "and analytical Jacobians (one column per input entry and one backward per output entry); the grader's "
        "check evaluates the scalar sum(forward * dout) twice per sampled entry and compares with the learner's "
        "gradient, while the autograd check covers every entry exactly.",
    ]
    text = "\n".join(lines)
    print(text)
    if not options.no_write:
        block = f"{SECTION}\n\nMeasured by `.venv/bin/python bench/bench_grading.py`.\n\n{text}"
        print(f"\nwritten to {section_replace(SECTION, block)}")
    engine.close()


if __name__ == "__main__":
    main()
