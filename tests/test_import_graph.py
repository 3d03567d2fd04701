"""Layering: the import graph of `sims` and `robopolicy`, read from the source (ast; imports
inside functions and relative imports count). `sims` never imports `robopolicy`; no module
imports itself through others; robopolicy's subpackages import one another one way only."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sims", "robopolicy")
SUBPACKAGES = ("data", "models", "policies", "planners", "augment", "training", "evaluation",
               "viewer", "commands")

Graph = dict[str, set[str]]


def module_files(root: Path, packages=PACKAGES) -> dict[str, tuple[Path, bool]]:
    """{module name: (file, is a package's __init__)} of every module under `packages`."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_init = parts[-1] == "__init__"
            if is_init:
                parts = parts[:-1]
            out[".".join(parts)] = (path, is_init)
    return out


def _resolve(module: str, is_init: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative ones resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_init else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, modules) -> str | None:
    """`name` if it is one of ours, else its longest prefix that is (an attribute of it)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path = ROOT, packages=PACKAGES) -> Graph:
    """{module: modules of ours it imports}. A package's `__init__` importing its own
    submodules is not an edge (importing the submodule runs the `__init__` first anyway)."""
    modules = module_files(root, packages)
    graph: Graph = {}
    for module, (path, is_init) in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_init, node)
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = _known(name, modules)
                if target is not None:
                    targets.add(target)
        targets.discard(module)
        if is_init:
            targets = {t for t in targets if not t.startswith(module + ".")}
        graph[module] = targets
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) through each strongly connected component of more than
    one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(set(component))
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: Graph, component: set[str]) -> list[str]:
    """A shortest cycle through the component's first node (breadth-first)."""
    start = min(component)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child not in parent:
                    parent[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle in component {sorted(component)}")


def subpackage_graph(graph: Graph) -> Graph:
    """robopolicy's modules grouped by subpackage (a module directly under robopolicy/ is its
    own node)."""
    def node_of(module: str) -> str | None:
        parts = module.split(".")
        if parts[0] != "robopolicy":
            return None
        if len(parts) > 1 and parts[1] in SUBPACKAGES:
            return f"robopolicy.{parts[1]}"
        return ".".join(parts[:2])

    out: Graph = {}
    for module, targets in graph.items():
        src = node_of(module)
        if src is None:
            continue
        out.setdefault(src, set())
        for target in targets:
            dst = node_of(target)
            if dst is not None and dst != src:
                out[src].add(dst)
                out.setdefault(dst, set())
    return out


def _describe(cycles: list[list[str]]) -> str:
    return "; ".join(" -> ".join(c) for c in cycles)


@lru_cache(maxsize=1)
def _graph() -> Graph:
    return import_graph()


def test_sims_never_imports_robopolicy():
    bad = sorted(f"{m} -> {t}" for m, targets in _graph().items() if m.split(".")[0] == "sims"
                 for t in targets if t.split(".")[0] == "robopolicy")
    assert not bad, f"sims imports robopolicy: {', '.join(bad)}"


def test_no_module_import_cycles():
    cycles = find_cycles(_graph())
    assert not cycles, f"{len(cycles)} import cycle(s): {_describe(cycles)}"


def test_no_cycles_between_robopolicy_subpackages():
    cycles = find_cycles(subpackage_graph(_graph()))
    assert not cycles, f"subpackage cycle(s): {_describe(cycles)}"


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    # a made-up package whose only cycles hide in a function and behind a relative import,
    # and a package __init__ importing its own submodule (not a cycle)
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.b import X\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\nX = 1\n")
    (pkg / "sub" / "c.py").write_text("from . import b\nfrom pkg.sub import X\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {"pkg": set(), "pkg.a": {"pkg.sub.b"}, "pkg.sub": set(),
                     "pkg.sub.b": {"pkg.a"}, "pkg.sub.c": {"pkg.sub.b", "pkg.sub"}}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]
    assert find_cycles(subpackage_graph({"robopolicy.viewer.x": {"robopolicy.evaluation.y"},
                                         "robopolicy.evaluation.y": {"robopolicy.viewer.z"},
                                         "robopolicy.viewer.z": set()})) \
        == [["robopolicy.evaluation", "robopolicy.viewer", "robopolicy.evaluation"]]
