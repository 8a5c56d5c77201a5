"""The grading checks, one module each, in the order the engine runs them.

Each module has one entry point, ``check(...)``, returning a typed
:class:`~grader.result.CheckResult` (``edge_cases`` one per edge case):

1. ``load``       - the source parses (else ``syntax_error`` with the line) and defines the function;
2. ``signature``  - the function takes the catalog's arguments (else ``runtime_error``);
3. ``outputs``    - every returned value has the expected type, shape, dtype float64, finite entries;
4. ``no_inplace`` - the arguments are unchanged after the call;
5. ``autograd``   - each output against float64 PyTorch autograd of the kind's trusted forward;
6. ``numerical``  - each gradient against central differences at sampled coordinates (shown);
7. ``edge_cases`` - one check per edge case of the kind (logits of magnitude 1000, stride 2, ...);
8. ``training``   - the side-by-side training run (grader/training.py) gives the same loss curve.

``load`` and ``signature`` raise :class:`Stop` when grading cannot go on. The learner's function
is called by ``calls`` (once per case, before the checks that read the calls); ``compare`` and
``diagnose`` are the comparison and the diagnosis the checks share. Nothing here converts or
walks a returned array larger than the case's own arrays (``calls.Call.bound``): a submission
cannot make the trusted process do work beyond what its inputs declare.
"""

from __future__ import annotations

from grader.result import CheckResult
from grader.verdicts import Verdict


class Stop(Exception):
    """Grading ends at this check with `verdict` (a load or signature failure)."""

    def __init__(self, verdict: Verdict, check: CheckResult) -> None:
        super().__init__(check.message)
        self.verdict = verdict
        self.check = check
