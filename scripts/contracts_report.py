"""Measure the contracts issue 12 closes on, for a source tree (stdlib only).

    python scripts/contracts_report.py [SRC_ROOT] [--json]

SRC_ROOT is the package folder (default ``src/modelatlas``); its folder name is the package
name. Four figures, each listed in full so that a number can be checked line by line:

(a) backend checks: lines that match the issue's own command,
    ``grep -rn "backend ==\\|\\.backend in\\|options.get(" --include=*.py``, outside
    ``SRC_ROOT/backends/``. The pattern is grep's basic regex, so ``options.get(`` matches any
    character between ``options`` and ``get(``, as grep does.

(b) dict-returning functions in ``evals/``, ``strategies/``, ``serve/``, ``studio/``, ``cli/``.
    A heuristic over the syntax tree: a function counts when its return annotation is ``dict``
    (``dict``, ``dict[...]``, ``Dict[...]``, also inside ``X | None`` or ``Optional[...]``),
    or when one of its own ``return`` statements (not a nested function's) returns a dict
    literal, a dict comprehension or a ``dict(...)`` call. It cannot tell a run summary from a
    JSON body or a lookup table, so every hit is printed; the ones whose name or module says
    summary, estimate, report, outcome, result or finetune are also counted apart as "results"
    (still a heuristic: read the list).

(c) package import cycles. Nodes are the package's direct children (``catalog``, ``backends``,
    ``config``, ... and ``(root)`` for ``__init__.py`` itself); an edge P -> Q is any import
    in P's files of a module in Q (absolute or relative). ``from pkg import name`` points at the
    submodule ``pkg.name`` when that exists, else at ``pkg``. Two graphs are checked: imports
    that run when the module is imported (module level, outside ``if TYPE_CHECKING:``), and all
    imports (function-level and TYPE_CHECKING ones included: a lazy import still couples the
    packages). A cycle is a strongly connected component with more than one node. Imports
    spelled as strings (a registry's ``"module:Class"``, ``importlib``) are not seen.

(d) the five longest functions (``def`` line to last line, methods and nested ones included).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

# grep's basic regex from the issue, written for Python's re (``.`` stays "any character").
BACKEND_CHECK = re.compile(r"backend ==|\.backend in|options.get\(")
RESULT_PACKAGES = ("evals", "strategies", "serve", "studio", "cli")
RESULT_WORDS = re.compile(r"summary|estimate|report|outcome|result|finetune", re.IGNORECASE)
ROOT_NODE = "(root)"


@dataclass
class Edge:
    source: str
    target: str
    where: str  # file:line of one import that makes the edge
    lazy: bool  # inside a function or under TYPE_CHECKING


@dataclass
class Report:
    root: str
    backend_checks: list[str] = field(default_factory=list)
    dict_functions: list[str] = field(default_factory=list)
    dict_result_functions: list[str] = field(default_factory=list)
    cycles_module_level: list[list[str]] = field(default_factory=list)
    cycles_all_imports: list[list[str]] = field(default_factory=list)
    cycle_edges: list[str] = field(default_factory=list)
    longest_functions: list[dict[str, object]] = field(default_factory=list)


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError):
        return None


# (a) -----------------------------------------------------------------------------------------


def backend_checks(root: Path, files: list[Path]) -> list[str]:
    hits = []
    for path in files:
        rel = path.relative_to(root)
        if rel.parts[0] == "backends":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if BACKEND_CHECK.search(line):
                hits.append(f"{root.name}/{rel}:{number}: {line.strip()}")
    return hits


# (b) -----------------------------------------------------------------------------------------


def _is_dict_annotation(node: ast.expr | None) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(node, ast.Name):
        return node.id in ("dict", "Dict")
    if isinstance(node, ast.Attribute):
        return node.attr in ("dict", "Dict")
    if isinstance(node, ast.Subscript):
        if isinstance(node.value, (ast.Name, ast.Attribute)) and _name(node.value) == "Optional":
            return _is_dict_annotation(node.slice)
        return _is_dict_annotation(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_dict_annotation(node.left) or _is_dict_annotation(node.right)
    return False


def _name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def _own_returns(func: ast.AST) -> list[ast.Return]:
    """The function's return statements, not those of functions or classes nested in it."""
    found, todo = [], list(ast.iter_child_nodes(func))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def _returns_dict(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    if _is_dict_annotation(func.returns):
        return True
    for ret in _own_returns(func):
        value = ret.value
        if isinstance(value, (ast.Dict, ast.DictComp)):
            return True
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
            return True
    return False


def functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function with its qualified name (``Class.method``, ``outer.inner``)."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((prefix + child.name, child))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def dict_functions(root: Path, trees: dict[Path, ast.Module]) -> list[str]:
    hits = []
    for path, tree in trees.items():
        rel = path.relative_to(root)
        if rel.parts[0] not in RESULT_PACKAGES:
            continue
        for qualname, func in functions(tree):
            if _returns_dict(func):
                hits.append(f"{root.name}/{rel}:{func.lineno}: {qualname}")
    return hits


# (c) -----------------------------------------------------------------------------------------


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def node_of(package: str, module: str) -> str | None:
    """The graph node a module belongs to (its top-level child), None outside the package."""
    parts = module.split(".")
    if parts[0] != package:
        return None
    return parts[1] if len(parts) > 1 else ROOT_NODE


def _is_type_checking(test: ast.expr) -> bool:
    return _name(test) == "TYPE_CHECKING"


def imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, with whether it is lazy (in a function or TYPE_CHECKING)."""
    found = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, lazy))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), lazy)
            else:
                visit(child, lazy)

    visit(tree, False)
    return found


def imported_modules(stmt: ast.Import | ast.ImportFrom, here: str, is_pkg: bool, known: set[str]):
    """The modules one statement imports (``here`` is the importing module's name)."""
    if isinstance(stmt, ast.Import):
        return [alias.name for alias in stmt.names]
    base = stmt.module or ""
    if stmt.level:
        anchor = here.split(".")
        if not is_pkg:
            anchor = anchor[:-1]
        anchor = anchor[: len(anchor) - (stmt.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    found = []
    for alias in stmt.names:
        candidate = f"{base}.{alias.name}"
        found.append(candidate if candidate in known else base)
    return found


def import_edges(root: Path, trees: dict[Path, ast.Module]) -> list[Edge]:
    known = {module_name(root, path) for path in trees}
    edges: dict[tuple[str, str, str, bool], Edge] = {}  # one per statement, not per name
    for path, tree in trees.items():
        here = module_name(root, path)
        source = node_of(root.name, here)
        for stmt, lazy in imports(tree):
            for target_module in imported_modules(stmt, here, path.name == "__init__.py", known):
                target = node_of(root.name, target_module)
                if target and source and target != source:
                    where = f"{root.name}/{path.relative_to(root)}:{stmt.lineno}"
                    edges[(source, target, where, lazy)] = Edge(source, target, where, lazy)
    return list(edges.values())


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def cycle_edges(edges: list[Edge], components: list[list[str]]) -> list[str]:
    """Each edge inside a cycle, once per (source, target, kind), with one place that makes it."""
    inside = {node: i for i, comp in enumerate(components) for node in comp}
    seen: dict[tuple[str, str, bool], list[str]] = {}
    for edge in edges:
        if edge.source in inside and inside[edge.source] == inside.get(edge.target):
            seen.setdefault((edge.source, edge.target, edge.lazy), []).append(edge.where)
    lines = []
    for (source, target, lazy), places in sorted(seen.items()):
        kind = "lazy" if lazy else "module-level"
        more = f" (+{len(places) - 1} more)" if len(places) > 1 else ""
        lines.append(f"{source} -> {target} [{kind}] {places[0]}{more}")
    return lines


# (d) -----------------------------------------------------------------------------------------


def longest_functions(root: Path, trees: dict[Path, ast.Module], n: int = 5):
    sized = []
    for path, tree in trees.items():
        for qualname, func in functions(tree):
            lines = (func.end_lineno or func.lineno) - func.lineno + 1
            sized.append((lines, f"{root.name}/{path.relative_to(root)}", qualname))
    sized.sort(key=lambda row: (-row[0], row[1], row[2]))
    return [{"function": q, "file": f, "lines": lines} for lines, f, q in sized[:n]]


# ---------------------------------------------------------------------------------------------


def measure(root: Path) -> Report:
    files = python_files(root)
    trees = {path: tree for path in files if (tree := parse(path)) is not None}
    edges = import_edges(root, trees)
    every = cycles(edges)
    found = dict_functions(root, trees)
    return Report(
        root=str(root),
        backend_checks=backend_checks(root, files),
        dict_functions=found,
        dict_result_functions=[hit for hit in found if RESULT_WORDS.search(hit)],
        cycles_module_level=cycles([e for e in edges if not e.lazy]),
        cycles_all_imports=every,
        cycle_edges=cycle_edges(edges, every),
        longest_functions=longest_functions(root, trees),
    )


def print_text(report: Report) -> None:
    def section(title: str, rows: list[str]) -> None:
        print(f"\n{title}: {len(rows)}")
        for row in rows:
            print(f"  {row}")

    print(f"contracts report for {report.root}")
    print("\n| figure | count |\n| --- | --- |")
    print(f"| backend-name / raw-option checks outside backends/ | {len(report.backend_checks)} |")
    print(
        f"| dict-returning functions (evals, strategies, serve, studio, cli) | {len(report.dict_functions)} |"
    )
    print(f"| ... of which named like a result | {len(report.dict_result_functions)} |")
    print(f"| package cycles, module-level imports | {len(report.cycles_module_level)} |")
    print(f"| package cycles, all imports (lazy included) | {len(report.cycles_all_imports)} |")
    section("backend checks", report.backend_checks)
    results = set(report.dict_result_functions)
    section(
        "dict-returning functions (* named like a result)",
        [f"{'*' if hit in results else ' '} {hit}" for hit in report.dict_functions],
    )
    section("package cycles, module-level imports", [" <-> ".join(c) for c in report.cycles_module_level])
    section("package cycles, all imports", [" <-> ".join(c) for c in report.cycles_all_imports])
    section("edges inside the cycles (all imports)", report.cycle_edges)
    section(
        "five longest functions",
        [f"{row['lines']:>4} lines  {row['function']}  ({row['file']})" for row in report.longest_functions],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path("src/modelatlas"))
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not root.is_dir():
        print(f"error: {args.root} is not a folder", file=sys.stderr)
        return 2
    report = measure(root)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
