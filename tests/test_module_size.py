"""No Python module of the repository is over 600 lines (issue #15), tests and content included.

The one exception is the sandbox's runner, grader/sandbox/runner.py: it runs inside the jail and
must stand alone, with nothing to import from the trusted side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600
EXEMPT = frozenset({"grader/sandbox/runner.py"})
NOT_THE_PROJECT = frozenset({".git", ".venv", "node_modules"})


def python_files(root: Path) -> list[str]:
    """The .py files of the repository at `root`, as POSIX paths relative to it, sorted.

    The files git tracks there; when git is missing or `root` is no repository (an unpacked
    archive), every .py file under `root` outside .git, .venv and node_modules.
    """
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", "*.py"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        found = []
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = [name for name in subfolders if name not in NOT_THE_PROJECT]
            found += [(Path(folder) / name).relative_to(root).as_posix() for name in names if name.endswith(".py")]
        return sorted(found)
    return sorted(name for name in listed.split("\0") if name)


def line_count(path: Path) -> int:
    """The number of lines as an editor (or `wc -l`, for a file ending in a newline) counts them."""
    data = path.read_bytes()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def oversized_modules(root: Path, *, max_lines: int = MAX_LINES) -> list[tuple[str, int]]:
    """(path, lines) of every module of `python_files(root)` over `max_lines`, EXEMPT left out."""
    oversized = []
    for name in python_files(root):
        path = root / name
        if name in EXEMPT or not path.is_file():  # a tracked file deleted in the work tree is gone
            continue
        lines = line_count(path)
        if lines > max_lines:
            oversized.append((name, lines))
    return oversized


def test_no_module_is_over_600_lines_but_the_sandbox_runner() -> None:
    oversized = oversized_modules(ROOT)
    assert not oversized, f"modules over {MAX_LINES} lines (split them along their seams): " + ", ".join(
        f"{name} ({lines} lines)" for name, lines in oversized
    )


def test_the_repository_is_listed_and_the_runner_still_needs_its_exemption() -> None:
    listed = python_files(ROOT)
    assert "tests/conftest.py" in listed and "manage.py" in listed
    assert not any(part in NOT_THE_PROJECT for name in listed for part in Path(name).parts)
    assert line_count(ROOT / "grader" / "sandbox" / "runner.py") > MAX_LINES, "the runner fits now: drop EXEMPT"


def write_lines(path: Path, count: int, *, final_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(f"x_{index} = {index}" for index in range(count))
    path.write_text(text + ("\n" if final_newline else ""))


def a_tree(root: Path) -> None:
    """Modules just over, at and under the limit, the exempt runner, and big files that are not the project's."""
    write_lines(root / "app" / "services.py", 601)
    write_lines(root / "app" / "deep" / "nested" / "views.py", 900, final_newline=False)
    write_lines(root / "app" / "selectors.py", 601, final_newline=False)
    write_lines(root / "app" / "models.py", 600)
    write_lines(root / "app" / "tasks.py", 600, final_newline=False)
    write_lines(root / "manage.py", 20)
    write_lines(root / "grader" / "sandbox" / "runner.py", 2000)
    write_lines(root / "README.md", 5000)
    write_lines(root / ".venv" / "lib" / "site.py", 5000)
    write_lines(root / "node_modules" / "pkg" / "build.py", 5000)


def test_the_checker_names_every_module_over_the_limit_in_a_tree_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above tmp_path either
    a_tree(tmp_path)
    with pytest.raises((OSError, subprocess.CalledProcessError)):  # git is missing or finds no repository
        subprocess.run(["git", "ls-files"], cwd=tmp_path, capture_output=True, check=True)
    assert oversized_modules(tmp_path) == [
        ("app/deep/nested/views.py", 900),
        ("app/selectors.py", 601),
        ("app/services.py", 601),
    ]
    assert oversized_modules(tmp_path, max_lines=900) == []


def test_the_checker_reads_what_git_tracks_in_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is missing: the checker walks the folders instead (tested above)")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    a_tree(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "app/services.py", "app/models.py", "manage.py", ".venv"], cwd=tmp_path, check=True)
    # Tracked, so counted even under .venv; untracked modules are not the repository's.
    assert oversized_modules(tmp_path) == [(".venv/lib/site.py", 5000), ("app/services.py", 601)]
    (tmp_path / "app" / "services.py").unlink()
    assert oversized_modules(tmp_path) == [(".venv/lib/site.py", 5000)]
