"""Signals other apps listen to.

`assignment_score_changed(sender, assignment, learner, score, max_score)` is sent
after the transaction that changed a learner's total on an assignment commits,
whatever changed it: a graded submission, a quiz answer, an override, an
extension, a regrade. `score` and `max_score` are points (floats);
`sender` is the Assignment class. It is sent only when the total actually changed.
"""

from __future__ import annotations

from django.dispatch import Signal

assignment_score_changed = Signal()
