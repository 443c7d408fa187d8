"""The parsed kubeconfig, kept between starts: a start whose kubeconfig has not changed reads
JSON instead of importing PyYAML and parsing YAML (~35 ms of a CLI start).

An entry holds what PyYAML made of one file, keyed by that file's real path and its device,
inode, size, mtime and ctime (any write or replace changes them), and is only kept when JSON
gives back exactly the same value (a YAML timestamp or a number as a key is not kept). It holds
the credentials the kubeconfig holds, so it lives where the user's runtime files do (`paths`:
$XDG_RUNTIME_DIR, in memory, else ~/.cache; a 0700 directory), in a 0600 file that is used only
while its owner is this user and nobody else may read it. Anything wrong with the cache is a
miss: the kubeconfig is parsed again.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from typing import Any

from innerloop.paths import runtime_dir

CACHE_DIR = "innerloop-cache"
NAME = "kubeconfig.json"
KEPT = 4
"""Kubeconfigs kept (the ones used last): most users have one; tests make many."""


def _stamp(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _entries() -> dict[str, Any]:
    """The cache file's entries; empty when it is missing, unreadable or not private."""
    try:
        fd = os.open(runtime_dir(CACHE_DIR) / NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            return {}
        try:
            entries = json.loads(f.read())
        except (OSError, ValueError):
            return {}
    return entries if isinstance(entries, dict) else {}


def cached(path: str) -> tuple[list[int], Any]:
    """The file's stamp now (read before the file itself, so a change while it is parsed is
    seen by the next start) and what the cache holds for that stamp (None: nothing)."""
    real = os.path.realpath(path)
    stamp = _stamp(real)
    entry = _entries().get(real)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return stamp, entry.get("config")
    return stamp, None


def keep(path: str, stamp: list[int], config: Any) -> None:
    """Best effort: keep `config` for the file as it was at `stamp`."""
    try:
        text = json.dumps(config)
        if json.loads(text) != config:
            return
    except (TypeError, ValueError):
        return
    real = os.path.realpath(path)
    entries = {k: v for k, v in _entries().items() if k != real and isinstance(v, dict)}
    newest = sorted(entries, key=lambda k: entries[k].get("seq", 0))[-(KEPT - 1):]
    seq = max((entries[k].get("seq", 0) for k in newest), default=0) + 1
    kept = {**{k: entries[k] for k in newest}, real: {"stamp": stamp, "seq": seq, "config": config}}
    try:
        folder = runtime_dir(CACHE_DIR)
        tmp = folder / f".{NAME}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(json.dumps(kept))
            tmp.replace(folder / NAME)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    except OSError:
        pass
