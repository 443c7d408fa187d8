"""What `innerloop intercept` checks on this machine before it touches the cluster: the command
after `--` can run, the env files can be written, and what already listens on the local port.

The local port is known only once the target is resolved (`--port http` takes the container's
port), so its check is handed to the start, which runs it before changing anything.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from innerloop.core.errors import UserError
from innerloop.core.report import Report

ALLOW_FLAG = "--allow-port-in-use"


def add_port_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(ALLOW_FLAG, action="store_true", help="with a command after --: intercept "
                        "even though another process already listens on the local port")


def check_command(cmd: Sequence[str]) -> None:
    """The command after `--` exists and may be executed (as the shell would find it)."""
    if not cmd:
        return
    program = cmd[0]
    found = shutil.which(program) if os.sep not in program else program
    if found is None or not os.path.exists(found):
        raise UserError(f"cannot run {program!r}: no such command"
                        f"{' on PATH' if os.sep not in program else ''}; fix the command after --")
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise UserError(f"cannot run {program!r}: {found} is not an executable file; "
                        f"fix the command after -- (or chmod +x {found})")


def check_writable(path: Path | None, flag: str) -> None:
    """The file's directory exists and we may create the file there."""
    if path is None:
        return
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UserError(f"{flag} {path}: directory {directory} does not exist; create it first")
    if not os.access(directory, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path}: not writable by you; pick another path")
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory; name a file")


def port_in_use(port: int) -> bool:
    """Something listens on 127.0.0.1:port (a bind there fails), whoever it is."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def listener_inodes(port: int, tables: Sequence[str]) -> set[str]:
    """Socket inodes listening on `port` in /proc/net/tcp{,6} text (state 0A is LISTEN)."""
    inodes = set()
    for text in tables:
        for row in text.splitlines()[1:]:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def who_listens(port: int, proc: Path = Path("/proc")) -> str | None:
    """`python app.py (pid 1234)` for the process listening on `port`, best effort (Linux:
    /proc/net/tcp and /proc/*/fd; None where that cannot be read, e.g. another user's)."""
    tables = []
    for name in ("tcp", "tcp6"):
        try:
            tables.append((proc / "net" / name).read_text())
        except OSError:
            continue
    wanted = {f"socket:[{inode}]" for inode in listener_inodes(port, tables)}
    if not wanted:
        return None
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            if _socket_links(pid_dir / "fd") & wanted:
                argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
                shown = " ".join(a.decode(errors="replace") for a in argv if a) or pid_dir.name
                return f"{shown} (pid {pid_dir.name})"
        except OSError:
            continue
    return None


def _socket_links(fd_dir: Path) -> set[str]:
    """What a process's descriptors point at; one closed meanwhile is skipped."""
    links = set()
    for fd in fd_dir.iterdir():
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue
    return links


def local_port_check(launches: bool, allow: bool, report: Report) -> Callable[[int], None]:
    """The check of the local port, run once it is known. With a command after `--` (which is
    going to listen there) a listener is something else: refused unless `allow`. Without one,
    it is normally the user's own app, started first: named, not refused."""

    def name(port: int) -> str:
        return who_listens(port) or "a process innerloop cannot name"

    def check(port: int) -> None:
        if not port_in_use(port):
            return
        if launches and not allow:
            raise UserError(f"127.0.0.1:{port} is already in use by {name(port)}, so the "
                            f"command after -- could not listen there; stop it, pick another "
                            f"--port, or pass {ALLOW_FLAG} if that process is the one to get "
                            "the traffic")
        # Only a note: naming reads /proc/net/tcp and every process's fds (tens of ms where
        # sockets are many), so it is said when known, not waited for by the start.
        threading.Thread(target=lambda: report(f"127.0.0.1:{port} is served by {name(port)}"),
                         name="name-listener", daemon=True).start()

    return check


def before_intercept(cmd: Sequence[str], env_file: Path | None, env_json: Path | None,
                     allow_port_in_use: bool, report: Report) -> Callable[[int], None]:
    """Everything checkable before the cluster is asked; the local port's check for later."""
    check_command(cmd)
    check_writable(env_file, "--env-file")
    check_writable(env_json, "--env-json")
    return local_port_check(bool(cmd), allow_port_in_use, report)


def raise_fd_limit() -> None:
    """Open files up to the hard limit: each connection an intercept carries holds a socket
    here (1,000 at once pass a default soft limit of 1,024, or macOS's 256)."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):  # macOS refuses above OPEN_MAX: keep what there is
            pass
