"""A tunnel client's name, `user@host:pid`: what a refusal shows as the holder of an intercept,
and how `uninstall` tells a claim left by a process of this machine that just died (its tunnel
is still closing) from a live holder's."""

from __future__ import annotations


def make_client_id(user: str, host: str, pid: int) -> str:
    return f"{user}@{host}:{pid}"


def pid_on_host(name: str, host: str) -> int | None:
    """The process id in a client name made on `host`; None for another host's or a name in
    another shape (an older client, a test's)."""
    _, at, rest = name.rpartition("@")
    claimed_host, colon, pid = rest.rpartition(":")
    if not at or not colon or claimed_host != host or not pid.isdigit():
        return None
    return int(pid)
