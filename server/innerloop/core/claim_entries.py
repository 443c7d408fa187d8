"""A claim as LIST reports it, and CLAIM_LIST's JSON payload (docs/protocol.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from innerloop.core.errors import UserError
from innerloop.core.filters import (
    AppProtocol,
    Mode,
    RequestFilter,
    filter_from_json,
    filter_to_json,
)
from innerloop.core.request import WhilePaused


@dataclass(frozen=True)
class ClaimEntry:
    """One claim as LIST reports it."""

    route_port: int
    client_id: str
    mode: Mode
    filter: RequestFilter
    protocol: AppProtocol
    paused: WhilePaused | None
    """The owner's whilePaused while its debuggee is stopped; None while it runs."""
    # a mirror claim's copies sent whole and dropped (paused, slow, gone); None: not counted.
    # Counters, not part of what the claim is: equality ignores them.
    copied: int | None = field(default=None, compare=False)
    dropped: int | None = field(default=None, compare=False)



def encode_entries(entries: tuple[ClaimEntry, ...]) -> str:
    """CLAIM_LIST's payload: a JSON array, one object per claim (a mirror's with its counters)."""
    return json.dumps([{"port": e.route_port, "client": e.client_id, "mode": e.mode.value,
                        "filter": filter_to_json(e.filter), "protocol": e.protocol.value,
                        "paused": None if e.paused is None else e.paused.value,
                        **({} if e.copied is None else {"copied": e.copied}),
                        **({} if e.dropped is None else {"dropped": e.dropped})}
                       for e in entries], sort_keys=True, separators=(",", ":"))


def _count(value: object) -> int | None:
    if value is None or (type(value) is int and value >= 0):
        return value
    raise TypeError(f"bad counter {value!r}")


def parse_entries(text: str) -> tuple[ClaimEntry, ...]:
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise TypeError("not an array")
        return tuple(ClaimEntry(
            int(e["port"]), str(e["client"]), Mode.parse(e["mode"]),
            filter_from_json(e["filter"]), AppProtocol.parse(e["protocol"]),
            None if e["paused"] is None else WhilePaused.parse(e["paused"]),
            _count(e.get("copied")), _count(e.get("dropped")))
            for e in items)
    except (ValueError, TypeError, KeyError, UserError) as exc:
        raise ValueError(f"bad claim list: {exc}") from None
