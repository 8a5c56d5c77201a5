"""Sandbox overhead per submission, next to a bare ``python -c "import numpy"`` start, in one run.

Usage: ``.venv/bin/python bench/bench_sandbox.py [--sessions 300] [--starts 30] [--no-write]``

(a) with a warm sandbox: open a session (fork a child from the zygote, lock it down, load a trivial
    source), make one trivial call, close it (kill and reap); p50/p95 over ``--sessions``;
(b) a fresh interpreter importing NumPy (what every submission would pay without a zygote),
    p50 over ``--starts``, with one BLAS thread as the sandbox uses.
Prints the ratio (a) p50 / (b) p50 (the budget in docs/performance.md: at most 0.25) and appends the figures, the
date, the machine and the isolation level to docs/benchmarks.md under "## Sandbox overhead".
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.common import machine, percentile, section_append  # noqa: E402
from grader.sandbox import Limits, Sandbox  # noqa: E402

SECTION = "## Sandbox overhead"
TRIVIAL = "import numpy as np\n\ndef relu_backward(dout, x):\n    return dout * (x > 0)\n"


PREFACE = """Measured by `.venv/bin/python bench/bench_sandbox.py` (one run measures both sides, so the ratio holds
even when the machine is busy; absolute times move with the load average shown in each heading).

What one submission pays with a warm sandbox: a control round trip to the zygote, which forks a child;
the child's lock-down (own session, closed fds, rlimits, NO_NEW_PRIVS, the seccomp program compiled once
in the zygote and loaded with one prctl); reading, compiling and executing the source; one call over the
pipes; then kill and reap. No interpreter start and no NumPy import: those happen once per worker, in the
zygote inside bubblewrap (last row). The budget (docs/performance.md) is a p50 ratio of at most 0.25.
"""


def bench_sessions(sandbox: Sandbox, count: int) -> list[float]:
    dout, x = np.ones((4, 5)), np.linspace(-1, 1, 20).reshape(4, 5)
    limits = Limits()
    for _ in range(20):  # warm-up: page cache, allocator
        with sandbox.session(TRIVIAL, "relu_backward", limits=limits) as session:
            session.call(dout, x)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        with sandbox.session(TRIVIAL, "relu_backward", limits=limits) as session:
            session.call(dout, x)
        times.append(time.perf_counter() - start)
    return times


def bench_cold_numpy(count: int) -> list[float]:
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "import numpy"]
    subprocess.run(command, env=env, check=True)  # warm-up
    times = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    options = parser.parse_args()

    started = time.perf_counter()
    with Sandbox.start() as sandbox:
        zygote_start = time.perf_counter() - started
        sessions = bench_sessions(sandbox, options.sessions)
        isolation = sandbox.isolation
    cold = bench_cold_numpy(options.starts)

    session_p50, session_p95 = percentile(sessions, 0.5), percentile(sessions, 0.95)
    cold_p50 = statistics.median(cold)
    ratio = session_p50 / cold_p50
    verdict = "meets" if ratio <= 0.25 else "MISSES"
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {date} — {machine()}, isolation `{isolation}`",
        "",
        "| measure | runs | p50 | p95 |",
        "|---|---|---|---|",
        f"| warm sandbox: open session + one call + close | {len(sessions)} | {session_p50 * 1e3:.2f} ms "
        f"| {session_p95 * 1e3:.2f} ms |",
        f'| bare `python -c "import numpy"` (one BLAS thread) | {len(cold)} | {cold_p50 * 1e3:.1f} ms '
        f"| {percentile(cold, 0.95) * 1e3:.1f} ms |",
        f"| zygote start (bwrap + interpreter + NumPy), once per worker | 1 | {zygote_start * 1e3:.0f} ms | |",
        "",
        f"Ratio of p50s: **{ratio:.3f}** ({verdict} the target of at most 0.25).",
    ]
    text = "\n".join(lines)
    print(text)
    if not options.no_write:
        print(f"\nappended to {section_append(SECTION, PREFACE, text)}")


if __name__ == "__main__":
    main()
