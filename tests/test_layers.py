"""Packages under app/ import one way (decision 0035).

Every import that executes counts: module level and inside functions alike (a lazy import is
still a dependency, it only hides the cycle). Imports under `if TYPE_CHECKING:` are skipped;
they never run. Each package app/X/ is one node "X"; each top-level module app/x.py is its own
node "x".
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# The intended order, lowest first (docs/decisions/0035-package-layers.md). A node imports nodes
# of its own layer or lower ones only, and nodes of one layer never import each other in a
# circle. A new domain package joins "domains" (lower only if others must build on it);
# when a lower layer must reach a higher one (a notice, an erasure step, a sweep), the higher one
# registers a handler at start-up and the lower one calls what was registered.
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"ids", "errors", "clock", "config", "crypto", "logs", "telemetry", "breaker",
              "outage", "pagination", "inputs", "ratelimit"}),
    ("database", {"db", "pgwire", "tenancy", "wall"}),
    ("tables", {"tables"}),
    ("access", {"access"}),
    ("delivery", {"notify", "confirmations", "operations", "idempotency"}),
    ("identity", {"auth"}),
    ("her", {"her"}),
    ("organisations", {"orgs"}),
    ("records", {"audit", "consent"}),
    ("people", {"peacebuilders", "cases"}),
    ("response", {"escalation", "directory"}),
    ("incidents", {"incidents"}),
    ("domains", {"risk", "checkins", "consultations", "justice", "monitoring", "corrections"}),
    ("read", {"read"}),
    ("wiring", {"models", "metrics", "storage", "runtime", "scheduler", "tenants", "demo", "cli"}),
]

# Imports that still run against the order: debt, paid down edge by edge. The list only shrinks:
# an entry whose import is gone fails test_debt_is_current until it is removed, and a new
# upward import fails test_imports_point_down_the_layers. Empty means no cycle at all.
DEBT: set[tuple[str, str]] = set()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[str, int, str]]:
    """(imported module, line, statement) for every import that can execute."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, f"import {alias.name}") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = ", ".join(alias.name for alias in node.names)
            statement = f"from {node.module} import {names}"
            # `from app import cases` names a package; `from app.x import y` names module x
            if node.module == "app":
                found.extend((f"app.{alias.name}", node.lineno, statement) for alias in node.names)
            else:
                found.append((node.module, node.lineno, statement))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _node(path: Path) -> str:
    parts = path.relative_to(APP).parts
    return parts[0] if len(parts) > 1 else path.stem


def _target(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "app" or len(parts) < 2:
        return None
    return parts[1]


def _graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]], list[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    schema_imports: list[str] = []
    for path in sorted(APP.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == APP:
            continue
        source = _node(path)
        edges.setdefault(source, set())
        for module, line, statement in _imports(ast.parse(path.read_text(), str(path))):
            rel = f"app/{path.relative_to(APP)}:{line}: {statement}"
            if module == "schema" or module.startswith("schema."):
                schema_imports.append(rel)
            target = _target(module)
            if target is None or target == source:
                continue
            edges[source].add(target)
            where[(source, target)].append(rel)
    return edges, where, schema_imports


def _components(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0

    def strong(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                result.append(sorted(members))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return result


def test_no_import_cycle_among_app_packages() -> None:
    edges, where, _ = _graph()
    edges = {a: {b for b in targets if (a, b) not in DEBT} for a, targets in edges.items()}
    problems = []
    for members in _components(edges):
        lines = [
            line
            for a in members
            for b in sorted(edges[a] & set(members))
            for line in where[(a, b)]
        ]
        problems.append(f"cycle among {members}:\n  " + "\n  ".join(lines))
    assert not problems, "\n".join(problems)


def test_app_never_imports_schema() -> None:
    _, _, schema_imports = _graph()
    assert not schema_imports, "\n".join(schema_imports)


def test_imports_point_down_the_layers() -> None:
    edges, where, _ = _graph()
    layer_of = {node: i for i, (_, nodes) in enumerate(LAYERS) for node in nodes}
    unplaced = sorted(set(edges) - set(layer_of))
    assert not unplaced, f"place these in LAYERS (tests/test_layers.py): {unplaced}"
    upward = [
        f"{LAYERS[layer_of[a]][0]} → {LAYERS[layer_of[b]][0]}: {line}"
        for a in sorted(edges)
        for b in sorted(edges[a])
        if layer_of[b] > layer_of[a] and (a, b) not in DEBT
        for line in where[(a, b)]
    ]
    assert not upward, "\n".join(upward)


def test_debt_is_current() -> None:
    edges, _, _ = _graph()
    paid = sorted(f"{a} → {b}" for a, b in DEBT if b not in edges.get(a, set()))
    assert not paid, f"no longer imported, remove from DEBT: {paid}"


def test_the_graph_counts_lazy_imports_and_skips_type_checking_ones() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from app import cases\n"
        "if TYPE_CHECKING:\n"
        "    from app.read import gate\n"
        "else:\n"
        "    import app.risk.service\n"
        "def f():\n"
        "    from app.notify.service import send\n"
    )
    found = {module for module, _, _ in _imports(ast.parse(source))}
    assert found == {"typing", "app.cases", "app.risk.service", "app.notify.service"}
    assert {_target(m) for m in found} == {None, "cases", "risk", "notify"}
