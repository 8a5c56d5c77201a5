"""The sandbox from a venv of Debian's /usr/bin/python3, run by an unprivileged user: full isolation.

Debian's interpreter keeps its standard library under /usr/lib/python3.X with no site-packages
folder there, which once made bubblewrap fail ("Can't mkdir ...: Read-only file system") and the
grader fall back to weaker isolation. This test builds such a venv (NumPy and pyseccomp from PyPI,
kept between runs), copies the sandbox package where any user can read it, and runs it as
``nobody`` (or as the current user when that is not root): the level must be namespaces+seccomp,
and a writer's leftovers must be invisible to the next child.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from grader.sandbox.limits import BWRAP
from tests.conftest import unavailable

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_PYTHON = Path("/usr/bin/python3")
PYSECCOMP = "pyseccomp==0.1.2"

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from grader.sandbox import Sandbox

WRITER = '''
_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]
os = _wrap.__init__.__globals__['sys'].modules['os']
ctypes = _wrap.__init__.__globals__['sys'].modules['ctypes']
def f(x):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget(0x4711, 4096, 0o1666)
    open('/tmp/left', 'w').write('x')
    open('/dev/shm/left', 'w').write('x')
    info = ctypes.create_string_buffer(512)
    libc.shmctl(0, 14, info)
    try:
        open('/proc/self/mountinfo').read()
        proc = True
    except OSError:
        proc = False
    return [len(os.listdir('/tmp')), len(os.listdir('/dev/shm')), ctypes.c_int.from_buffer(info).value, proc, x * 2]
'''
with Sandbox.start("namespaces+seccomp") as box:
    seen = []
    for _ in range(2):
        with box.session(WRITER, "f") as session:
            seen.append(session.call(21))
    print(json.dumps({"isolation": str(box.isolation), "details": box.details, "seen": seen}))
"""


def _debian_venv() -> Path:
    """A venv of Debian's python3 with this NumPy and pyseccomp, built once and kept (world-readable)."""
    if not DEBIAN_PYTHON.exists() or not os.access(BWRAP, os.X_OK):
        unavailable(f"{DEBIAN_PYTHON} or {BWRAP} is missing", required_by="GRADLAB_REQUIRE_SANDBOX")
    if subprocess.run([DEBIAN_PYTHON, "-c", "import ensurepip"], capture_output=True).returncode != 0:
        unavailable(
            "python3-venv is not installed (scripts/install-system-deps.sh)", required_by="GRADLAB_REQUIRE_SANDBOX"
        )
    venv = Path(tempfile.gettempdir()) / f"gradlab-debian-venv-{np.__version__}-{os.getuid()}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([DEBIAN_PYTHON, "-m", "venv", venv], check=True, capture_output=True)
        install = [python, "-m", "pip", "install", "--quiet", f"numpy=={np.__version__}", PYSECCOMP]
        result = subprocess.run(install, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"could not install NumPy into the Debian venv: {result.stderr[-2000:]}")
        (venv / ".complete").write_text("ok\n")
    for folder, _, files in os.walk(venv):
        os.chmod(folder, 0o755)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | 0o444)
    return python


def test_a_debian_python_venv_run_by_an_unprivileged_user_reaches_full_isolation() -> None:
    python = _debian_venv()
    tree = Path(tempfile.mkdtemp(prefix="gradlab-sandbox-code-"))  # pytest's own folders are private
    try:
        _run_from(python, tree)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _run_from(python: Path, tree: Path) -> None:
    (tree / "grader" / "sandbox").mkdir(parents=True)
    for name in ("__init__.py", "verdicts.py"):
        shutil.copy(ROOT / "grader" / name, tree / "grader" / name)
    for path in (ROOT / "grader" / "sandbox").glob("*.py"):
        shutil.copy(path, tree / "grader" / "sandbox" / path.name)
    (tree / "probe.py").write_text(SCRIPT)
    for folder in (tree, tree / "grader", tree / "grader" / "sandbox"):
        os.chmod(folder, 0o755)
    for path in tree.rglob("*.py"):
        os.chmod(path, 0o644)
    command = [str(python), str(tree / "probe.py"), str(tree)]
    if os.getuid() == 0:
        command = ["runuser", "-u", "nobody", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, cwd="/", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["isolation"] == "namespaces+seccomp", report
    assert report["details"]["seccomp"] and report["details"]["ipc_limits"], report
    first, second = report["seen"]
    assert first == [1, 1, 1, False, 42]  # the writer's own state existed while it ran
    assert second == first  # the next child found none of it: it saw only what it made itself
