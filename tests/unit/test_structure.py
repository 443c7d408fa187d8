"""The shape of the server package: one meaning per class name, imports that never run in a
circle (type-only ones included), and grab-bag modules kept from growing back."""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

import innerloop

PACKAGE = Path(innerloop.__file__).parent
MAX_LINES = 420
"""A module longer than this is doing more than one thing (issue 7: none over ~400 lines)."""


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["innerloop", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


@functools.cache
def parsed(path: Path) -> ast.Module:
    """Each module parsed once for all the checks below."""
    return ast.parse(path.read_text())


def imported(path: Path, known: set[str]) -> set[str]:
    """innerloop modules that `path` imports anywhere: top level, functions, TYPE_CHECKING."""
    out: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in known:
                out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names} & known
    return out


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported(path, known) - {name} for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_type_only_circle() -> None:
    """The checker itself: a circle closed by one edge is found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_graph_sees_imports_inside_type_checking_blocks(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from innerloop.core import errors\n")
    assert imported(source, {"innerloop.core", "innerloop.core.errors"}) == {
        "innerloop.core", "innerloop.core.errors"}


def test_no_two_public_classes_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for name, path in modules().items():
        for node in parsed(path).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where[node.name].append(name)
    assert {cls: mods for cls, mods in where.items() if len(mods) > 1} == {}


def test_the_debug_adapter_does_not_know_the_intercept_manager() -> None:
    """dap/ is wired to the manager by its caller, not by a `module:attribute` string."""
    offenders = [name for name, path in modules().items()
                 if name.startswith("innerloop.dap") and "innerloop.intercepts" in path.read_text()]
    assert offenders == []


def test_no_grab_bag_modules() -> None:
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


REPO = PACKAGE.parents[1]
UNDERSCORE_API = {"_exit", "_replace", "_asdict", "_fields", "_make"}
"""Public names that start with an underscore: os._exit and namedtuple's methods."""


def private_names(tree: ast.AST) -> set[str]:
    """The `_names` a module defines: functions, classes, methods, and `self._x` attributes."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            found.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
    return {name for name in found if name.startswith("_") and not name.startswith("__")}


def foreign_private_access(tree: ast.Module) -> list[str]:
    """`x._name` where `x` is not self, cls or super() and this module does not define `_name`:
    a reach into another module's privates (as `ReadyPods` calling the gateway's once did)."""
    own = private_names(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and node.attr not in own | UNDERSCORE_API):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("innerloop"):
            found += [f"{node.lineno}: from {node.module} import {alias.name}"
                      for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_the_private_access_finder_sees_a_reach_into_another_object() -> None:
    def found(source: str) -> list[str]:
        return foreign_private_access(ast.parse(source))

    assert found("def f(gw):\n    return gw._request()\n") == ["2: gw._request"]
    assert found("class A:\n    def _x(self): ...\ndef f(a: A):\n    return a._x()\n") == []
    assert found("class B:\n    def f(self):\n        return self._x._y\n") == ["3: self._x._y"]
    assert found("from innerloop.cli import _manager_config\n") == [
        "1: from innerloop.cli import _manager_config"]


def test_no_module_reaches_into_another_modules_privates() -> None:
    """Public functions across classes; in particular only `Link` touches its relays table."""
    found = {name: hits for name, path in modules().items()
             if (hits := foreign_private_access(parsed(path)))}
    assert found == {}


def imports_of(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_tools_and_bench_do_not_import_the_tests() -> None:
    """Shared code lives in tools/ (the tests import it, not the other way round)."""
    offenders = {str(path.relative_to(REPO)): sorted(bad)
                 for folder in ("tools", "bench") for path in sorted((REPO / folder).rglob("*.py"))
                 if (bad := {m for m in imports_of(path) if m.split(".")[0] == "tests"})}
    assert offenders == {}


def test_session_names_only_the_debug_session() -> None:
    """Modules, classes and functions named for a session are the debug adapter's (dap/ and
    core/dap_*); the manager is the intercept manager, never a "session manager"."""
    where = []
    for name, path in modules().items():
        debug = name.startswith(("innerloop.dap", "innerloop.core.dap_"))
        if "session manager" in path.read_text().lower():
            where.append(f"{name}: says 'session manager'")
        if debug:
            continue
        if "session" in name.rsplit(".", 1)[-1]:
            where.append(name)
        where += [f"{name}.{node.name}" for node in ast.walk(parsed(path))
                  if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and "session" in node.name.lower()]
    assert where == []


def package_rows(markdown: str) -> list[list[str]]:
    """The first cell of each row of the Packages table: the `innerloop.x` names it lists."""
    section = markdown.split("\n## Packages\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `innerloop")]
    return [re.findall(r"`(innerloop[\w.]*)`", row.split(" | ", 1)[0]) for row in rows]


def row_of(module: str, rows: list[list[str]]) -> int | None:
    for rank, names in enumerate(rows):
        if any(module == name or module.startswith(name + ".") for name in names):
            return rank
    return None


def test_architecture_table_lists_every_package_and_imports_only_go_down_it() -> None:
    """docs/architecture.md's package table is the layering: each module may import its own
    row and the rows above (the root `innerloop`, its version, from anywhere)."""
    rows = package_rows((REPO / "docs" / "architecture.md").read_text())
    graph = import_graph()
    assert [m for m in graph if m != "innerloop" and row_of(m, rows) is None] == []
    upward = [f"{m} -> {d}" for m, deps in graph.items() if m != "innerloop" for d in deps
              if d != "innerloop" and row_of(d, rows) > row_of(m, rows)]  # type: ignore[operator]
    assert upward == []


def dispatch_by_name(tree: ast.Module) -> list[str]:
    """`getattr(self, <computed name>)`: a method chosen by a string built at run time, which
    neither grep nor mypy's exhaustiveness checks can follow (use a table or a `match`)."""
    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "getattr" and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls")
            and not isinstance(node.args[1], ast.Constant)]


def test_no_dispatch_by_method_name() -> None:
    assert dispatch_by_name(ast.parse("class A:\n    def f(self, e):\n"
                                      "        return getattr(self, '_on_' + e.name)()\n")) == [
        "3: getattr(self, '_on_' + e.name)"]
    found = {name: hits for name, path in modules().items()
             if (hits := dispatch_by_name(parsed(path)))}
    assert found == {}
