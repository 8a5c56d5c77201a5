"""What every benchmark shares: percentiles, a description of the machine, and docs/benchmarks.md sections."""

from __future__ import annotations

import os
from pathlib import Path

from gradlab import stats

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"


def percentile(values: list[float], q: float) -> float:
    """The percentile `q` (0..1) of benchmark samples, which are never empty (gradlab/stats.py's definition)."""
    value = stats.percentile(values, q)
    if value is None:
        raise ValueError("no samples to take a percentile of")
    return value


def machine() -> str:
    """CPU count and model, and the load average: figures move with what else the machine is doing."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "?"
    return f"{os.cpu_count()} CPUs (nproc), {model}, load average {load}"


def section_bounds(content: str, heading: str) -> tuple[int, int] | None:
    """(start, end) of the `## heading` section in `content`, or None when it is absent."""
    start = content.find(heading + "\n")
    if start == -1:
        return None
    following = content.find("\n## ", start + len(heading))
    return start, len(content) if following == -1 else following + 1


def section_replace(heading: str, block: str, path: Path = BENCHMARKS_MD) -> Path:
    """Replace the `heading` section of docs/benchmarks.md with `block` (which starts with the heading).

    Other sections are kept as they are; a missing section is appended.
    """
    content = path.read_text() if path.exists() else "# Benchmarks\n"
    bounds = section_bounds(content, heading)
    if bounds is None:
        content = content.rstrip("\n") + "\n\n" + block.rstrip("\n") + "\n"
    else:
        start, end = bounds
        rest = content[end:]
        content = content[:start] + block.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    path.write_text(content.rstrip("\n") + "\n")
    return path


def section_append(heading: str, preface: str, text: str, path: Path = BENCHMARKS_MD) -> Path:
    """Add `text` at the end of the `heading` section (created with `preface` when missing)."""
    content = path.read_text() if path.exists() else "# Benchmarks\n"
    bounds = section_bounds(content, heading)
    if bounds is None:
        existing = f"{heading}\n\n{preface.rstrip()}\n"
    else:
        existing = content[bounds[0] : bounds[1]]
    return section_replace(heading, existing.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n", path)
