"""The grader's sandbox: learner code runs only in children forked from a warm, isolated zygote.

See ``core`` (trusted side), ``runner`` (the sandbox side, stdlib + NumPy only) and ``wire`` (the
pickle-free message format). Public API: Sandbox, Session, Limits, SandboxError, SandboxUnavailable,
IsolationTooLow.
"""

from grader.sandbox.core import IsolationTooLow, Limits, Sandbox, SandboxError, SandboxUnavailable, Session

__all__ = ["IsolationTooLow", "Limits", "Sandbox", "SandboxError", "SandboxUnavailable", "Session"]
