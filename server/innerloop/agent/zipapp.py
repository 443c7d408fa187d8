"""Packs the agent into one deterministic zipapp, runnable by a stock ``python3`` (3.10+).

Contents: the agent package, every ``innerloop`` module it imports (found by following its
imports, so the bundle cannot silently miss one), and the pure-Python libraries it speaks HTTP
with: h11, h2 and h2's hpack and hyperframe. Fixed timestamps and order make the
bytes depend on the sources only, so their hash names the ConfigMap ``innerloop-agent-<hash>``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import zipfile
from pathlib import Path

import h2
import h11
import hpack
import hyperframe

import innerloop

ROOT = Path(innerloop.__file__).parent.parent  # the directory that holds innerloop/
ENTRY = "innerloop/agent/__main__.py"
MAIN = b"from innerloop.agent.main import main\n\nraise SystemExit(main())\n"
SHEBANG = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)
LIBRARIES = (h11, h2, hpack, hyperframe)


def _module_file(module: str) -> str | None:
    """Relative path of an ``innerloop`` module (or package ``__init__``), if it exists."""
    base = Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (ROOT / candidate).is_file():
            return candidate.as_posix()
    return None


def _imports(path: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "innerloop"}


def agent_sources() -> list[str]:
    """Every innerloop file the agent needs, as paths relative to ROOT."""
    todo = [ENTRY]
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):  # the packages on the way count too
                found = _module_file(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found)
    return sorted(seen - {"innerloop/agent/zipapp.py"})


def build_zipapp() -> bytes:
    files = {path: (ROOT / path).read_bytes() for path in agent_sources()}
    for library in LIBRARIES:
        top = Path(library.__file__ or "").parent
        files.update({p.relative_to(top.parent).as_posix(): p.read_bytes()
                      for p in sorted(top.rglob("*.py"))})
    files["__main__.py"] = MAIN
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name], compresslevel=9)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def agent_bundle() -> tuple[str, bytes]:
    """(content hash, zipapp bytes); the ConfigMap is named ``innerloop-agent-<hash>``."""
    data = build_zipapp()
    return hashlib.sha256(data).hexdigest()[:12], data
