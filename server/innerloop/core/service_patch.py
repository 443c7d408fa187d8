"""The Service takeover: one port's targetPort pointed at the agent's route, and its reverse.

Builders take a Service as API JSON and return a changed copy. The change is recorded on the
Service (`core.manifest.read_record`) as
``{"v": 1, "ports": [{"port": "80/http", "targetPort": 8080 | "http" | null}]}``
(null: the port had no targetPort), so `restore_service` puts back exactly what was there.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from innerloop.core.errors import UserError
from innerloop.core.manifest import RECORD_VERSION, Manifest, read_record, write_record


def port_label(port: int, name: str | None) -> str:
    """How a service port is named in the restore record: `80/http`, or `80` when unnamed."""
    return f"{port}/{name}" if name else str(port)


def _label_of(entry: Manifest) -> str:
    return port_label(int(entry["port"]), entry.get("name"))


def take_over_service(service: Manifest, label: str, listen_port: int) -> Manifest:
    """The Service with port `label`'s targetPort pointing at the agent's route `listen_port`."""
    out = copy.deepcopy(service)
    record = read_record(out) or {"v": RECORD_VERSION, "ports": []}
    entries = [p for p in out.get("spec", {}).get("ports", []) if _label_of(p) == label]
    if not entries:
        raise UserError(f"service {out['metadata']['name']!r} has no port {label}")
    entry = entries[0]
    if not any(r["port"] == label for r in record["ports"]):
        record["ports"].append({"port": label, "targetPort": entry.get("targetPort")})
    entry["targetPort"] = listen_port
    write_record(out, record)
    return out


def restore_service(service: Manifest, labels: Iterable[str] | None = None) -> Manifest:
    """The exact reverse of take_over_service, for the given ports (default: all taken over)."""
    out = copy.deepcopy(service)
    record = read_record(out)
    if record is None:
        return out
    wanted = None if labels is None else set(labels)
    keep = []
    for r in record["ports"]:
        if wanted is not None and r["port"] not in wanted:
            keep.append(r)
            continue
        for entry in out["spec"]["ports"]:
            if _label_of(entry) == r["port"]:
                if r["targetPort"] is None:
                    entry.pop("targetPort", None)
                else:
                    entry["targetPort"] = r["targetPort"]
    record["ports"] = keep
    write_record(out, record if keep else None)
    return out


def service_takeover(service: Manifest) -> dict[str, int | str | None]:
    """Port label → original targetPort (None: unset), for every port taken over."""
    record = read_record(service)
    if record is None:
        return {}
    return {r["port"]: r["targetPort"] for r in record["ports"]}
