"""The whole test suite, as `make test` and CI run it.

Order: ruff (lint and format), mypy, then pytest on SQLite; then, when
GRADLAB_TEST_POSTGRES_URL (or a postgres DATABASE_URL) is set, pytest again on
PostgreSQL for every test that touches the database. Extra arguments go to pytest.
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


def main() -> None:
    extra = sys.argv[1:]
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
