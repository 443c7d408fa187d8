"""Write a one-layer OCI image archive from a root filesystem directory (no registry needed).

The archive is an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/...), which
`ctr images import` accepts; the index annotation names the image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
_SKIP_CONTENTS = {"proc", "sys", "dev", "run", "tmp"}
"""Kept as empty directories: the runtime mounts over them; device nodes stay out of the layer."""


@dataclass(frozen=True)
class ImageSpec:
    """What the image runs by default."""

    name: str  # e.g. localhost/python3:1
    cmd: Sequence[str]
    env: Mapping[str, str] = field(
        default_factory=lambda: {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        }
    )
    workdir: str = "/"


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """Every path under root in sorted order, as (path, name in the layer)."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir in _SKIP_CONTENTS:
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            yield Path(dirpath) / name, rel


def _layer(root: Path, out: IO[bytes]) -> tuple[str, int]:
    """Write the uncompressed layer tar; return its sha256 and size."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, rel in _walk(root):
            tar.add(path, arcname=rel, recursive=False)
    size = out.tell()
    out.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: out.read(1 << 20), b""):
        digest.update(chunk)
    out.seek(0)
    return digest.hexdigest(), size


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _blob(tar: tarfile.TarFile, obj: object) -> tuple[str, int]:
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    _add_bytes(tar, f"blobs/sha256/{digest}", data)
    return digest, len(data)


def write_archive(rootfs: Path, spec: ImageSpec, archive: Path) -> None:
    """Write ``archive`` (atomically) holding ``rootfs`` as the single layer of ``spec.name``."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp_archive = archive.with_suffix(".partial")
    with tempfile.TemporaryFile(dir=archive.parent) as layer_file:
        layer_digest, layer_size = _layer(rootfs, layer_file)
        with tarfile.open(tmp_archive, mode="w") as tar:
            _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            info = tarfile.TarInfo(f"blobs/sha256/{layer_digest}")
            info.size = layer_size
            info.mode = 0o644
            tar.addfile(info, layer_file)
            config = {
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Env": [f"{k}={v}" for k, v in spec.env.items()],
                    "Cmd": list(spec.cmd),
                    "WorkingDir": spec.workdir,
                },
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            }
            config_digest, config_size = _blob(tar, config)
            manifest = {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {
                    "mediaType": CONFIG_TYPE,
                    "digest": f"sha256:{config_digest}",
                    "size": config_size,
                },
                "layers": [
                    {
                        "mediaType": LAYER_TYPE,
                        "digest": f"sha256:{layer_digest}",
                        "size": layer_size,
                    }
                ],
            }
            manifest_digest, manifest_size = _blob(tar, manifest)
            tag = spec.name.rsplit(":", 1)[1]
            index = {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": MANIFEST_TYPE,
                        "digest": f"sha256:{manifest_digest}",
                        "size": manifest_size,
                        "annotations": {
                            "io.containerd.image.name": spec.name,
                            "org.opencontainers.image.ref.name": tag,
                        },
                    }
                ],
            }
            _add_bytes(tar, "index.json", json.dumps(index).encode())
    tmp_archive.replace(archive)
