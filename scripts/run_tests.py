"""The whole test suite, as `make test` and CI run it.

Order: ruff (lint and format), mypy, then pytest on SQLite; then, when
GRADLAB_TEST_POSTGRES_URL (or a postgres DATABASE_URL) is set, pytest again on
PostgreSQL for every test that touches the database, except the heavy database-agnostic ones
(browser tests and those marked `once`; see tests/conftest.py). Extra arguments go to pytest.

Each pytest pass runs on GRADLAB_TEST_WORKERS processes (pytest-xdist; default 2, the cores
of the reference machine; 0 or 1 runs in one process). Every test is xdist-safe: live
servers and Redis take free ports, temporary files live under each test's tmp_path, and
pytest-django gives each worker its own test database (gw0, gw1 suffixes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(step: str, command: list[str], env: dict[str, str] | None = None) -> None:
    print(f"\n=== {step}: {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env)
    if result.returncode != 0:
        print(f"=== {step} failed (exit {result.returncode})", flush=True)
        sys.exit(result.returncode)


def worker_args(extra: list[str]) -> list[str]:
    """`-n N` for pytest-xdist, unless the caller chose (`-n`, `-p no:xdist`) or asked for one process."""
    if any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) or arg == "no:xdist" for arg in extra):
        return []
    workers = os.environ.get("GRADLAB_TEST_WORKERS", "2")
    if not workers.isdigit():
        sys.exit(f"GRADLAB_TEST_WORKERS must be a whole number, not {workers!r}")
    return ["-n", workers] if int(workers) > 1 else []


def main() -> None:
    extra = sys.argv[1:]
    extra = [*worker_args(extra), *extra]
    run("ruff check", [str(BIN / "ruff"), "check", "."])
    run("ruff format", [str(BIN / "ruff"), "format", "--check", "."])
    run("mypy", [str(BIN / "mypy")])

    base_env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    base_env.setdefault("GRADLAB_ENV", "development")
    # `make test` has installed Chromium and bubblewrap: a missing one fails the suite instead of skipping.
    base_env.setdefault("GRADLAB_REQUIRE_BROWSER", "1")
    base_env.setdefault("GRADLAB_REQUIRE_SANDBOX", "1")
    run("pytest (SQLite)", [str(BIN / "pytest"), *extra], env=base_env)

    postgres = os.environ.get("GRADLAB_TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if postgres.startswith(("postgres://", "postgresql://")):
        env = dict(base_env, DATABASE_URL=postgres, GRADLAB_DB_BACKEND="postgres")
        run("pytest (PostgreSQL, database tests)", [str(BIN / "pytest"), *extra], env=env)
    else:
        print("\n=== PostgreSQL pass skipped: set GRADLAB_TEST_POSTGRES_URL=postgres://... to run it", flush=True)


if __name__ == "__main__":
    main()
