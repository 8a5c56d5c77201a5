"""The import graph of the project's own code: no cycles, and apps that depend on each other one way.

Every `import` counts, those inside functions too (a deferred import hides a cycle, it does
not remove it); imports under `if TYPE_CHECKING:` do not (they never run). Migrations are
left out: they are history and import only Django.

Rules:
- no two modules import each other, directly or through others;
- between apps, code dependencies form a DAG. An import of another app's `models` module does
  not count: a ForeignKey across apps is a relation of the data, which both sides may need,
  while a call into another app's services, selectors or views is a dependency;
- the project package `gradlab/` imports apps only in `urls.py` and `settings.py`, the
  composition root; apps may use its libraries (markdown, env, celery);
- the exercise spec (grader/spec.py) stands alone: it imports no content pipeline and no Django.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGE = "gradlab"
COMPOSITION_ROOT = {"gradlab.urls", "gradlab.settings"}


def _packages() -> list[str]:
    """The project package and every installed app that lives in this repository."""
    local = [name for name in settings.INSTALLED_APPS if (ROOT / name / "__init__.py").is_file()]
    return sorted({PROJECT_PACKAGE, *local})


def _modules() -> dict[str, Path]:
    modules = {}
    for package in _packages():
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every dotted name `node` imports (and, for `from a import b`, both `a` and `a.b`)."""
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for branch in node.orelse:
            yield from _imported_names(branch, module, is_package)
        return
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)
    for child in ast.iter_child_nodes(node):
        yield from _imported_names(child, module, is_package)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for imported in _imported_names(tree, module, path.name == "__init__.py"):
            # `from grader import services` names the module grader.services; `from grader.spec import X`
            # names grader.spec. Keep the longest module the name starts with.
            name = imported
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def app_of(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def app_graph(graph: dict[str, set[str]]) -> dict[str, dict[str, set[str]]]:
    """App -> {app it depends on: the imports that make it so}, without models imports and the composition root."""
    apps: dict[str, dict[str, set[str]]] = {}
    for module, targets in graph.items():
        if module in COMPOSITION_ROOT:
            continue
        for target in targets:
            source_app, target_app = app_of(module), app_of(target)
            if source_app != target_app and not target.endswith(".models"):
                apps.setdefault(source_app, {}).setdefault(target_app, set()).add(f"{module} -> {target}")
    return apps


def test_the_checker_finds_a_cycle_through_a_deferred_import(tmp_path: Path) -> None:
    # The shape the issue found: dashboard/authoring.py imported dashboard/tasks.py inside a function.
    source = "from __future__ import annotations\n\ndef send():\n    from app.tasks import validate\n"
    tree = ast.parse(source)
    names = set(_imported_names(tree, "app.authoring", is_package=False))
    assert "app.tasks" in names
    assert find_cycle({"app.authoring": {"app.tasks"}, "app.tasks": {"app.authoring"}}) == [
        "app.authoring",
        "app.tasks",
        "app.authoring",
    ]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_type_checking_imports_do_not_count() -> None:
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.models import X\nelse:\n    import app.b\n"
    )
    names = set(_imported_names(ast.parse(source), "app.a", is_package=False))
    assert "app.models" not in names and "app.b" in names


def test_every_app_and_the_project_package_are_scanned() -> None:
    modules = _modules()
    for package in ("gradlab", "lessons", "quizzes", "grader", "dashboard", "contentsync"):
        assert package in modules, package
    assert "grader.spec" in modules and "grader.sandbox.core" in modules


def test_no_module_imports_itself_through_others() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_apps_depend_on_each_other_one_way() -> None:
    apps = app_graph(import_graph())
    cycle = find_cycle({app: set(targets) for app, targets in apps.items()})
    if cycle:
        pairs = itertools.pairwise(cycle)
        why = "; ".join(f"{a} -> {b} ({', '.join(sorted(apps[a][b]))})" for a, b in pairs)
        raise AssertionError(f"apps import each other: {' -> '.join(cycle)}: {why}")


def test_the_project_package_imports_apps_only_in_urls_and_settings() -> None:
    graph = import_graph()
    offending = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if app_of(module) == PROJECT_PACKAGE and module not in COMPOSITION_ROOT
        for target in targets
        if app_of(target) != PROJECT_PACKAGE
    )
    assert offending == []


def test_the_exercise_spec_imports_no_content_pipeline_and_no_django() -> None:
    graph = import_graph()
    # grader modules and the project's plain libraries (gradlab.slugs), nothing of the content pipeline.
    assert {app_of(target) for target in graph["grader.spec"]} <= {"grader", PROJECT_PACKAGE}
    assert not graph["grader.spec"] & COMPOSITION_ROOT
    tree = ast.parse((ROOT / "grader" / "spec.py").read_text(encoding="utf-8"))
    assert not any(name.startswith("django") for name in _imported_names(tree, "grader.spec", is_package=False))
