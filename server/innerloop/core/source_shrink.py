"""Python source made smaller for the agent bundle: docstrings emptied and comments dropped,
every line kept where it was, so a traceback from the agent still points at the source line.

The bundle lives in a ConfigMap (1 MiB at most, and every byte is read by each pod start);
a third of h2's and h11's bytes are documentation the agent never reads.
"""

from __future__ import annotations

import ast
import io
import tokenize

_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _docstrings(tree: ast.Module) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, _DOCUMENTED) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                found.append(first.value)
    return found


def _offsets(source: bytes) -> list[int]:
    """Byte offset where each line (1-based) starts; ast's columns are UTF-8 byte offsets."""
    starts = [0, 0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _without_docstrings(source: bytes) -> bytes:
    starts = _offsets(source)
    out = source
    spans = sorted(((starts[d.lineno] + d.col_offset, starts[d.end_lineno or d.lineno]
                     + (d.end_col_offset or 0), (d.end_lineno or d.lineno) - d.lineno)
                    for d in _docstrings(ast.parse(source))), reverse=True)
    for begin, end, lines in spans:  # from the end, so earlier offsets stay true
        line_end = out.find(b"\n", end)
        line_end = len(out) if line_end < 0 else line_end + 1
        # the lines the docstring spanned come back as blank lines after its statement
        out = out[:begin] + b'""' + out[end:line_end] + b"\n" * lines + out[line_end:]
    return out


def _without_comments(source: bytes) -> bytes:
    lines = source.splitlines(keepends=True)
    tokens = tokenize.tokenize(io.BytesIO(source).readline)
    comments = [t for t in tokens if t.type == tokenize.COMMENT]
    for token in reversed(comments):  # one per line at most, so later columns stay true
        row, col = token.start
        line = lines[row - 1]
        text = line.decode("utf-8")
        kept = text[:col].rstrip()
        ending = text[len(text.rstrip("\r\n")):]
        lines[row - 1] = (kept + ending).encode("utf-8")
    return b"".join(lines)


def shrink(source: bytes) -> bytes:
    """The same module, line for line, without docstrings (each becomes ``""``) or comments
    (an encoding declaration is a comment too: the result is UTF-8, Python's default)."""
    return _without_comments(_without_docstrings(source))
