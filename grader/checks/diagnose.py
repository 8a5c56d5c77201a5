"""What the checks tell the learner about wrong arrays: one diagnosis per output, the most specific kept."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from grader.checks.calls import Call, Oversized
from grader.diagnosis import GENERIC_HINTS, Diagnosis, Mistake, diagnose_array, matches, worst_elements
from grader.examples import example_of
from grader.gradcheck import flat_arrays, rel_error
from grader.kinds.base import Case, Kind

logger = logging.getLogger(__name__)

Models = dict[str, list[tuple[Mistake, str, str, Any]]]


class Diagnoser:
    """Collects the diagnoses of one grading, in the order they were found."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.diagnoses: list[Diagnosis] = []
        self._example_sizes: dict[int, int] = {}  # id(diagnosis) -> size of the case it shows

    def diagnose_call(self, call: Call, tolerance: float) -> None:
        """Add a diagnosis for each wrong output array of this call not diagnosed yet.

        An output already named with a specific mistake keeps it; an "unknown" one is
        replaced when another case names a specific mistake.
        """
        kind = self.kind
        if call.returned is None:
            return
        models: Models | None = None
        for output in kind.outputs:
            got_leaves = dict(flat_arrays(output.name, call.returned[output.name]))
            for name, expected in flat_arrays(output.name, call.expected[output.name]):
                got = got_leaves.get(name)
                if isinstance(got, Oversized):
                    self._add_unless_named(name, self._oversized(name, got, expected))
                    continue
                if got is None or not call.inspectable(got):
                    continue
                if np.shape(got) == np.shape(expected) and rel_error(expected, got) <= tolerance:
                    continue
                existing = [d for d in self.diagnoses if d.output == name]
                if existing and existing[0].mistake != Mistake.UNKNOWN:
                    self._show_smaller_case(existing[0], call.case, expected, got)
                    continue
                specific = kind.likely_mistakes(call.case, name, expected, got)
                if specific:
                    diagnosis = specific[0]
                else:
                    if models is None:
                        models = _evaluate_models(kind, call.case)
                    diagnosis = diagnose_array(
                        output=name,
                        expected=expected,
                        got=got,
                        case_args=call.case.args,
                        upstream=kind.upstream,
                        models=_with_swaps(kind, call, name, expected=expected, got=got, models=models.get(name, [])),
                        hints=kind.hints,
                        lesson_url=kind.lesson_url(),
                    )
                diagnosis.example = example_of(call.case.label, call.case.args, expected, got)
                self._example_sizes[id(diagnosis)] = _case_size(call.case)
                if existing:
                    if diagnosis.mistake == Mistake.UNKNOWN:
                        smaller = _case_size(call.case) < self._example_sizes.get(id(existing[0]), 1 << 62)
                        if smaller and diagnosis.title == existing[0].title:
                            # Unexplained the same way: describe the smaller case, whose numbers are shown.
                            self.diagnoses[self.diagnoses.index(existing[0])] = diagnosis
                        continue
                    self.diagnoses.remove(existing[0])
                self.diagnoses.append(diagnosis)

    def _show_smaller_case(self, diagnosis: Diagnosis, case: Case, expected: Any, got: Any) -> None:
        """Show the smallest case that fails for this output (the easiest to work by hand)."""
        size = _case_size(case)
        if size < self._example_sizes.get(id(diagnosis), 1 << 62):
            example = example_of(case.label, case.args, expected, got)
            if example is not None:
                diagnosis.example = example
                diagnosis.worst = worst_elements(expected, got)
                self._example_sizes[id(diagnosis)] = size

    def inplace(self, name: str, before: Any, after: Any) -> None:
        """Name an argument the function changed in place (shown: entry, value passed, value after)."""
        kind = self.kind
        worst: list[dict[str, Any]] = []
        if isinstance(before, np.ndarray) and isinstance(after, np.ndarray) and before.shape == after.shape:
            worst = worst_elements(before, after)
        elif isinstance(before, dict) and isinstance(after, dict):
            for key, value in before.items():
                other = after.get(key)
                if isinstance(other, np.ndarray) and other.shape == value.shape and not np.array_equal(value, other):
                    worst = worst_elements(value, other)
                    name = f"{name}[{key!r}]"
                    break
        self.diagnoses.append(
            Diagnosis(
                output=name,
                mistake=Mistake.INPLACE_MODIFICATION,
                title=f"{kind.function_name} changed its argument {name}",
                why=f"After the call, {name} no longer holds what was passed in (shown: entry, value passed, "
                "value after). The caller still needs it: a backward pass must not modify its inputs.",
                worst=worst,
                hint=kind.hints.get(Mistake.INPLACE_MODIFICATION)
                or "Compute into new arrays (x.copy(), np.where(...), a * b) instead of writing into the arguments "
                "(x[...] = ..., x *= ..., np.maximum(x, 0, out=x)).",
                lesson_url=kind.lesson_url(),
            )
        )

    def _add_unless_named(self, name: str, diagnosis: Diagnosis) -> None:
        if not any(d.output == name for d in self.diagnoses):
            self.diagnoses.append(diagnosis)

    def _oversized(self, name: str, got: Oversized, expected: Any) -> Diagnosis:
        """The wrong-shape diagnosis of an array too large to look into (read from its shape alone)."""
        shape, wanted = got.shape, tuple(np.shape(expected))
        return Diagnosis(
            output=name,
            mistake=Mistake.UNKNOWN,
            title=f"{name} has the wrong shape",
            why=f"{name} has shape {shape}; it must have shape {wanted}.",
            hint=self.kind.hints.get(Mistake.UNKNOWN) or GENERIC_HINTS[Mistake.UNKNOWN],
            lesson_url=self.kind.lesson_url(),
        )


