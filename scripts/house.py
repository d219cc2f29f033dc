"""How the house reads, as JSON: lines per folder, the largest files, functions over 80 lines, import arrows that run
back up the layers, and import circles between modules.

    python scripts/house.py [--top 10] [--root .]

Layers, lowest first (a folder may import only folders at or below its own layer): the foundation (``ovp``: settings,
errors), ``kg_builder``, ``encoders``, ``fusion``, ``worker``, ``api``, then the command line (``cli``), which may
import anything. ``tests``, ``bench`` and ``scripts`` are not part of the house and are not counted for arrows or
circles. Every import counts, including those inside functions: a lazy import is still an arrow.
"""
from __future__ import annotations

import argparse
import ast
import json
from collections import defaultdict
from pathlib import Path

LAYERS = ["ovp", "kg_builder", "encoders", "fusion", "worker", "api", "cli"]
OUTSIDE = {"tests", "bench", "scripts", "docs", "cypher", ".ovp", ".git"}
LONG_FUNCTION = 80


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if p.relative_to(root).parts[0] not in {".ovp", ".git", "node_modules"})


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(tree: ast.AST, this: str, is_package: bool) -> set[str]:
    """Every module named by an import anywhere in the file (relative imports resolved)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = this.split(".") if is_package else this.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def house(root: Path, top: int) -> dict:
    lines_per_folder: dict[str, int] = defaultdict(int)
    sizes: list[tuple[int, str]] = []
    long_functions: list[tuple[int, str]] = []
    trees: dict[str, tuple[ast.AST, bool, str]] = {}
    for path in python_files(root):
        rel = path.relative_to(root)
        text = path.read_text(encoding="utf-8")
        n = text.count("\n")
        folder = rel.parts[0] if len(rel.parts) > 1 else "."
        lines_per_folder[folder] += n
        sizes.append((n, str(rel)))
        tree = ast.parse(text, filename=str(rel))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONG_FUNCTION:
                    long_functions.append((length, f"{rel}:{node.lineno} {node.name}"))
        if folder not in OUTSIDE and folder != ".":
            trees[module_name(root, path)] = (tree, path.name == "__init__.py", folder)

    modules = set(trees)
    graph: dict[str, set[str]] = defaultdict(set)
    arrows_up: set[tuple[str, str]] = set()
    for name, (tree, is_package, folder) in trees.items():
        for target in imported_modules(tree, name, is_package):
            # The longest known module that the import names (``a.b.c`` may be a function of module ``a.b``).
            parts = target.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if not parts:
                continue
            dest = ".".join(parts)
            if dest != name:
                graph[name].add(dest)
            dest_folder = trees[dest][2]
            if folder in LAYERS and dest_folder in LAYERS and LAYERS.index(dest_folder) > LAYERS.index(folder):
                arrows_up.add((folder, dest_folder, name, dest))
    folder_arrows = sorted({(a, b) for a, b, _, _ in arrows_up})
    return {
        "lines_per_folder": dict(sorted(lines_per_folder.items())),
        "python_lines": sum(lines_per_folder.values()),
        "largest_files": [{"file": f, "lines": n} for n, f in sorted(sizes, reverse=True)[:top]],
        "functions_over_80_lines": [{"function": f, "lines": n} for n, f in sorted(long_functions, reverse=True)],
        "arrows_up": [f"{a} -> {b}" for a, b in folder_arrows],
        "arrows_up_modules": sorted(f"{m} -> {d}" for _, _, m, d in arrows_up),
        "import_circles": strongly_connected(graph),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(house(args.root, args.top), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
