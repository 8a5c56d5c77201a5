"""The sandbox API: values cross bit-exact, load errors and learner exceptions become verdicts, limits hold.

These run learner code in the real sandbox (bubblewrap + seccomp when installed). The hostile
submissions live in test_hostile_submissions.py.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.sandbox import IsolationTooLow, Limits, Sandbox, SandboxError, SandboxUnavailable, wire
from grader.sandbox.core import BWRAP
from grader.verdicts import Isolation, Verdict
from tests.conftest import unavailable

pytestmark = pytest.mark.sandbox

FAST = Limits(cpu_time_s=1, wall_time_s=4, call_wall_time_s=2, memory_mib=256)
HAS_BWRAP = os.access(BWRAP, os.X_OK)


def run(sandbox: Sandbox, source: str, *args: object, name: str = "f", limits: Limits = FAST) -> Any:
    with sandbox.session(source, name, allowed_imports={"numpy", "math"}, limits=limits) as session:
        return session.call(*args)


def failure(sandbox: Sandbox, source: str, *args: object, name: str = "f", limits: Limits = FAST) -> SandboxError:
    with pytest.raises(SandboxError) as caught:
        run(sandbox, source, *args, name=name, limits=limits)
    return caught.value


IDENTITY = "def f(*args):\n    return args\n"


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "array",
    [
        np.random.default_rng(1).standard_normal((3, 4)),
        np.random.default_rng(2).standard_normal((4, 6))[:, ::2],  # not contiguous
        np.random.default_rng(3).standard_normal((5, 3)).T,  # Fortran order
        np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32),
        np.array([1.5, -0.0, 65504], dtype=np.float16),
        np.array(3.25),  # 0-d
        np.zeros((0, 3)),
        np.arange(12, dtype=np.int64).reshape(3, 4),
        np.array([True, False]),
        np.array([np.nan, np.inf, -np.inf, 5e-324]),
    ],
    ids=["float64", "non-contiguous", "fortran", "float32", "float16", "0-d", "empty", "int64", "bool", "nan-inf"],
)
def test_arrays_round_trip_bit_exact(sandbox: Sandbox, array: np.ndarray) -> None:
    (back,) = run(sandbox, IDENTITY, array)
    assert type(back) is np.ndarray
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == np.ascontiguousarray(array).tobytes()
    assert back.flags.c_contiguous and back.flags.writeable


def test_numbers_none_and_containers_round_trip(sandbox: Sandbox) -> None:
    value = (1.0 / 3.0, -(2**70), True, None, [1, 2.5], {"fc1.weight": np.eye(2), "n": 3})
    back = run(sandbox, IDENTITY, *value)
    assert back[:4] == value[:4]
    assert back[4] == [1, 2.5]
    assert back[5]["n"] == 3 and np.array_equal(back[5]["fc1.weight"], np.eye(2))


def test_a_tuple_and_a_dict_come_back_as_returned(sandbox: Sandbox) -> None:
    source = "import numpy as np\ndef f(x):\n    return float(np.sum(x)), {'dx': 2 * x, 'db': x.sum(axis=0)}\n"
    loss, grads = run(sandbox, source, np.ones((2, 3)))
    assert loss == 6.0
    assert set(grads) == {"dx", "db"}
    assert np.array_equal(grads["db"], [2.0, 2.0, 2.0])


def test_numpy_scalars_keep_their_dtype(sandbox: Sandbox) -> None:
    source = "import numpy as np\ndef f():\n    return np.float64(0.5), np.float32(0.25), np.int64(7)\n"
    result = run(sandbox, source)
    assert [type(v) for v in result] == [np.float64, np.float32, np.int64]


def test_the_child_stays_alive_across_many_calls(sandbox: Sandbox) -> None:
    source = "count = 0\ndef f(x):\n    global count\n    count += 1\n    return count\n"
    with sandbox.session(source, "f", limits=FAST) as session:
        assert [session.call(np.zeros(2)) for _ in range(60)] == list(range(1, 61))


def test_call_with_inputs_shows_an_in_place_modification(sandbox: Sandbox) -> None:
    source = "def f(x):\n    x *= 2\n    return x.sum()\n"
    sent = np.ones(3)
    with sandbox.session(source, "f", limits=FAST) as session:
        result, (after,) = session.call_with_inputs(sent)
    assert result == 6.0
    assert np.array_equal(after, [2.0, 2.0, 2.0])
    assert np.array_equal(sent, [1.0, 1.0, 1.0])  # the trusted copy never changes


# ----------------------------------------------------------------------------- load errors


def test_a_syntax_error_reports_its_line(sandbox: Sandbox) -> None:
    error = failure(sandbox, "import numpy as np\n\ndef f(x:\n    return x\n")
    assert error.verdict == Verdict.SYNTAX_ERROR
    assert error.line == 3
    assert "line 3" in error.message


def test_a_missing_function_is_named(sandbox: Sandbox) -> None:
    error = failure(sandbox, "def g(x):\n    return x\n", name="relu_backward")
    assert error.verdict == Verdict.RUNTIME_ERROR
    assert "relu_backward" in error.message


def test_a_name_bound_to_something_else_is_not_a_function(sandbox: Sandbox) -> None:
    error = failure(sandbox, "f = 3\n")
    assert error.verdict == Verdict.RUNTIME_ERROR
    assert "not a function" in error.message


def test_a_wrong_arity_is_reported_with_the_expected_arguments(sandbox: Sandbox) -> None:
    with (
        pytest.raises(SandboxError) as caught,
        sandbox.session(
            "def linear_backward(dout, x, w):\n    return 0\n", "linear_backward", arg_names=("dout", "x", "w", "b")
        ),
    ):
        pass
    assert caught.value.verdict == Verdict.RUNTIME_ERROR
    assert "4 arguments (dout, x, w, b)" in caught.value.message


def test_an_exception_reports_its_type_message_and_line(sandbox: Sandbox) -> None:
    source = "import numpy as np\n\ndef f(x):\n    y = x + 1\n    return y / 0 if False else 1 // 0\n"
    error = failure(sandbox, source, np.zeros(2))
    assert error.verdict == Verdict.RUNTIME_ERROR
    assert error.message == "ZeroDivisionError: integer division or modulo by zero (line 5)"
    assert error.line == 5


def test_an_exception_while_loading_reports_its_line(sandbox: Sandbox) -> None:
    error = failure(sandbox, "x = 1\nraise ValueError('bad module')\ndef f():\n    return 1\n")
    assert (error.verdict, error.line) == (Verdict.RUNTIME_ERROR, 2)
    assert "ValueError: bad module" in error.message


def test_a_forbidden_import_says_which_and_why(sandbox: Sandbox) -> None:
    error = failure(sandbox, "import numpy as np\nimport torch\ndef f():\n    return 1\n")
    assert error.verdict == Verdict.FORBIDDEN
    assert "import of 'torch' is not allowed here: this exercise is NumPy only" in error.message
    assert error.line == 2


def test_allowed_imports_are_per_session(sandbox: Sandbox) -> None:
    source = "import itertools\ndef f():\n    return len(list(itertools.permutations(range(3))))\n"
    with sandbox.session(source, "f", allowed_imports={"numpy", "itertools"}, limits=FAST) as session:
        assert session.call() == 6
    assert failure(sandbox, source).verdict == Verdict.FORBIDDEN


def test_a_non_numeric_return_is_named(sandbox: Sandbox) -> None:
    error = failure(sandbox, "def f():\n    return 'dx'\n")
    assert error.verdict == Verdict.RUNTIME_ERROR
    assert "f returned a str" in error.message


# ----------------------------------------------------------------------------- output and limits


def test_stdout_and_stderr_are_captured_separately(sandbox: Sandbox) -> None:
    source = "import numpy as np\nprint('loading')\ndef f(x):\n    print('shape', x.shape)\n    return x\n"
    with sandbox.session(source, "f", limits=FAST) as session:
        session.call(np.zeros((2, 3)))
        assert session.stdout == "loading\nshape (2, 3)\n"
        assert session.stderr == ""


def test_output_in_a_failing_call_travels_with_the_error(sandbox: Sandbox) -> None:
    error = failure(sandbox, "def f():\n    print('before the crash')\n    return 1 / 0\n")
    assert error.stdout == "before the crash\n"


def test_too_much_output_is_output_limit_exceeded(sandbox: Sandbox) -> None:
    limits = Limits(cpu_time_s=1, wall_time_s=4, call_wall_time_s=2, output_bytes=1000)
    error = failure(sandbox, "def f():\n    print('x' * 2000)\n    return 1\n", limits=limits)
    assert error.verdict == Verdict.OUTPUT_LIMIT_EXCEEDED
    assert len(error.stdout) <= 1000


def test_a_busy_loop_is_time_limit_exceeded(sandbox: Sandbox) -> None:
    error = failure(sandbox, "def f():\n    while True:\n        pass\n")
    assert error.verdict == Verdict.TIME_LIMIT_EXCEEDED


def test_a_large_allocation_is_memory_limit_exceeded(sandbox: Sandbox) -> None:
    error = failure(sandbox, "import numpy as np\ndef f():\n    return np.ones(10**9)\n")
    assert error.verdict == Verdict.MEMORY_LIMIT_EXCEEDED
    assert error.line == 3


def test_a_source_over_the_size_limit_is_refused_before_running(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError) as caught:
        sandbox.session("x = 1\n" * 2000, "f", limits=Limits(source_bytes=1024)).__enter__()
    assert caught.value.verdict == Verdict.FORBIDDEN
    assert "over 1 KiB" in caught.value.message


def test_limits_from_settings_read_the_source_cap() -> None:
    from django.conf import settings

    assert Limits.from_settings(cpu_time_s=3).source_bytes == settings.GRADER_MAX_SOURCE_BYTES
    with pytest.raises(TypeError):
        Limits.from_settings(cpu_seconds=3)


# ----------------------------------------------------------------------------- isolation


def test_isolation_is_measured_and_reported(sandbox: Sandbox) -> None:
    expected = Isolation.NAMESPACES_SECCOMP if HAS_BWRAP else Isolation.PROCESS
    assert sandbox.isolation == expected


def test_a_sandbox_started_from_a_short_lived_thread_outlives_it() -> None:
    started: list[Sandbox] = []
    thread = threading.Thread(target=lambda: started.append(Sandbox.start()))
    thread.start()
    thread.join()
    with started[0] as box:
        assert box.is_alive()
        assert run(box, "def f(x):\n    return x * 3\n", 2) == 6


def test_future_imports_are_always_allowed_and_numpy_escape_hatches_never(sandbox: Sandbox) -> None:
    assert run(sandbox, "from __future__ import annotations\ndef f(x: int) -> int:\n    return x\n", 5) == 5
    for line in ("import numpy.ctypeslib", "from numpy import f2py", "from numpy.testing import assert_equal"):
        error = failure(sandbox, f"{line}\ndef f():\n    return 1\n")
        assert error.verdict == Verdict.FORBIDDEN, line


def test_the_default_allowed_imports_are_numpy_and_the_math_modules(sandbox: Sandbox) -> None:
    source = (
        "import math, cmath, functools, itertools, operator, typing, dataclasses, collections, numbers, abc, enum\n"
    )
    with sandbox.session(source + "def f():\n    return math.pi\n", "f", limits=FAST) as session:
        assert session.call() == math.pi


def test_a_sandbox_that_dies_mid_session_is_unavailable_not_the_learners_fault() -> None:
    box = Sandbox.start()
    try:
        with box.session("def f(x):\n    return x\n", "f", limits=FAST) as session:
            assert session.call(1) == 1
            # Kill the zygote (the PID namespace's init): the kernel kills the child with it, and
            # bwrap exits once they are gone.
            zygote = box.pid
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    with contextlib.suppress(OSError):
                        if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == box.pid:
                            zygote = int(entry)
            assert zygote != box.pid or not HAS_BWRAP
            os.kill(zygote, signal.SIGKILL)
            box._process.wait()
            with pytest.raises(SandboxUnavailable):
                session.call(2)
        assert not box.is_alive()
    finally:
        box.close()


def test_the_sandbox_refuses_to_start_below_the_minimum() -> None:
    with pytest.raises(IsolationTooLow, match="'process' but at least 'namespaces\\+seccomp'"):
        Sandbox.start(Isolation.NAMESPACES_SECCOMP, use_bwrap=False)


def test_without_bubblewrap_it_runs_at_process_level_and_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), Sandbox.start(use_bwrap=False) as box:
        assert box.isolation == Isolation.PROCESS
        assert run(box, "def f(x):\n    return x + 1\n", 1) == 2
    assert any("WARNING" in record.getMessage() and "process" in record.getMessage() for record in caplog.records)


@pytest.mark.skipif(not HAS_BWRAP, reason=f"{BWRAP} is not installed (scripts/install-system-deps.sh)")
def test_the_child_sees_an_empty_environment_and_only_what_was_bound(sandbox: Sandbox) -> None:
    source = (
        "import numpy as np\n"
        "os = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
        ".__init__.__globals__['sys'].modules['os']\n"
        "def f():\n"
        "    print(' '.join(sorted(os.listdir('/opt'))))\n"
        "    print(' '.join(sorted(os.environ)))\n"
        "    return {'uid': os.getuid(), 'work': os.path.exists('/work'),"
        " 'root': os.path.exists('/root/.pyenv')}\n"
    )
    with sandbox.session(source, "f", limits=FAST) as session:
        result = session.call()
        folders, names = session.stdout.splitlines()
    assert folders == "python sandbox site"
    assert set(names.split()) <= {
        *("GRADLAB_SANDBOX_FD", "GRADLAB_SANDBOX_PRIVATE_TMP", "HOME", "LANG", "LC_CTYPE", "LD_LIBRARY_PATH", "PWD"),
        *("MKL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PATH"),
    }
    assert result["uid"] == 65534
    assert result["work"] is False and result["root"] is False


def test_secrets_of_the_trusted_process_are_redacted_from_learner_output(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "not-a-real-key-" + os.urandom(6).hex()
    monkeypatch.setenv("GRADLAB_EXAMPLE_SECRET_KEY", secret)
    # The child cannot see this environment; redaction is the last line of defence if a future
    # change ever let a secret reach learner output, so it is tested on output made to contain it.
    source = f"def f():\n    print({secret!r})\n    raise ValueError({secret!r})\n"
    with Sandbox.start() as box, box.session(source, "f") as session, pytest.raises(SandboxError) as caught:
        session.call()
    assert secret not in caught.value.message and secret not in caught.value.stdout
    assert caught.value.stdout == "[redacted]\n"


def test_the_wire_format_rejects_lies_about_sizes_and_types() -> None:
    good = {"t": "array", "dtype": "<f8", "shape": [2], "buf": 0}
    assert np.array_equal(wire.decode_value(good, [bytearray(16)]), [0.0, 0.0])
    lies = [
        (dict(good, shape=[3]), [bytearray(16)]),  # shape says 24 bytes
        (dict(good, dtype="|O"), [bytearray(16)]),  # object dtype
        (dict(good, dtype=">f8"), [bytearray(16)]),  # not on the whitelist
        (dict(good, extra=1), [bytearray(16)]),  # unknown key
        (dict(good, shape=[-2]), [bytearray(16)]),
        (good, []),  # missing buffer
        (good, [bytearray(16), bytearray(8)]),  # unused buffer
        ({"t": "dict", "items": [["a", {"t": "none"}], ["a", {"t": "none"}]]}, []),  # duplicate key
        ({"t": "dict", "items": [[1, {"t": "none"}]]}, []),
        ({"t": "int", "v": "1" * 5000}, []),
        ({"t": "float", "v": "nan; import os"}, []),
        ({"t": "pickle", "v": "gASV"}, []),
    ]
    nested: dict[str, object] = {"t": "none"}
    for _ in range(wire.MAX_DEPTH + 2):
        nested = {"t": "list", "items": [nested]}
    lies.append((nested, []))
    for node, buffers in lies:
        with pytest.raises(wire.WireError):
            wire.decode_value(node, buffers)


def test_with_bubblewrap_installed_the_sandbox_reaches_full_isolation() -> None:
    """Where bubblewrap is installed (always under `make test`), nothing less than namespaces+seccomp will do."""
    if not HAS_BWRAP:
        unavailable(f"{BWRAP} is missing (scripts/install-system-deps.sh)", required_by="GRADLAB_REQUIRE_SANDBOX")
    with Sandbox.start() as box:
        assert box.isolation == Isolation.NAMESPACES_SECCOMP
