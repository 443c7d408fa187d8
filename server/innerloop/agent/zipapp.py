"""Packs the agent into one deterministic zipapp, runnable by a stock ``python3`` (3.10+).

Contents: the agent package, every ``innerloop`` module it imports (found by following its
imports, so the bundle cannot silently miss one), and the pure-Python libraries it speaks HTTP
with: h11, h2 and h2's hpack and hyperframe; each file without docstrings and comments, line
for line (`core.source_shrink`). Fixed timestamps and order make the
bytes depend on the sources only, so their hash names the ConfigMap ``innerloop-agent-<hash>``.

Building takes a CLI start ~0.15 s (parsing, deflate), so the bundle is cached per user, keyed
by the size and mtime of every file (and directory) it was built from.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
from pathlib import Path

import innerloop

ROOT = Path(innerloop.__file__).parent.parent  # the directory that holds innerloop/
ENTRY = "innerloop/agent/__main__.py"
MAIN = b"from innerloop.agent.main import main\n\nraise SystemExit(main())\n"
SHEBANG = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)
BUILD = 2
"""Bumped when `build_zipapp` makes other bytes from the same sources: cached bundles of an
older build are built again."""
LIBRARIES = ("h11", "h2", "hpack", "hyperframe")
"""Found, not imported: h2 is heavy and the CLI only ships it."""


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


def _library_files() -> dict[str, Path]:
    """Archive name → file, for every module of the bundled libraries."""
    files = {}
    for library in LIBRARIES:
        spec = importlib.util.find_spec(library)
        if spec is None or spec.origin is None:
            raise ImportError(f"the agent needs {library}; reinstall innerloop")
        top = Path(spec.origin).parent
        files.update({p.relative_to(top.parent).as_posix(): p for p in sorted(top.rglob("*.py"))})
    return files


def _inputs() -> dict[str, Path]:
    return {**{path: ROOT / path for path in agent_sources()}, **_library_files()}


def build_zipapp(inputs: dict[str, Path] | None = None) -> bytes:
    import io
    import zipfile  # with bz2 and lzma: ~5 ms a start that finds the bundle cached

    from innerloop.core.source_shrink import shrink  # tokenize: only when building

    files = {name: shrink(path.read_bytes()) for name, path in (inputs or _inputs()).items()}
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


def _stamps(paths: list[Path]) -> dict[str, list[int]]:
    """Size and mtime of each file and of the directories holding them (a file added to a
    library shows there)."""
    where = sorted({*paths, *(p.parent for p in paths)})
    return {str(p): [(st := p.stat()).st_size, st.st_mtime_ns] for p in where}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "innerloop" / "agent"


def _index() -> Path:
    """One index per installed copy of innerloop, so two copies never evict each other."""
    return _cache_dir() / f"index-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]}.json"


def _cached() -> tuple[str, bytes] | None:
    try:
        index = json.loads(_index().read_text())
        if index.get("root") != str(ROOT) or index.get("build") != BUILD or \
                index["stamps"] != _stamps([Path(p) for p in index["files"]]):  # another tree
            return None
        data = (_cache_dir() / f"{index['hash']}.pyz").read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    digest = hashlib.sha256(data).hexdigest()[:12]
    return (digest, data) if digest == index["hash"] else None


def _store(digest: str, data: bytes, files: list[Path], stamps: dict[str, list[int]]) -> None:
    """Best effort: a cache that cannot be written only costs the next start a build.
    ``stamps`` are from before the build, so a file edited meanwhile is built again."""
    index = {"hash": digest, "root": str(ROOT), "build": BUILD, "files": [str(p) for p in files],
             "stamps": stamps}
    try:
        folder = _cache_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, content in ((f"{digest}.pyz", data), (_index().name, json.dumps(index).encode())):
            tmp = folder / f".{name}.{os.getpid()}"
            tmp.write_bytes(content)
            tmp.replace(folder / name)
    except OSError:
        pass


@functools.lru_cache(maxsize=1)
def agent_bundle() -> tuple[str, bytes]:
    """(content hash, zipapp bytes); the ConfigMap is named ``innerloop-agent-<hash>``."""
    cached = _cached()
    if cached is not None:
        return cached
    inputs = _inputs()
    stamps = _stamps(list(inputs.values()))
    data = build_zipapp(inputs)
    digest = hashlib.sha256(data).hexdigest()[:12]
    _store(digest, data, list(inputs.values()), stamps)
    return digest, data