def _with_swaps(
    kind: Kind, call: Call, name: str, *, expected: Any, got: Any, models: list[tuple[Mistake, str, str, Any]]
) -> list[tuple[Mistake, str, str, Any]]:
    """The kind's mistake models for `name`, with another output's expected value as a swap.

    Where the other output holds `name`'s expected value in turn, the two were exchanged: that
    comes first. Where only `name` holds the other's value, the kind's own models (which say
    why, e.g. dgamma summed without x_hat equals dbeta) come first, then the swap.
    """
    order = ", ".join(output.name for output in kind.outputs)
    outputs = call.returned or {}
    returned = {
        leaf: value for output in kind.outputs for leaf, value in flat_arrays(output.name, outputs.get(output.name))
    }
    exchanged: list[tuple[Mistake, str, str, Any]] = []
    one_way: list[tuple[Mistake, str, str, Any]] = []
    for output in kind.outputs:
        for other, other_expected in flat_arrays(output.name, call.expected[output.name]):
            if other == name or np.shape(other_expected) != np.shape(got):
                continue
            title = f"{name} holds what {other} should be"
            why = (
                f"{name} equals the expected {other} for this case: the gradients are returned in the wrong "
                f"order, or {other}'s value was assigned to {name}. {kind.function_name} returns ({order}), in "
                "that order."
            )
            model = (Mistake.OUTPUTS_SWAPPED, title, why, other_expected)
            other_got = returned.get(other)
            mutual = (
                isinstance(other_got, np.ndarray)
                and other_got.shape == np.shape(expected)
                and matches(np.asarray(other_got, dtype=np.float64), np.asarray(expected, dtype=np.float64))
            )
            (exchanged if mutual else one_way).append(model)
    return [*exchanged, *models, *one_way]


def _evaluate_models(kind: Kind, case: Case) -> Models:
    """{array name: [(mistake, title, why, value)]} of every mistake model applicable to the case."""
    evaluated: Models = {}
    for model in [*kind.mistake_models(), *kind.generic_mistake_models()]:
        try:
            values = model.compute(case)
        except Exception:  # a model that does not apply to this case's shapes
            logger.debug("mistake model %s failed on %s", model.mistake, case.label, exc_info=True)
            continue
        if values is None:
            continue
        for output in kind.outputs:
            if model.outputs is not None and output.name not in model.outputs:
                continue
            if output.name not in values:
                continue
            for name, value in flat_arrays(output.name, values[output.name]):
                title = model.title.replace("{output}", name)
                why = model.why.replace("{output}", name)
                evaluated.setdefault(name, []).append((model.mistake, title, why, value))
    return evaluated


def _case_size(case: Case) -> int:
    """How many numbers a case holds: smaller cases are easier to check by hand."""
    return sum(int(np.size(value)) for value in case.args.values() if not isinstance(value, dict))
