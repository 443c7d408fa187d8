"""The agent bundle's sources without docstrings and comments: the same program, line for
line (so the agent's tracebacks point at the real source lines)."""

from __future__ import annotations

import ast

import pytest
from innerloop.agent import zipapp
from innerloop.core.source_shrink import shrink


def _blank_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                first.value.value = ""
    return tree


def _statement_lines(tree: ast.Module) -> list[tuple[str, int]]:
    return [(type(n).__name__, n.lineno) for n in ast.walk(tree) if isinstance(n, ast.stmt)]


SAMPLE = b'''# -*- coding: utf-8 -*-
"""Module doc,
on two lines."""
from __future__ import annotations

import os  # why os


class Thing:
    """Class doc."""

    def method(self, x: str = "# not a comment") -> str:
        """Method doc
        with more lines
        """
        return x + "'#'"  # trailing

    def only_doc(self) -> None:
        """Nothing but a docstring."""


async def run() -> None:
    """Doc."""; await some()
    text = """a string, not a docstring"""
'''


def test_a_sample_loses_its_docstrings_and_comments_and_keeps_every_line() -> None:
    out = shrink(SAMPLE)
    assert out.count(b"\n") == SAMPLE.count(b"\n")
    for gone in (b"Module doc", b"Class doc", b"Method doc", b"more lines", b"Nothing but",
                 b"Doc.", b"coding", b"why os", b"trailing"):
        assert gone not in out
    assert b'"# not a comment"' in out and b"\"'#'\"" in out and b'"""a string, not a docstring"""' in out
    assert b'""; await some()' in out
    assert ast.dump(ast.parse(out)) == ast.dump(_blank_docstrings(ast.parse(SAMPLE)))
    assert _statement_lines(ast.parse(out)) == _statement_lines(ast.parse(SAMPLE))


INPUTS = zipapp._inputs()


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_every_bundled_file_is_the_same_program_on_the_same_lines(name: str) -> None:
    source = INPUTS[name].read_bytes()
    out = shrink(source)
    assert ast.dump(ast.parse(out)) == ast.dump(_blank_docstrings(ast.parse(source)))
    assert _statement_lines(ast.parse(out)) == _statement_lines(ast.parse(source))
    assert len(out) < len(source) or b"#" not in source and b'"""' not in source
