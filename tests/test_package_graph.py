"""The package-level import graph of ``edgesam`` has no cycle.

The graph is computed statically (``ast`` over every module of the package, nothing imported).
A node is a subpackage of ``edgesam`` (``models``, ``predictor``, ...), a top-level module
(``zoo``, ``fidelity``, ...) or the root package itself (``edgesam``, for ``from edgesam
import __version__``). An edge ``A -> B`` means that a module of ``A`` imports a module of
``B``; imports inside a package (``A -> A``) are not edges.

The rule:

* **module-level** imports (run when the module is imported; ``if TYPE_CHECKING:`` blocks
  excluded because they never run) must form an acyclic graph: importing a module never
  needs, even indirectly, the package that is importing it.
* **function-level** (lazy) imports are allowed to point upward (the predictor factory in a
  command loading a backend, the fidelity routine building a predictor): they run after every
  module involved is fully imported, so they cannot deadlock or half-initialise a module.
  They are not edges of the checked graph; the report lists them, and marks those that point
  upward (into a package that reaches the caller through module-level edges).
* ``bundle`` is the bottom layer: it imports nothing of edgesam, eagerly or lazily.

The root package's ``__getattr__`` loads its public names through ``import_module`` strings,
which this static graph does not see; that is the facade, and it is lazy by design.

Run with ``-s`` to see the graph printed (``python tests/test_package_graph.py`` prints it too).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgesam"
ROOT = "edgesam"


def _node(module: str) -> str:
    """Graph node of a dotted module name inside edgesam (``edgesam.models.sam`` -> ``models``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``(imported edgesam module, lazy)`` for every import in the file at ``path``."""
    module = _module_name(path)
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit_stmt(sub, lazy)
                continue
            visit_stmt(child, lazy)

    def visit_stmt(child: ast.AST, lazy: bool) -> None:
        if isinstance(child, ast.Import):
            found.extend((a.name, lazy) for a in child.names if a.name.split(".")[0] == ROOT)
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                base = package.split(".")
                base = base[: len(base) - (child.level - 1)]
                target = ".".join(base + ([child.module] if child.module else []))
            else:
                target = child.module or ""
            if target.split(".")[0] != ROOT:
                return
            if target == ROOT:  # from edgesam import x: x may be a subpackage/module
                for alias in child.names:
                    sub = PACKAGE / alias.name
                    found.append((f"{ROOT}.{alias.name}" if sub.is_dir() or sub.with_suffix(".py").is_file() else ROOT, lazy))
            else:
                found.append((target, lazy))
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            visit(child, True)
        else:
            visit(child, lazy)

    visit(tree, False)
    return found


def package_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(eager, lazy)``: node -> set of nodes it imports at module level / inside functions."""
    eager: dict[str, set[str]] = defaultdict(set)
    lazy: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _node(_module_name(path))
        eager.setdefault(src, set())
        for target, is_lazy in _imports(path):
            dst = _node(target)
            if dst != src:
                (lazy if is_lazy else eager)[src].add(dst)
    for src in eager:
        lazy[src] -= eager[src]
    return dict(eager), dict(lazy)


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a node list (first node repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def upward_lazy_edges(eager: dict[str, set[str]], lazy: dict[str, set[str]]) -> list[str]:
    """Lazy edges ``A -> B`` where ``B`` reaches ``A`` through module-level edges (allowed; reported)."""
    return sorted(f"{src} -> {dst}" for src, dsts in lazy.items() for dst in dsts if _reaches(eager, dst, src))


def format_graph(eager: dict[str, set[str]], lazy: dict[str, set[str]]) -> str:
    """One line per node: module-level edges, then ``(lazy: ...)``."""
    lines = []
    for node in sorted(eager):
        line = f"{node:15s} -> {', '.join(sorted(eager[node])) or '-'}"
        if lazy.get(node):
            line += f"   (lazy: {', '.join(sorted(lazy[node]))})"
        lines.append(line)
    return "\n".join(lines)


def report() -> str:
    eager, lazy = package_graph()
    cycle = find_cycle(eager)
    upward = upward_lazy_edges(eager, lazy)
    return "\n".join([
        format_graph(eager, lazy),
        "",
        f"module-level cycle: {' -> '.join(cycle) if cycle else 'none'}",
        f"lazy (allowed) upward imports: {', '.join(upward) if upward else 'none'}",
    ])


def test_graph_is_computed_from_the_real_tree() -> None:
    eager, lazy = package_graph()
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages <= set(eager) and {"models", "predictor", "runtimes"} <= subpackages
    assert "predictor" in eager["everything"]  # everything/generator.py drives a SamPredictor
    assert "models" in eager["export"] and "bundle" in eager["runtimes"]


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert upward_lazy_edges({"a": {"b"}, "b": set()}, {"b": {"a"}}) == ["b -> a"]


def test_no_module_level_cycle() -> None:
    print("\n" + report())
    eager, _ = package_graph()
    cycle = find_cycle(eager)
    assert cycle is None, f"package import cycle: {' -> '.join(cycle)}\n{format_graph(*package_graph())}"


def test_bundle_is_the_bottom_layer() -> None:
    eager, lazy = package_graph()
    assert "bundle" in eager, "edgesam/bundle/ is missing"
    assert not eager["bundle"] and not lazy.get("bundle"), (eager["bundle"], lazy.get("bundle"))


if __name__ == "__main__":
    print(report())
