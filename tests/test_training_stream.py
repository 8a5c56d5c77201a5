"""A streamed training run (the child makes the calls, Session.stream) against the run that makes each call.

Both run in the real sandbox on the same seed; whatever the learner's code does (right, wrong,
changing its arguments, printing, failing at a given call, slow, replacing NumPy's functions,
forging frames), the streamed run must end the same way: the same losses, the same refusal, the
same verdict and message, the same output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.kinds import KINDS
from grader.sandbox import Limits, Sandbox, SandboxError
from grader.training import TrainingFailed, run_training
from grader.verdicts import Verdict

pytestmark = pytest.mark.sandbox

EXERCISE = Path(__file__).resolve().parent.parent / "content" / "exercises" / "linear-backward"
KIND = KINDS["linear-backward"]
LIMITS = Limits(cpu_time_s=5, wall_time_s=10, call_wall_time_s=1)
IMPORTS = frozenset({"numpy", "math", "time"})
SOLUTION = (EXERCISE / "solution.py").read_text()
WRONG = sorted((EXERCISE / "wrong").glob("*.py"))


def at_call(number: int, then: str) -> str:
    """The right backward, except that call `number` (from 1) runs `then` before returning."""
    return (
        "import numpy as np\nimport time\n\ncalls = [0]\n\n\n"
        "def linear_backward(dout, x, w, b):\n"
        "    calls[0] += 1\n"
        "    dx, dw, db = dout @ w.T, x.T @ dout, dout.sum(axis=0)\n"
        f"    if calls[0] == {number}:\n"
        f"        {then}\n"
        "    return dx, dw, db\n"
    )


def outcome(sandbox: Sandbox, source: str, *, streamed: bool, seed: int = 3) -> tuple[Any, str]:
    """How a training run with `source` ends, and what it printed."""
    setup = KIND.training()
    assert setup is not None and setup.numpy_network is not None
    with sandbox.session(
        source, KIND.function_name, allowed_imports=IMPORTS, limits=LIMITS, arg_names=KIND.arg_names
    ) as session:
        try:
            run = run_training(
                KIND,
                setup,
                lambda args: session.call(*args),
                seed=seed,
                stream=session.stream if streamed else None,
            )
            ended: Any = ("run", run.learner_loss, run.rel_error)
        except TrainingFailed as failure:
            ended = ("refused", str(failure))
        except SandboxError as error:
            ended = ("error", Verdict(error.verdict), error.message, error.line)
        return ended, session.stdout


def assert_same_end(sandbox: Sandbox, source: str, seed: int = 3) -> Any:
    (by_calls, printed), (streamed, printed_streamed) = (
        outcome(sandbox, source, streamed=False, seed=seed),
        outcome(sandbox, source, streamed=True, seed=seed),
    )
    assert streamed[0] == by_calls[0], (by_calls, streamed)
    if by_calls[0] == "run":
        np.testing.assert_allclose(streamed[1], by_calls[1], rtol=1e-12, atol=0)
        assert streamed[2] == pytest.approx(by_calls[2], rel=1e-6, abs=1e-15)
    else:
        assert streamed == by_calls
    assert printed_streamed == printed
    return by_calls


@pytest.mark.parametrize("seed", [0, 3, 2**32 - 1])
def test_the_solution_gives_the_same_losses_streamed(sandbox: Sandbox, seed: int) -> None:
    ended = assert_same_end(sandbox, SOLUTION, seed)
    assert ended[0] == "run" and ended[2] < 1e-12


@pytest.mark.parametrize("path", WRONG, ids=[path.stem for path in WRONG])
def test_each_wrong_backward_parts_from_the_curve_the_same_way_streamed(sandbox: Sandbox, path: Path) -> None:
    ended = assert_same_end(sandbox, path.read_text())
    assert ended[0] in ("run", "refused")
    if ended[0] == "run":
        assert not ended[2] <= 1e-6


def test_a_backward_that_changes_its_arguments_changes_nothing_streamed(sandbox: Sandbox) -> None:
    changing = (
        "def linear_backward(dout, x, w, b):\n"
        "    dx, dw, db = dout @ w.T, x.T @ dout, dout.sum(axis=0)\n"
        "    dout *= 3\n"
        "    x[:] = 0\n"
        "    w += 1\n"
        "    b -= 7\n"
        "    return dx, dw, db\n"
    )
    ended = assert_same_end(sandbox, changing)
    assert ended[0] == "run" and ended[2] < 1e-12


def test_printing_at_every_call_prints_the_same_streamed(sandbox: Sandbox) -> None:
    printing = "def linear_backward(dout, x, w, b):\n    print('call', dout.shape)\n    return dout @ w.T, x.T @ dout, dout.sum(axis=0)\n"
    assert assert_same_end(sandbox, printing)[0] == "run"


@pytest.mark.parametrize(
    "then",
    [
        "return dx, dw.T, db",
        "return dx, dw * np.nan, db",
        "return dx, dw",
        "return dx, dw, [1.0, 2.0, 3.0]",
        "return dx, dw.astype(np.float32), np.int8(1)",
        "return dx, dw, 'db'",
        "raise ValueError('no gradient today')",
    ],
)
@pytest.mark.parametrize("number", [1, 2, 12])
def test_a_call_that_fails_midway_ends_the_run_at_the_same_call_streamed(
    sandbox: Sandbox, then: str, number: int
) -> None:
    ended = assert_same_end(sandbox, at_call(number, then))
    assert ended[0] in ("refused", "error")
    if ended[0] == "refused":
        assert ended[1].startswith(f"step {(number - 1) // 2}: ")


def test_a_slow_call_midway_is_over_its_time_limit_streamed(sandbox: Sandbox) -> None:
    ended = assert_same_end(sandbox, at_call(9, "time.sleep(3)"))
    assert ended[:2] == ("error", Verdict.TIME_LIMIT_EXCEEDED)


def test_replacing_numpy_functions_changes_only_the_learners_own_code(sandbox: Sandbox) -> None:
    replacing = (
        "import numpy as np\n"
        "np.maximum = lambda *args, **kwargs: 0\n"
        "np.where = lambda *args, **kwargs: 0\n"
        "np.mean = lambda *args, **kwargs: 0\n"
        "np.array = lambda *args, **kwargs: 0\n"
        "np.errstate = None\n\n\n"
        "def linear_backward(dout, x, w, b):\n"
        "    return dout @ w.T, x.T @ dout, dout.sum(axis=0)\n"
    )
    ended = assert_same_end(sandbox, replacing)
    assert ended[0] == "run" and ended[2] < 1e-12


# At its 7th call the backward writes a frame's beginning on every descriptor it has (the reply
# pipe among them), through the os module that learner code reaches without importing it.
FORGING = at_call(7, "forge()").replace(
    "calls = [0]\n",
    "calls = [0]\n"
    "_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]\n"
    "os = _wrap.__init__.__globals__['sys'].modules['os']\n\n\n"
    "def forge():\n"
    "    for fd in range(3, 1100):\n"
    "        try:\n"
    "            os.write(fd, b'\\x05\\x00\\x00\\x00{\"a\"')\n"
    "        except OSError:\n"
    "            pass\n",
)


def test_a_frame_forged_midway_is_the_learners_interference_streamed(sandbox: Sandbox) -> None:
    ended = assert_same_end(sandbox, FORGING)
    assert ended[:2] == ("error", Verdict.RUNTIME_ERROR)
    assert "interfered with the grader's channel" in ended[2]
