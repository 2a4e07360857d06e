"""Sizes held by the suite, so the lab stays readable in an afternoon: no module of ``lab/`` over
300 lines, no function or method over 60, and the file of each search strategy (a file that
registers a search with ``@SEARCHES.register``) at most 150, its shared parts living elsewhere.
The tests themselves keep one home for what they share (``tests/helpers/``): no test module
imports another test module or ``conftest``.

Lines are counted as the source has them (docstrings and comments included): what a reader
scrolls through. A function's lines run from its ``def`` to its last line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "lab"
TESTS = REPO / "tests"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
MAX_STRATEGY_LINES = 150
SEARCH_REGISTRY = "SEARCHES"  # lab.registry's registry of the "search" kind


def lab_modules() -> list[Path]:
    return sorted(LAB.rglob("*.py"))


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def long_functions(tree: ast.Module, limit: int) -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function, method or nested function over ``limit``."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}."
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (child.end_lineno or child.lineno) - child.lineno + 1
                if lines > limit:
                    yield name[:-1], lines
            yield from visit(child, name)

    return visit(tree, "")


def search_registry_names(tree: ast.Module) -> set[str]:
    """The names this module binds to ``lab.registry.SEARCHES`` (``from lab.registry import
    SEARCHES`` or ``... as S``); ``registry.SEARCHES`` attributes are matched by their name."""
    names = {SEARCH_REGISTRY}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "lab.registry":
            names |= {a.asname or a.name for a in node.names if a.name == SEARCH_REGISTRY}
    return names


def registers_a_search(tree: ast.Module) -> bool:
    """Whether the module defines a registered search: a class or function decorated with
    ``@SEARCHES.register(...)``. (A table registering many searches by calling ``register``,
    as the toolkit presets do, is not one strategy's file.)"""
    names = search_registry_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for deco in node.decorator_list:
            func = deco.func if isinstance(deco, ast.Call) else deco
            if not (isinstance(func, ast.Attribute) and func.attr == "register"):
                continue
            owner = func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if owner_name in names:
                return True
    return False


def defines_a_stepper(tree: ast.Module) -> bool:
    """Whether the module holds a step-by-step search's selection rule on the decoding driver:
    a class with an ``advance`` method that is not the ``Stepper`` protocol itself."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            protocol = any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases)
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            if "advance" in methods and not protocol:
                return True
    return False


def is_strategy(path: Path) -> bool:
    """A search's own file: it registers a search or holds a stepper."""
    tree = parsed(path)
    return registers_a_search(tree) or defines_a_stepper(tree)


def n_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# --- the rules ------------------------------------------------------------------------------
def test_no_lab_module_is_over_300_lines():
    over = [f"{rel(p)} ({n_lines(p)})" for p in lab_modules() if n_lines(p) > MAX_MODULE_LINES]
    assert not over, f"modules over {MAX_MODULE_LINES} lines; split them by job: {over}"


def test_no_lab_function_is_over_60_lines():
    over = [
        f"{rel(p)}:{name} ({lines})"
        for p in lab_modules()
        for name, lines in long_functions(parsed(p), MAX_FUNCTION_LINES)
    ]
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines; give their steps names: {over}"


def test_each_search_strategy_file_is_at_most_150_lines():
    over = [
        f"{rel(p)} ({n_lines(p)})"
        for p in lab_modules()
        if is_strategy(p) and n_lines(p) > MAX_STRATEGY_LINES
    ]
    assert not over, (
        f"search strategy files over {MAX_STRATEGY_LINES} lines; move what is shared out of "
        f"them: {over}"
    )


# --- the rules see what they are meant to -----------------------------------------------------
def test_the_strategy_rule_finds_the_registered_searches():
    """Found by what they register, wherever the files live: greedy and beam among them, the
    search registry itself and the toolkit presets' table not."""
    from lab.registry import SEARCHES

    strategies = {p for p in lab_modules() if registers_a_search(parsed(p))}
    for name in ("greedy", "beam", "exact", "sample"):
        module = SEARCHES.get(name).__module__
        assert LAB.parent / (module.replace(".", "/") + ".py") in strategies, name
    assert LAB / "registry.py" not in strategies
    presets = SEARCHES.get("beam_fairseq").__module__.replace(".", "/") + ".py"
    assert LAB.parent / presets not in strategies


def test_a_long_method_or_nested_function_is_seen():
    body = "\n".join(f"        x{i} = {i}" for i in range(60))
    source = f"class A:\n    def f(self):\n{body}\n        def g():\n            pass\n"
    assert list(long_functions(ast.parse(source), 60)) == [("A.f", 63)]  # def + 60 + 2
    assert list(long_functions(ast.parse(source), 63)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from lab.registry import SEARCHES\n@SEARCHES.register('x')\nclass X: ...", True),
        ("from lab.registry import SEARCHES as S\n@S.register('x')\ndef x(): ...", True),
        ("import lab.registry as r\n@r.SEARCHES.register('x')\nclass X: ...", True),
        ("from lab.registry import PROCESSORS\n@PROCESSORS.register('x')\nclass X: ...", False),
        ("from lab.registry import SEARCHES\nSEARCHES.register('x')(object)", False),
    ],
)
def test_what_counts_as_registering_a_search(source: str, expected: bool):
    assert registers_a_search(ast.parse(source)) is expected


# --- tests share through tests/helpers, never through each other ------------------------------
def imported_modules(tree: ast.Module) -> Iterator[str]:
    """Every module an ``import`` or ``from ... import`` names, at any depth of the file."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)  # from tests import x


def is_test_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def test_no_test_module_imports_another_test_module():
    offenders = [
        f"{rel(p)} imports {name}"
        for p in sorted(TESTS.rglob("*.py"))
        if "plugin_example" not in p.parts
        for name in sorted(set(imported_modules(parsed(p))))
        if is_test_module(name) and name.split(".")[0] in ("tests", name)
    ]
    assert not offenders, f"share through tests/helpers instead: {offenders}"


def test_a_stepper_counts_as_a_strategy_and_the_protocol_does_not():
    stepper = "class Top2:\n    def advance(self, log_probs, t):\n        pass\n"
    protocol = "class Stepper(Protocol):\n    def advance(self, log_probs, t): ...\n"
    assert defines_a_stepper(ast.parse(stepper))
    assert not defines_a_stepper(ast.parse(protocol))
