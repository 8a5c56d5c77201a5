"""The grading specification of one exercise: `content/exercises/<slug>/exercise.yaml`.

Keys (the contract with exercise authors):

    slug: linear-backward            # equal to the folder's name
    title: Backward pass of a linear layer
    lesson: backpropagation          # slug of the lesson that explains it
    order: 1                         # position in the lesson's list of exercises
    difficulty: EASY                 # EASY, MEDIUM or HARD
    kind: linear-backward            # a registered kind (grader/kinds/), normally the slug
    function: linear_backward        # must be the kind's function name
    signature: "linear_backward(dout, x, w, b) -> (dx, dw, db)"
    tolerances:                      # optional; relative errors (grader/gradcheck.py)
      gradient_rel: 1.0e-6           #   outputs against float64 autograd
      numerical_rel: 1.0e-5          #   outputs against central differences (h = 1e-6)
      training_loss_rel: 1.0e-6      #   the two training-loss curves, step by step
    numerical_samples: 6             # optional; coordinates per array for central differences
    allowed_imports: [numpy, math]   # optional; modules the submission may import
    limits: {wall_time_s: 20}        # optional; overrides of grader.sandbox.Limits fields
    training: {steps: 25, lr: 0.1}   # optional; overrides of the kind's training run
    hints:                           # optional; exactly three Markdown strings, revealed one by one
      - "The idea: ..."              #   on request: the idea, then shapes and the chain rule,
      - "Shapes: ..."                #   then the formula (Exercise.hints; grader/hints.py)
      - "Formula: ..."

Parsing raises `SpecInvalid(message, line)` for the first problem found. This module
needs neither Django nor the content pipeline: the loader (grader/content.py), the admin
and the `grade` command catch SpecInvalid and report it their own way.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gradlab.slugs import is_slug

if TYPE_CHECKING:
    from grader.kinds.base import Kind
    from grader.models import Exercise
    from grader.sandbox import Limits

SPEC_FILE = "exercise.yaml"
MODULE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
DIFFICULTIES = ("EASY", "MEDIUM", "HARD")
DEFAULT_IMPORTS = ("numpy", "math")
REQUIRED = ("slug", "title", "lesson", "order", "difficulty", "kind", "function", "signature")
OPTIONAL = ("tolerances", "numerical_samples", "allowed_imports", "limits", "training", "hints")
HINT_COUNT = 3
HINT_MAX_CHARS = 4000


class SpecInvalid(ValueError):
    """A problem in an exercise spec: `message` is for the author, `line` is its line in exercise.yaml if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _parse_yaml(text: str) -> Any:
    """Parse YAML; a syntax error becomes SpecInvalid with the line it was found on."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        raise SpecInvalid(f"invalid YAML: {error.problem or error}", 1 + mark.line if mark else 1) from None
    except yaml.YAMLError as error:
        raise SpecInvalid(f"invalid YAML: {error}", 1) from None


@dataclass(frozen=True)
class Tolerances:
    gradient_rel: float = 1e-6
    numerical_rel: float = 1e-5
    training_loss_rel: float = 1e-6


@dataclass(frozen=True)
class ExerciseSpec:
    """A validated exercise.yaml. `to_json()` is what `Exercise.spec` stores; `from_json` reads it back."""

    slug: str
    title: str
    lesson: str
    order: int
    difficulty: str
    kind: str
    function: str
    signature: str
    tolerances: Tolerances = field(default_factory=Tolerances)
    numerical_samples: int = 6
    allowed_imports: tuple[str, ...] = DEFAULT_IMPORTS
    limits: dict[str, float | int] = field(default_factory=dict)
    training_steps: int | None = None
    training_lr: float | None = None
    hints: tuple[str, ...] = ()

    # --- Construction -------------------------------------------------------------

    @classmethod
    def from_folder(cls, folder: Path) -> ExerciseSpec:
        """Read and validate `folder/exercise.yaml`; the slug must equal the folder's name."""
        path = folder / SPEC_FILE
        if not path.is_file():
            raise SpecInvalid(f"missing {SPEC_FILE}")
        text = path.read_text(encoding="utf-8")
        spec = cls.from_yaml(text)
        if spec.slug != folder.name:
            raise SpecInvalid(
                f"slug '{spec.slug}' does not match the folder's name ({folder.name})", _key_lines(text).get("slug")
            )
        return spec

    @classmethod
    def from_yaml(cls, text: str) -> ExerciseSpec:
        data = _parse_yaml(text)
        if not isinstance(data, dict):
            raise SpecInvalid(f"{SPEC_FILE} must be a mapping of keys to values", 1)
        return cls.from_dict(data, _key_lines(text))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExerciseSpec:
        """From `Exercise.spec` (the dict `to_json` wrote, or one authored in the admin)."""
        return cls.from_dict(data, {})

    @classmethod
    def from_model(cls, exercise: Exercise) -> ExerciseSpec:
        data = dict(exercise.spec or {})
        data.setdefault("slug", exercise.slug)
        data.setdefault("title", exercise.title)
        data.setdefault("lesson", exercise.lesson.slug if exercise.lesson else "")
        data.setdefault("order", exercise.order)
        data.setdefault("difficulty", exercise.difficulty)
        data.setdefault("function", exercise.function_name)
        data.setdefault("signature", exercise.signature)
        data.setdefault("kind", exercise.slug)
        return cls.from_json(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any], lines: dict[str, int]) -> ExerciseSpec:
        from grader.kinds import KINDS

        def fail(key: str, message: str) -> SpecInvalid:
            return SpecInvalid(message, lines.get(key, 1))

        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise SpecInvalid(f"missing key(s): {', '.join(missing)}", 1)
        unknown = [key for key in data if key not in REQUIRED + OPTIONAL]
        if unknown:
            raise fail(unknown[0], f"unknown key '{unknown[0]}' (known: {', '.join(REQUIRED + OPTIONAL)})")
        for key in ("slug", "title", "lesson", "kind", "function", "signature"):
            if not isinstance(data[key], str) or not data[key].strip():
                raise fail(key, f"'{key}' must be text (got {data[key]!r})")
        slug = data["slug"].strip()
        if not is_slug(slug):
            raise fail("slug", f"slug '{slug}' must be lower-case words joined by hyphens")
        order = data["order"]
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise fail("order", f"'order' must be a whole number >= 0 (got {order!r})")
        if data["difficulty"] not in DIFFICULTIES:
            raise fail("difficulty", f"'difficulty' must be one of {', '.join(DIFFICULTIES)}")
        kind_slug = data["kind"].strip()
        if kind_slug not in KINDS:
            raise fail("kind", f"unknown kind '{kind_slug}' (known: {', '.join(sorted(KINDS))})")
        kind = KINDS[kind_slug]
        if data["function"] != kind.function_name:
            raise fail("function", f"kind '{kind_slug}' grades a function named '{kind.function_name}'")
        expected_call = f"{kind.function_name}({', '.join(kind.arg_names)})"
        if not data["signature"].replace(" ", "").startswith(expected_call.replace(" ", "")):
            raise fail("signature", f"the signature must start with '{expected_call}'")

        tolerances = _tolerances(data.get("tolerances"), fail)
        samples = data.get("numerical_samples", 6)
        if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 100:
            raise fail("numerical_samples", "'numerical_samples' must be a whole number from 1 to 100")
        imports = data.get("allowed_imports", list(DEFAULT_IMPORTS))
        if not isinstance(imports, list) or not all(isinstance(n, str) and MODULE_PATTERN.match(n) for n in imports):
            raise fail("allowed_imports", "'allowed_imports' must be a list of module names")
        limits = _limits(data.get("limits"), fail)
        steps, lr = _training(data.get("training"), fail)
        hints = _hints(data.get("hints"), fail)
        return cls(
            slug=slug,
            title=data["title"].strip(),
            lesson=data["lesson"].strip(),
            order=order,
            difficulty=data["difficulty"],
            kind=kind_slug,
            function=data["function"],
            signature=data["signature"].strip(),
            tolerances=tolerances,
            numerical_samples=samples,
            allowed_imports=tuple(imports),
            limits=limits,
            training_steps=steps,
            training_lr=lr,
            hints=hints,
        )

    # --- Use ----------------------------------------------------------------------

    def get_kind(self) -> Kind:
        from grader.kinds import get_kind

        return get_kind(self.kind)

    def sandbox_limits(self) -> Limits:
        from grader.sandbox import Limits

        return Limits.from_settings(**self.limits)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "slug": self.slug,
            "title": self.title,
            "lesson": self.lesson,
            "order": self.order,
            "difficulty": self.difficulty,
            "kind": self.kind,
            "function": self.function,
            "signature": self.signature,
            "tolerances": asdict(self.tolerances),
            "numerical_samples": self.numerical_samples,
            "allowed_imports": list(self.allowed_imports),
            "limits": dict(self.limits),
        }
        training: dict[str, float | int] = {}
        if self.training_steps is not None:
            training["steps"] = self.training_steps
        if self.training_lr is not None:
            training["lr"] = self.training_lr
        if training:
            data["training"] = training
        if self.hints:
            data["hints"] = list(self.hints)
        return data


