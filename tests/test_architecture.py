"""The floor plan holds: imports flow one way between the rooms and no module imports itself
back through another. Lazy imports inside functions count too: a cycle hidden in a function
body is still a cycle for the next engineer."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("retrieval", "agent", "evaluation", "serving", "testing", "corpora")

# room prefix -> rooms it must never import (a prefix matches the module and its children)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "retrieval": ("agent", "evaluation", "serving", "testing", "corpora"),
    "agent": ("evaluation", "serving", "testing", "corpora"),
    "evaluation": ("serving", "testing"),
    "serving.models": ("serving.http", "serving.cli", "evaluation", "testing"),
    "serving.http": ("serving.cli", "evaluation", "testing"),
    "serving": ("testing",),
    "corpora": ("retrieval", "agent", "evaluation", "serving", "testing"),
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """Project modules `path` imports; `from pkg import sub` counts as importing `pkg.sub`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}"


def _resolve(target: str, known: set[str]) -> str | None:
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = {_resolve(t, known) for t in _imports(path, name, known)}
        graph[name] = {d for d in deps if d and d != name}
    return graph


def _room(name: str) -> str:
    for prefix in sorted(FORBIDDEN, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return ""


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_imports_flow_one_way() -> None:
    graph = _graph()
    assert len(graph) > 100, "the module scan found too few modules: is REPO right?"
    wrong = sorted(
        f"{src} imports {dst}"
        for src, deps in graph.items()
        for dst in deps
        if any(_within(dst, banned) for banned in FORBIDDEN.get(_room(src), ()))
    )
    assert not wrong, "imports against the room rules:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = _graph()
    # Tarjan's strongly connected components, iterative so deep chains cannot recurse out.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [("agent.graph", "serving.http.app", True), ("serving.cli", "agent.graph", False)],
)
def test_the_rule_table_catches_a_wrong_import(src: str, dst: str, expected: bool) -> None:
    """The checker itself: a forbidden edge is reported, an allowed one is not."""
    banned = FORBIDDEN.get(_room(src), ())
    assert any(_within(dst, b) for b in banned) is expected
