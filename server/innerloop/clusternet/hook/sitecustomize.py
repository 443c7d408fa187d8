"""innerloop's resolver hook: cluster names for a Python process that innerloop launched.

Loaded at interpreter start because its directory is first on PYTHONPATH; active only when
INNERLOOP_NET names innerloop's control socket. It asks that socket what a host is (once per
(host, port)) and answers `getaddrinfo`, `gethostbyname(_ex)` and `socket.connect` with a
loopback forwarder; with INNERLOOP_VOLUMES, `_innerloop_volumes` maps the workload's volume
mounts to their local copies. Stdlib only, Python 3.8+; never logs; never raises at import. It then runs
the next `sitecustomize` on sys.path, so one the user had still runs. docs/network.md, "The hook".
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # no `typing` import at every interpreter start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_NONAME = "Name or service not known"  # glibc's text for EAI_NONAME, what a pod's process sees
_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local")  # refused even when innerloop is gone
_LOOPBACK = ("localhost", "::1", "")
_TIMEOUT = 5.0
_ALIASES = "127.243."  # a cluster name's address here; connect() maps it to the forwarder


def _install(control: str) -> None:
    import socket

    cache: dict[tuple[str, int | None], str | tuple[str, int]] = {}
    alias_of: dict[str, str] = {}  # cluster name -> its alias
    name_of: dict[str, str] = {}  # alias -> the name

    def alias(host: str) -> str:
        """The address a cluster name resolves to: one per name, port-agnostic (clients such
        as anyio keep only the address from getaddrinfo and connect to the port they asked)."""
        if host not in alias_of:
            n = len(alias_of) + 1
            alias_of[host] = f"{_ALIASES}{n >> 8 & 255}.{n & 255}"
            name_of[alias_of[host]] = host
        return alias_of[host]

    def ask(host: str, port: int | None) -> str | tuple[str, int] | None:
        """"noname", "notcluster", the forwarder (host, port), or None: no usable answer."""
        try:
            import json

            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(_TIMEOUT)
                s.connect(control)
                s.sendall(json.dumps({"op": "resolve", "host": host, "port": port}).encode()
                          + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            reply = json.loads(data)
            if reply.get("ok") is True:
                return str(reply["host"]), int(reply["port"])
            if reply.get("error") in ("noname", "notcluster"):
                return str(reply["error"])
        except Exception:  # noqa: BLE001, S110 (unreachable or garbled: resolve without us)
            pass
        return None

    def forwarder(host: Any, port: int | None) -> tuple[str, int] | None:
        """Where to connect instead, or None: resolve as before. Raises EAI_NONAME."""
        host = text(host)
        if isinstance(host, str):
            v4 = host[7:] if host.startswith("::ffff:") else host  # noqa: FURB188 (3.8 has no removeprefix)
            host = name_of.get(v4, host)
        if not isinstance(host, str) or host.lower().rstrip(".") in _LOOPBACK \
                or host.startswith("127."):
            return None
        answer = cache.get((host, port))
        if answer is None:
            answer = ask(host, port)
            if answer is None:  # innerloop is gone: a cluster-shaped name must still not leak
                shaped = host.lower().rstrip(".").endswith(_CLUSTER_SUFFIXES)
                answer = "noname" if shaped else "notcluster"
            else:
                cache[(host, port)] = answer
        if answer == "noname":
            raise socket.gaierror(socket.EAI_NONAME, _NONAME)
        return None if isinstance(answer, str) else answer

    def text(host: Any) -> Any:
        """A host as getaddrinfo takes it (str, bytes, None) as text where it can be."""
        return host.decode("ascii", "replace") if isinstance(host, bytes) else host

    def wrap(original: Callable[..., Any], wrapper: Callable[..., Any]) -> Callable[..., Any]:
        """The wrapper reaches the original only through `__wrapped__` (tests replace it)."""
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        wrapper.__name__, wrapper.__doc__ = original.__name__, original.__doc__
        return wrapper

    def port_number(port: Any) -> int | None:
        if isinstance(port, bytes):
            port = port.decode("ascii")
        if isinstance(port, str) and not port.isdigit():
            return socket.getservbyname(port, "tcp")
        return None if port is None else int(port)

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> Any:
        try:
            number = port_number(port)
        except (OSError, ValueError, UnicodeError):
            number = -1  # an unknown service: the original says so, unless the name is ours
        target = forwarder(host, None if number == -1 else number)
        if target is None:
            return getaddrinfo.__wrapped__(host, port, family, type, proto, flags)  # type: ignore[attr-defined]
        if number == -1 or type not in (0, socket.SOCK_STREAM) or proto not in (0, 6):
            raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")
        canon, address = host if flags & socket.AI_CANONNAME else "", alias(text(host))
        if family in (0, socket.AF_INET):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, canon, (address, number or 0))]
        if family == socket.AF_INET6:  # v4-mapped: a dual-stack AF_INET6 socket reaches 127.0.0.1
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, canon,
                     ("::ffff:" + address, number or 0, 0, 0))]
        raise socket.gaierror(socket.EAI_FAMILY, "ai_family not supported")

    def gethostbyname(host: Any) -> Any:
        target = forwarder(host, None)
        return gethostbyname.__wrapped__(host) if target is None else alias(text(host))  # type: ignore[attr-defined]

    def gethostbyname_ex(host: Any) -> Any:
        target = forwarder(host, None)
        if target is None:
            return gethostbyname_ex.__wrapped__(host)  # type: ignore[attr-defined]
        return host, [], [alias(text(host))]

    def mapped(sock: Any, address: Any) -> Any:
        """A (host, port) to connect to, for an IP socket: the forwarder if host is an alias, a
        cluster name or a ClusterIP (asyncio, anyio, aiohttp skip getaddrinfo for IP literals)."""
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) \
                and len(address) >= 2 and isinstance(address[1], int):
            target = forwarder(address[0], address[1])
            if target is not None:
                if sock.family == socket.AF_INET6:
                    return ("::ffff:" + target[0], target[1]) + tuple(address[2:])
                return target
        return address

    def connect(self: Any, address: Any) -> Any:
        return connect.__wrapped__(self, mapped(self, address))  # type: ignore[attr-defined]

    def connect_ex(self: Any, address: Any) -> Any:
        return connect_ex.__wrapped__(self, mapped(self, address))  # type: ignore[attr-defined]

    socket.getaddrinfo = wrap(socket.getaddrinfo, getaddrinfo)
    socket.gethostbyname = wrap(socket.gethostbyname, gethostbyname)
    socket.gethostbyname_ex = wrap(socket.gethostbyname_ex, gethostbyname_ex)
    socket.socket.connect = wrap(socket.socket.connect, connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = wrap(socket.socket.connect_ex, connect_ex)  # type: ignore[method-assign]


def _next_sitecustomize() -> Any:
    """The module spec of the `sitecustomize` this one shadows: the next one on sys.path."""
    from importlib.machinery import PathFinder

    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    paths = [os.path.realpath(p or os.curdir) for p in sys.path]
    if here not in paths:
        return None
    return PathFinder.find_spec("sitecustomize", sys.path[paths.index(here) + 1:])


if os.environ.get("INNERLOOP_NET"):
    try:
        _install(os.environ["INNERLOOP_NET"])
    except Exception:  # noqa: BLE001, S110 (never raise at interpreter start, never log)
        pass
if os.environ.get("INNERLOOP_VOLUMES"):  # the workload's volumes at their container paths
    try:
        from _innerloop_volumes import install as _install_volumes  # type: ignore[import-not-found]

        _install_volumes(os.environ["INNERLOOP_VOLUMES"])
    except Exception:  # noqa: BLE001, S110 (as above)
        pass
try:
    _spec = _next_sitecustomize()
except Exception:  # noqa: BLE001 (as above)
    _spec = None
if _spec is not None and _spec.loader is not None:
    import importlib.util

    sys.modules["sitecustomize"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["sitecustomize"])  # its errors: site.py reports them
