"""The sandbox before and after a change, measured in ONE run so that the machine's load is shared.

Usage: ``.venv/bin/python bench/bench_before_after.py [--baseline REV] [--rounds 3] [--no-write]``

The baseline revision's tree is exported (``git archive``) to a temporary folder; then rounds
alternate between the baseline and this working tree, each round a fresh process measuring:

- a sandbox session: open (fork from the warm zygote, private world, load a trivial source), one
  call, close: what the pristine world costs per submission is the difference of the two p50s;
- one call in an open session (linear-backward's shapes): what each of the training run's calls costs;
- a whole linear-backward grade of the reference solution with a warm engine (``Engine.grade``);

and, between rounds, a bare ``python -c "import numpy"`` (one BLAS thread). The ratios to that start
are the figures to compare across runs; absolute times move with the load average, which is printed.
Replaces the "## Sandbox before and after" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Sandbox before and after"
BASELINE = "97b3bf7"  # main as landed before the sandbox work of issue 9
TRIVIAL = "import numpy as np\n\ndef relu_backward(dout, x):\n    return dout * (x > 0)\n"
LINEAR = (
    "import numpy as np\n\ndef linear_backward(dout, x, w, b):\n    return dout @ w.T, x.T @ dout, dout.sum(axis=0)\n"
)


def measure(sessions: int, calls: int, grades: int) -> dict[str, Any]:
    """Run inside the tree being measured (its grader package first on sys.path)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradlab.settings")
    import django

    django.setup()
    import numpy as np
    import torch

    from grader.engine import Engine
    from grader.sandbox import Limits, Sandbox
    from grader.spec import ExerciseSpec

    torch.set_num_threads(1)
    limits = Limits()
    out: dict[str, Any] = {}
    with Sandbox.start() as sandbox:
        out["isolation"] = str(sandbox.isolation)
        dout, x = np.ones((4, 5)), np.linspace(-1, 1, 20).reshape(4, 5)
        times = []
        for index in range(sessions + 10):
            start = time.perf_counter()
            with sandbox.session(TRIVIAL, "relu_backward", limits=limits) as session:
                session.call(dout, x)
            if index >= 10:
                times.append(time.perf_counter() - start)
        out["session_s"] = times
        rng = np.random.default_rng(0)
        args = (rng.standard_normal((8, 5)), rng.standard_normal((8, 3)), rng.standard_normal((3, 5)), np.zeros(5))
        times = []
        with sandbox.session(LINEAR, "linear_backward", limits=limits) as session:
            for index in range(calls + 20):
                start = time.perf_counter()
                session.call(*args)
                if index >= 20:
                    times.append(time.perf_counter() - start)
        out["call_s"] = times
    engine = Engine.get()
    folder = Path("content/exercises/linear-backward")
    spec = ExerciseSpec.from_folder(folder)
    source = (folder / "solution.py").read_text()
    times, training = [], []
    for index in range(grades + 5):
        start = time.perf_counter()
        result = engine.grade(spec, source)
        if index >= 5:
            times.append(time.perf_counter() - start)
            training.append(float(result.timings.get("training_s", 0.0)))
        assert str(result.verdict) == "accepted", result
    out["grade_s"], out["training_s"] = times, training
    engine.close()
    return out


def numpy_start(count: int) -> list[float]:
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "import numpy"]
    times = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True)
        times.append(time.perf_counter() - start)
    return times


def export(revision: str, into: Path) -> Path:
    data = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    return into


def run_tree(tree: Path, options: argparse.Namespace, var_dir: Path) -> dict[str, Any]:
    env = dict(os.environ, GRADLAB_ENV="development", GRADLAB_VAR_DIR=str(var_dir), PYTHONPATH=str(tree))
    command = [
        sys.executable,
        str(ROOT / "bench" / "bench_before_after.py"),
        "--measure",
        f"{options.sessions},{options.calls},{options.grades}",
    ]
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"measuring {tree} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.splitlines()[-1]))


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--grades", type=int, default=30)
    parser.add_argument("--starts", type=int, default=5, help="bare NumPy starts between rounds")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    options = parser.parse_args()
    if options.measure:
        sys.path.insert(0, os.getcwd())
        sessions, calls, grades = (int(part) for part in options.measure.split(","))
        print(json.dumps(measure(sessions, calls, grades)))
        return

    sys.path.insert(0, str(ROOT))
    from bench.common import machine, percentile, section_replace

    with tempfile.TemporaryDirectory(prefix="gradlab-bench-") as scratch:
        baseline = export(options.baseline, Path(scratch) / "baseline")
        var_dir = Path(scratch) / "var"
        var_dir.mkdir()
        trees = {"before": baseline, "after": ROOT}
        runs: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        isolation: dict[str, str] = {}
        starts: list[float] = numpy_start(1)  # warm the page cache
        starts = []
        for _ in range(options.rounds):
            for name, tree in trees.items():
                measured = run_tree(tree, options, var_dir)
                isolation[name] = measured.pop("isolation")
                for key, values in measured.items():
                    runs[name].setdefault(key, []).extend(values)
                starts += numpy_start(options.starts)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    numpy_p50 = median(starts)

    def row(label: str, key: str, scale: float = 1e3, unit: str = "ms") -> str:
        before, after = median(runs["before"][key]), median(runs["after"][key])
        p95 = percentile(runs["after"][key], 0.95)
        return (
            f"| {label} | {before * scale:.2f} {unit} | {after * scale:.2f} {unit} | {p95 * scale:.2f} {unit} "
            f"| {after / before:.2f}x |"
        )

    grade_ratio = {name: median(runs[name]["grade_s"]) / numpy_p50 for name in trees}
    pristine = median(runs["after"]["session_s"]) - median(runs["before"]["session_s"])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {date} — {machine()}",
        "",
        f"Baseline `{options.baseline}` (isolation `{isolation['before']}`) against this tree (isolation "
        f"`{isolation['after']}`), {options.rounds} alternating rounds each; load average at the end: {load} "
        "(the machine is shared, so compare the ratios, which come from one run).",
        "",
        "| measure (p50) | before | after | after p95 | after / before |",
        "|---|---|---|---|---|",
        row("sandbox session: open + one call + close", "session_s"),
        row("one call in an open session (linear-backward shapes)", "call_s"),
        row("whole linear-backward grade (reference, warm engine)", "grade_s"),
        row("- of which the training run (50 calls of the learner's backward)", "training_s"),
        f'| bare `python -c "import numpy"` (one BLAS thread), between rounds | {numpy_p50 * 1e3:.1f} ms '
        f"| (same) | | |",
        "",
        f"Pristine world per submission (after - before, session p50): **{pristine * 1e3:+.2f} ms** (budget 3 ms).",
        "",
        f"Whole grade / bare NumPy start: before **{grade_ratio['before']:.2f}**, after "
        f"**{grade_ratio['after']:.2f}** (target at most 0.35).",
    ]
    text = "\n".join(lines)
    print(text)
    if not options.no_write:
        block = f"{SECTION}\n\nMeasured by `.venv/bin/python bench/bench_before_after.py`.\n\n{text}"
        print(f"\nwritten to {section_replace(SECTION, block)}")


if __name__ == "__main__":
    main()
