"""Where Python code reads environment variables: `os.environ["X"]`, `os.environ.get("X")`,
`os.getenv("X")` (also via `from os import environ, getenv`), found with `ast`."""

from __future__ import annotations

import ast
from dataclasses import dataclass

CALL_OPENERS = ("environ[", "environ.get(", "getenv(")
"""What precedes the quote of a variable name being typed (for completion)."""


@dataclass(frozen=True)
class EnvRead:
    name: str
    line: int
    """0-based line of the string literal."""
    start: int
    """0-based column range of the literal, quotes included (UTF-8 offsets, as `ast` gives)."""
    end: int


def env_reads(source: str) -> list[EnvRead]:
    """Every read of a variable named by a string literal; [] when the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found: list[EnvRead] = []
    for node in ast.walk(tree):
        literal: ast.expr | None = None
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            literal = node.slice
        elif isinstance(node, ast.Call) and node.args and _is_getter(node.func):
            literal = node.args[0]
        # An empty name is one being typed (completion's job), not a read to warn about.
        if (isinstance(literal, ast.Constant) and isinstance(literal.value, str) and literal.value
                and literal.end_col_offset is not None and literal.lineno == literal.end_lineno):
            found.append(EnvRead(literal.value, literal.lineno - 1, literal.col_offset,
                                 literal.end_col_offset))
    return sorted(found, key=lambda r: (r.line, r.start))


def completing_name(line_prefix: str) -> str | None:
    """The part of a variable name typed so far when the cursor is inside `os.getenv("…`
    (or the other reads), else None."""
    head = line_prefix.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
    typed = line_prefix[len(head):]
    if not head or head[-1] not in "\"'":
        return None
    before = head[:-1].rstrip()
    return typed if before.endswith(CALL_OPENERS) else None


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def _is_getter(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return (func.attr == "get" and _is_environ(func.value)) or func.attr == "getenv"
    return isinstance(func, ast.Name) and func.id == "getenv"
