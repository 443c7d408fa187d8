"""innerloop's volume hook: the workload's volumes at their container paths, for reads.

Imported by innerloop's `sitecustomize` when INNERLOOP_VOLUMES names the local copies of the
workload container's volumes. Reads the mount table (`mounts.json` there, written 0600 by
innerloop) once and maps a container path (`/etc/app/config.yaml`,
`/var/run/secrets/kubernetes.io/serviceaccount/token`) to its copy in `open`/`io.open`,
`os.open`, `os.stat`/`lstat` (so `os.path.exists`/`isfile`/`isdir` and `pathlib`), `os.access`,
`os.listdir`, `os.scandir`, and the `ssl` context's CA and certificate loading (what
`kubernetes.config.load_incluster_config()` hands to urllib3). Writing to a mapped path fails
as on the pod's read-only mount: OSError EROFS. Errors name the container path. Stdlib only,
Python 3.8+; docs/network.md, "Volumes".
"""

from __future__ import annotations

import builtins
import errno
import io
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def local(table: Sequence[tuple[str, str]], path: str) -> str | None:
    """The copy an absolute container path reads, or None. The twin of
    `innerloop.core.volumes.local_path` (tests/integration/test_volume_hook.py runs both)."""
    if not path.startswith("/"):
        return None
    path = os.path.normpath(path)
    for mounted, copy in table:
        if path == mounted:
            return copy
        if path.startswith(mounted + "/"):
            return copy + path[len(mounted):]
    return None


def install(root: str) -> None:
    import json

    with builtins.open(os.path.join(root, "mounts.json"), "rb") as f:
        table = [(str(c), str(p)) for c, p in json.loads(f.read().decode())["mounts"]]
    if not table:
        return

    def mapped(path: Any) -> Any:
        """The copy's path (str or bytes, as given), or `path` itself: not a mapped path."""
        if isinstance(path, int):
            return path
        try:
            text = os.fspath(path)
        except TypeError:
            return path
        found = local(table, os.fsdecode(text) if isinstance(text, bytes) else text)
        if found is None:
            return path
        return os.fsencode(found) if isinstance(text, bytes) else found

    def wrap(original: Callable[..., Any], writes: Callable[..., bool] | None = None
             ) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not args:  # os.listdir(), os.scandir(): the current directory
                return original(**kwargs)
            path, args = args[0], args[1:]
            target = mapped(path)
            if target is path:
                return original(path, *args, **kwargs)
            if writes is not None and writes(*args, **kwargs):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
            try:
                return original(target, *args, **kwargs)
            except OSError as exc:  # name what the program asked for, as in the pod
                if exc.filename == target:
                    exc.filename = os.fspath(path)
                raise

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        wrapper.__name__, wrapper.__doc__ = original.__name__, original.__doc__
        return wrapper

    def open_writes(mode: str = "r", *args: Any, **kwargs: Any) -> bool:
        return any(c in str(kwargs.get("mode", mode)) for c in "wax+")

    def os_open_writes(flags: int = 0, *args: Any, **kwargs: Any) -> bool:
        return bool(kwargs.get("flags", flags) & _WRITE_FLAGS)

    opener = wrap(builtins.open, open_writes)
    builtins.open = io.open = opener
    os.open = wrap(os.open, os_open_writes)
    for name in ("stat", "lstat", "access", "listdir", "scandir"):
        setattr(os, name, wrap(getattr(os, name)))

    import ssl

    def files(original: Callable[..., Any], *names: str) -> Callable[..., Any]:
        """A context method whose file arguments (positional or by name) are mapped."""
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            args = tuple(mapped(a) if i < len(names) else a for i, a in enumerate(args))
            kwargs = {k: mapped(v) if k in names else v for k, v in kwargs.items()}
            return original(self, *args, **kwargs)

        method.__wrapped__ = original  # type: ignore[attr-defined]
        return method

    ctx = ssl.SSLContext
    ctx.load_verify_locations = files(  # type: ignore[method-assign]
        ctx.load_verify_locations, "cafile", "capath")
    ctx.load_cert_chain = files(ctx.load_cert_chain, "certfile", "keyfile")  # type: ignore[method-assign]
