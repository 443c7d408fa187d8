"""Kubernetes objects as API JSON, and the restore record innerloop keeps on what it changes.

Every change innerloop makes is recorded in the annotation `innerloop.dev/restore` of the object
it changed, as JSON of exactly what was added or replaced, so any process (another laptop,
`uninstall`) can undo it, and after undoing the spec deep-equals what it was before. The record's
shape belongs to its builder (`core.agent_patch` for workloads, `core.service_patch` for
Services); this module reads and writes it.
"""

from __future__ import annotations

import json
from typing import Any

from innerloop.core.errors import UserError

Manifest = dict[str, Any]
"""A Kubernetes object as API JSON (camelCase keys), e.g. from the API server's raw response."""

RESTORE_ANNOTATION = "innerloop.dev/restore"
RECORD_VERSION = 1


def describe(obj: Manifest) -> str:
    """`kind/name`, as kubectl names an object in messages."""
    return f"{obj.get('kind', 'object').lower()}/{obj.get('metadata', {}).get('name', '?')}"


def pod_spec(workload: Manifest) -> dict[str, Any]:
    """The pod template's spec of a Deployment, StatefulSet or ReplicaSet (mutable, not a copy)."""
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def read_record(obj: Manifest) -> dict[str, Any] | None:
    """The restore record on `obj`, or None when innerloop has not changed it."""
    raw = obj.get("metadata", {}).get("annotations", {}).get(RESTORE_ANNOTATION)
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise UserError(
            f"annotation {RESTORE_ANNOTATION} on {describe(obj)} is not JSON; "
            "remove it and restore the object by hand"
        ) from exc
    if not isinstance(record, dict) or record.get("v") != RECORD_VERSION:
        raise UserError(
            f"annotation {RESTORE_ANNOTATION} on {describe(obj)} was written by "
            "another innerloop version; uninstall with that version"
        )
    return record


def write_record(obj: Manifest, record: dict[str, Any] | None) -> None:
    """Set or drop the annotation; an emptied annotations map is dropped as the API does."""
    meta: dict[str, Any] = obj.setdefault("metadata", {})
    annotations = meta.setdefault("annotations", {})
    if record is None:
        annotations.pop(RESTORE_ANNOTATION, None)
    else:
        annotations[RESTORE_ANNOTATION] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    if not annotations:
        del meta["annotations"]
