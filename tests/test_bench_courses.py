"""bench/bench_courses.py's report: a --skip-rush run replaces the gradebook figures of the Courses section
of docs/benchmarks.md and keeps the last deadline rush, its notes and the other sections."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import bench_courses
from bench.common import section_replace

RUSH = """## Courses

Measured by `.venv/bin/python bench/bench_courses.py` on this machine.

### 2026-12-01 08:02 UTC — 2 CPUs

Load average at the end of the run (1, 5, 15 min): 9.2, 11.0, 12.1.

**Deadline rush** (PostgreSQL): 300 learners each submit 3 times.

| what | p50 | p95 | n |
|---|---|---|---|
| deadline rush, submit -> verdict stored | 202051 ms | 365890 ms | 900 |

All 900 posted.

**Gradebook**: 300 learners x 30 items. Target p50 < 300 ms.

| database | page p50 | page p95 | page size | CSV p50 | CSV p95 | CSV size |
|---|---|---|---|---|---|---|
| PostgreSQL | 301 ms | 595 ms | 987 KiB | 281 ms | 378 ms | 64 KiB |
| SQLite (file) | 270 ms | 681 ms | 987 KiB | 214 ms | 267 ms | 64 KiB |

Reading these figures: the run shared 2 cores with seven other sessions.
"""

FIGURES = {
    "load": (1.25, 2.0, 3.0),
    "gradebook": {
        "PostgreSQL": {
            "page_p50": 61.2,
            "page_p95": 90.0,
            "page_kib": 987.4,
            "csv_p50": 30.0,
            "csv_p95": 41.0,
            "csv_kib": 64.0,
        }
    },
}
OPTIONS = argparse.Namespace(learners=300)


def test_a_skip_rush_run_replaces_the_gradebook_figures_and_keeps_the_rush_and_its_notes() -> None:
    block = bench_courses.render_gradebook(FIGURES, OPTIONS, alone=True)
    section = bench_courses.with_gradebook(RUSH, block)
    before, after = RUSH.split("**Gradebook**", maxsplit=1)[0], RUSH.rsplit("64 KiB |\n", maxsplit=1)[-1]
    assert section == before + block + after
    assert "202051 ms" in section and "All 900 posted." in section and "Reading these figures" in section
    assert "301 ms" not in section and "| PostgreSQL | 61 ms | 90 ms | 987 KiB | 30 ms | 41 ms | 64 KiB |" in section
    assert block.startswith("**Gradebook** (measured alone, ") and " at the end): 300 learners" in block


def test_without_a_section_or_gradebook_figures_the_block_is_added(tmp_path: Path) -> None:
    block = bench_courses.render_gradebook(FIGURES, OPTIONS, alone=True)
    assert bench_courses.with_gradebook(None, block) == f"## Courses\n\n{bench_courses.PREAMBLE}\n\n{block}"
    rush_only = RUSH.split("**Gradebook**", maxsplit=1)[0]
    assert bench_courses.with_gradebook(rush_only, block) == rush_only.rstrip("\n") + "\n\n" + block
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n" + RUSH + "\n## Test suite\n\nKept.\n")
    section_replace("## Courses", bench_courses.with_gradebook(bench_courses.current_section(doc), block), doc)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n## Courses\n") and text.endswith("\n## Test suite\n\nKept.\n")
    assert "202051 ms" in text and "| PostgreSQL | 61 ms |" in text and "301 ms" not in text


def test_a_full_run_writes_the_rush_and_the_gradebook_under_one_heading() -> None:
    report = bench_courses.render(FIGURES, OPTIONS)
    assert report.startswith(f"## Courses\n\n{bench_courses.PREAMBLE}\n\n### ")
    assert "Load average at the end of the run (1, 5, 15 min): 1.2, 2.0, 3.0.\n\n**Gradebook**: 300 learners" in report
    assert report.endswith("| PostgreSQL | 61 ms | 90 ms | 987 KiB | 30 ms | 41 ms | 64 KiB |\n")
