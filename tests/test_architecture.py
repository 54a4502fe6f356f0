"""The import graph of ``dispatch`` has no cycle, and nothing outside the engine touches its caches.

Every ``import`` counts, wherever it is: at module level, inside a function (a lazy import hides a
cycle from Python, not from the design) and under ``if TYPE_CHECKING:``. The graph is built from the
source with :mod:`ast`; nothing is imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dispatch"

#: Known cycles among modules outside the routing engine's owners, each with its reason; the test
#: fails on any other cycle (and on a listed one that has gone: remove it from here then).
KNOWN_CYCLES: dict[frozenset[str], str] = {
    # none at the time of writing: list one here as frozenset({"dispatch.a", "dispatch.b"}): "why"
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_package else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> nx.DiGraph:
    """Module -> modules it imports (only modules of the package)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(files)
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_package, node)
                # "from dispatch.routing import cch" imports the submodule cch
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]  # fmt: skip
            for t in targets:
                while t and t not in files:  # a name inside a module: the module
                    t = t.rpartition(".")[0]
                if t and t != mod and t.startswith("dispatch"):
                    g.add_edge(mod, t)
    return g


def test_import_graph_is_built_from_every_module() -> None:
    g = import_graph()
    assert "dispatch.routing.queries" in g and "dispatch.roads.network" in g
    assert g.has_edge("dispatch.roads.network", "dispatch.routing.queries")
    assert g.has_edge("dispatch.routing.queries", "dispatch.routing.engine")


def test_no_import_cycles() -> None:
    g = import_graph()
    # package __init__ modules re-export their package: they may import below themselves
    cycles = [frozenset(c) for c in nx.simple_cycles(g)]
    unknown = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not unknown, f"import cycles: {unknown}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in set(cycles)]
    assert not gone, f"listed cycles that no longer exist (remove them): {gone}"


def test_routing_engine_layers() -> None:
    """Lower layers never import higher ones: graph and kernels know no network, no engine."""
    g = import_graph()
    below = {
        "dispatch.roads.graph": set(),
        # dispatch.progress: long work (ordering, customization, kernel compilation) reports to it
        "dispatch.routing.kernels": {"dispatch.progress"},
        "dispatch.routing.dijkstra": {"dispatch.routing.kernels"},
        "dispatch.routing.order": {"dispatch.routing.kernels", "dispatch.progress"},
        "dispatch.routing.cch": {
            "dispatch.routing.kernels",
            "dispatch.routing.order",
            "dispatch.progress",
        },  # fmt: skip
        # routing.kernels: its ``jit`` (numba's on-disk cache, or a fallback where none is writable)
        "dispatch.roads.snapping": {
            "dispatch.roads.graph",
            "dispatch.errors",
            "dispatch.geo",
            "dispatch.routing.kernels",
        },  # fmt: skip
    }
    for mod, allowed in below.items():
        assert set(g.successors(mod)) <= allowed, (mod, set(g.successors(mod)) - allowed)
    for mod in ("dispatch.routing.engine", "dispatch.routing.queries", "dispatch.routing.closures"):
        assert "dispatch.roads.network" not in nx.descendants(g, mod), mod


def test_no_module_reaches_into_the_engine_state() -> None:
    """The old string-keyed ``net._state`` cache dict is gone; no module or test uses it."""
    used_as_dict = re.compile(r"\._state(\[|\.get\(|\.setdefault\(|\.pop\()")
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
                 *(ROOT / "benchmarks").rglob("*.py")]:  # fmt: skip
        if path.resolve() == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        assert not used_as_dict.search(text), path