def _key_lines(text: str) -> dict[str, int]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 1 for key, _ in node.value}


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _tolerances(value: Any, fail: Any) -> Tolerances:
    if value is None:
        return Tolerances()
    known = Tolerances.__dataclass_fields__
    if not isinstance(value, dict) or any(key not in known for key in value):
        raise fail("tolerances", f"'tolerances' may only set {', '.join(known)}")
    for key, number in value.items():
        if not _positive_number(number) or number >= 1:
            raise fail("tolerances", f"tolerance '{key}' must be a number between 0 and 1 (got {number!r})")
    return Tolerances(**{key: float(number) for key, number in value.items()})


def _limits(value: Any, fail: Any) -> dict[str, float | int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("limits", "'limits' must be a mapping")
    from grader.sandbox import Limits

    known = {item.name: item.type for item in fields(Limits)}
    limits: dict[str, float | int] = {}
    for key, number in value.items():
        if key not in known:
            raise fail("limits", f"unknown limit '{key}' (known: {', '.join(known)})")
        whole = known[key] in (int, "int")
        if not _positive_number(number) or (whole and not isinstance(number, int)):
            raise fail("limits", f"limit '{key}' must be a positive {'whole ' if whole else ''}number")
        limits[key] = number
    return limits


def _training(value: Any, fail: Any) -> tuple[int | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or any(key not in ("steps", "lr") for key in value):
        raise fail("training", "'training' may only set steps and lr")
    steps = value.get("steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 500):
        raise fail("training", "training 'steps' must be a whole number from 1 to 500")
    lr = value.get("lr")
    if lr is not None and not _positive_number(lr):
        raise fail("training", "training 'lr' must be a positive number")
    return steps, (float(lr) if lr is not None else None)


def _hints(value: Any, fail: Any) -> tuple[str, ...]:
    """No hints, or exactly HINT_COUNT non-empty Markdown strings (idea, shapes and chain rule, formula)."""
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) != HINT_COUNT
        or not all(isinstance(text, str) and text.strip() for text in value)
    ):
        raise fail(
            "hints",
            f"'hints' must be a list of exactly {HINT_COUNT} Markdown texts "
            "(the idea, then shapes and the chain rule, then the formula)",
        )
    if any(len(text) > HINT_MAX_CHARS for text in value):
        raise fail("hints", f"each hint must be at most {HINT_MAX_CHARS} characters")
    return tuple(value)
