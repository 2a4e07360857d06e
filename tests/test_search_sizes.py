"""The search package stays readable: no module over 300 lines, no function over 60, and each
search strategy's own file (one that registers a search or holds a stepper) at most 150."""

from __future__ import annotations

import ast
from pathlib import Path

SEARCH = Path(__file__).resolve().parents[1] / "lab" / "search"
MODULE, FUNCTION, STRATEGY = 300, 60, 150


def modules() -> list[Path]:
    return sorted(SEARCH.rglob("*.py"))


def registers_search(node: ast.AST) -> bool:
    """Decorated with ``@SEARCHES.register(...)``."""
    return any(
        isinstance(d, ast.Call)
        and isinstance(d.func, ast.Attribute)
        and isinstance(d.func.value, ast.Name)
        and d.func.value.id == "SEARCHES"
        for d in getattr(node, "decorator_list", ())
    )


def is_stepper(node: ast.AST) -> bool:
    """A class with an ``advance`` method that is not the ``Stepper`` protocol itself."""
    if not isinstance(node, ast.ClassDef):
        return False
    protocol = any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases)
    methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    return "advance" in methods and not protocol


def is_strategy(tree: ast.Module) -> bool:
    """Registers a search with the decorator or defines a stepper: a search's own file (the
    toolkit presets register beam settings, not strategies)."""
    return any(registers_search(n) or is_stepper(n) for n in ast.walk(tree))


def test_modules_functions_and_strategies_are_small() -> None:
    too_long = []
    strategies = 0
    for path in modules():
        text = path.read_text()
        tree = ast.parse(text)
        lines, name = len(text.splitlines()), path.relative_to(SEARCH.parents[1])
        limit = STRATEGY if is_strategy(tree) else MODULE
        strategies += limit == STRATEGY
        if lines > limit:
            too_long.append(f"{name}: {lines} lines (at most {limit})")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = node.end_lineno - node.lineno + 1
                if size > FUNCTION:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {size} lines (<= 60)")
    assert strategies >= 10  # greedy, beam, beam_lp, presets, diverse, exact, ..., steppers
    assert not too_long, "split these:\n" + "\n".join(too_long)
