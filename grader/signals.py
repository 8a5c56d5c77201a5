"""Signals the grader sends for other apps (courses recounts assignment scores on them)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after the transaction that stored a submission's verdict commits, once per verdict written:
# submission_graded.send(sender=Submission, submission_id=..., user_id=..., exercise_id=...).
submission_graded = Signal()
