"""innerloop.core stays pure: no I/O library may be imported anywhere inside it."""

from __future__ import annotations

import ast
from pathlib import Path

import innerloop.core

FORBIDDEN = {
    "asyncio", "socket", "selectors", "ssl", "subprocess", "threading",
    "websockets", "kubernetes", "pygls", "lsprotocol", "debugpy", "h11",
}
CORE = Path(innerloop.core.__file__).parent


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_imported_roots_sees_every_import_form() -> None:
    src = "import asyncio\nfrom socket import socket\nimport os.path as p\nfrom . import x\n"
    assert imported_roots(src) == {"asyncio", "socket", "os"}


def test_core_imports_no_io_library() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert files, "core has no modules"
    offenders = {
        str(f.relative_to(CORE)): sorted(imported_roots(f.read_text()) & FORBIDDEN)
        for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}
