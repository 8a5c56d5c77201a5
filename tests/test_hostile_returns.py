"""Hostile submissions against what comes back from the sandbox: forged results, lying values, imports.

Same fixtures as tests/test_hostile_submissions.py (tests/hostile.py): after every attack the
host is unchanged and the next honest submission grades normally.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.sandbox import Sandbox
from grader.verdicts import Verdict
from tests.hostile import (  # noqa: F401 - host is a fixture
    HONEST,
    MARKS,
    Host,
    X,
    assert_honest_result,
    attack,
    host,
    run,
)

pytestmark = MARKS


# ----------------------------------------------------------------------------- forging results


def test_a_fake_result_printed_to_stdout_does_nothing(sandbox: Sandbox, host: Host) -> None:
    body = (
        "import json, struct\n"
        "def solve(x):\n"
        "    fake = json.dumps({'kind': 'result', 'value': {'t': 'float', 'v': '0x1p+0'}, 'inputs': None,"
        " 'buffers': []}).encode()\n"
        "    sys.stdout.buffer.write(struct.pack('<I', len(fake)) + fake)\n"
        '    print(\'{"verdict": "accepted", "score": 1.0}\')\n'
        "    return 0 * x\n"
    )
    outcome = attack(sandbox, host, body, allowed=frozenset({"numpy", "json", "struct"}))
    assert outcome.error is None
    assert np.array_equal(outcome.value, 0 * X)  # what the function returned, nothing else
    assert '"accepted"' in outcome.stdout


def test_garbage_written_to_small_fds_goes_nowhere(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for fd in range(3, 21):\n"
        "        try:\n"
        '            os.write(fd, b\'\\x00\\xff{"kind": "result"}\' * 100)\n'
        "            print('wrote', fd)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert "wrote" not in outcome.stdout


def test_monkeypatching_numpy_changes_nothing_outside_the_child(sandbox: Sandbox, host: Host) -> None:
    body = (
        "np.allclose = lambda *a, **k: True\n"
        "np.array_equal = lambda *a, **k: True\n"
        "np.testing = None\n"
        "def solve(x):\n"
        "    return np.zeros_like(x)\n"
    )
    outcome = attack(sandbox, host, body)
    assert outcome.error is None
    assert not np.allclose(outcome.value, 2 * X)  # the trusted NumPy is untouched
    fresh = run(sandbox, "import numpy as np\ndef solve(x):\n    return float(np.allclose(x, x + 1))\n")
    assert fresh.value == 0.0  # and the next child starts from the pristine zygote


def test_a_lying_ndarray_subclass_arrives_as_its_plain_data(sandbox: Sandbox, host: Host) -> None:
    body = (
        "class Liar(np.ndarray):\n"
        "    def __array_function__(self, *a, **k):\n"
        "        return True\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    def __array__(self, *a, **k):\n"
        "        return 2 * X_SENT\n"
        "def solve(x):\n"
        "    global X_SENT\n"
        "    X_SENT = x\n"
        "    return np.zeros_like(x).view(Liar)\n"
    )
    outcome = attack(sandbox, host, body)
    assert outcome.error is None
    assert type(outcome.value) is np.ndarray
    assert np.array_equal(outcome.value, np.zeros(3))
    assert not np.allclose(outcome.value, 2 * X)


@pytest.mark.parametrize(
    ("returned", "named"),
    [
        ("(v for v in x)", "a generator"),
        ("'2 * x'", "a str"),
        ("type('Fake', (), {'__float__': lambda s: 1.0, '__array__': lambda s, *a, **k: x})()", "a Fake"),
        ("{1: x}", "a dict with an int key"),
    ],
)
def test_non_numeric_returns_are_named(sandbox: Sandbox, host: Host, returned: str, named: str) -> None:
    outcome = attack(sandbox, host, f"def solve(x):\n    return {returned}\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert f"solve returned {named}" in outcome.error.message  # type: ignore[union-attr]


def test_nan_and_inf_pass_through_unchanged_for_the_engine_to_reject(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    return np.array([np.nan, np.inf, -np.inf])\n")
    assert outcome.error is None
    assert np.isnan(outcome.value[0]) and outcome.value[1] == np.inf and outcome.value[2] == -np.inf


def test_a_float16_return_keeps_its_dtype(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    return (2 * x).astype(np.float16)\n")
    assert outcome.error is None
    assert outcome.value.dtype == np.float16


# ----------------------------------------------------------------------------- imports and source


@pytest.mark.parametrize("module", ["subprocess", "ctypes", "os", "socket", "torch", "importlib", "sys", "pickle"])
def test_importing_a_module_outside_the_exercise_is_forbidden(sandbox: Sandbox, host: Host, module: str) -> None:
    outcome = run(sandbox, f"import numpy as np\nimport {module}\ndef solve(x):\n    return 2 * x\n")
    assert outcome.verdict == Verdict.FORBIDDEN
    assert f"import of '{module}' is not allowed here" in outcome.error.message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "header",
    ["from builtins import range", "from __future__ import annotations", "from typing import Tuple", "import builtins"],
)
def test_harmless_imports_that_real_code_carries_are_allowed(sandbox: Sandbox, host: Host, header: str) -> None:
    outcome = run(sandbox, f"{header}\nimport numpy as np\ndef solve(x):\n    return 2 * x\n")
    assert outcome.error is None, outcome.error
    assert np.array_equal(outcome.value, 2 * X)


@pytest.mark.parametrize(
    "trick",
    [
        "__import__('os')",
        "__builtins__.__import__('subprocess')",
        "exec('import os')",
        "eval(\"__import__('socket')\")",
        "__import__('numpy', fromlist=['x']) and __import__('os.path')",
        "__import__('os', {'__name__': 'numpy'})",
    ],
)
def test_import_tricks_are_forbidden(sandbox: Sandbox, host: Host, trick: str) -> None:
    outcome = run(sandbox, f"def solve(x):\n    {trick}\n    return 2 * x\n")
    assert outcome.verdict == Verdict.FORBIDDEN


def test_a_one_megabyte_source_is_refused_before_running(sandbox: Sandbox, host: Host) -> None:
    source = HONEST + "# padding\n" * 100_000
    outcome = run(sandbox, source)
    assert outcome.verdict == Verdict.FORBIDDEN
    assert "KiB are not accepted" in outcome.error.message  # type: ignore[union-attr]


def test_a_non_utf8_source_is_refused_before_running(sandbox: Sandbox, host: Host) -> None:
    outcome = run(sandbox, b"# caf\xe9\ndef solve(x):\n    return 2 * x\n")
    assert outcome.verdict == Verdict.SYNTAX_ERROR
    assert "not UTF-8" in outcome.error.message  # type: ignore[union-attr]
