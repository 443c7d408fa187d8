"""The workload's volumes on this machine: read-only copies kept current, removed at the end.

`VolumeMirror` copies what `core.volumes` plans (ConfigMap, Secret, downwardAPI and projected
volumes, the service-account token when the user may request one) into a private directory
(0700; files 0600), re-reads the objects every `POLL_INTERVAL` and replaces a changed file
atomically (readers see the old or the new file, never half of one), and writes the mount
table that the resolver hook reads (docs/network.md, "Volumes"). `aclose()` removes it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from innerloop.core.errors import InnerloopError
from innerloop.core.manifest import Manifest
from innerloop.core.volumes import (
    TABLE_NAME,
    Fetched,
    File,
    TokenSpec,
    mount_table,
    needs,
    plan,
    volume_files,
)
from innerloop.paths import owned_name, runtime_dir, sweep_dead

log = logging.getLogger(__name__)

VOLUMES_ENV = "INNERLOOP_VOLUMES"
VOLUMES_DIR = "innerloop-vol"
POLL_INTERVAL = 1.5
"""Seconds between reads of the volumes' objects: an edit shows up locally within ~2 s."""
TOKEN_REFRESH = 0.8
"""A token is requested again after this share of its lifetime (as the kubelet does)."""


class VolumeReader(Protocol):
    """What the mirror needs of the gateway (`innerloop.k8s.gateway.Gateway`)."""

    async def config_map_data(self, namespace: str, name: str) -> dict[str, bytes] | None: ...

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None: ...

    async def service_account_token(self, namespace: str, account: str, audience: str,
                                    expiration: int) -> str: ...


class VolumeMirror:
    """The copies of one pod container's volumes; `start()`, then `env()`, then `aclose()`."""

    def __init__(self, reader: VolumeReader, pod: Manifest, container: str,
                 report: Callable[[str], None] | None = None) -> None:
        self._reader = reader
        self._pod = pod
        self._container = container
        self._namespace: str = pod["metadata"]["namespace"]
        self._account: str = pod.get("spec", {}).get("serviceAccountName") or "default"
        self._report = report or log.warning
        self._plan = plan(pod, container)
        self._needs = needs(self._plan)
        self._said: set[str] = set()
        self._written: dict[Path, File] = {}
        self._tokens: dict[TokenSpec, tuple[str, float]] = {}  # token, when to renew it
        self._no_tokens = False
        self._poller: asyncio.Task[None] | None = None
        self.root: Path | None = None

    @property
    def mounts(self) -> list[tuple[str, str]]:
        return mount_table(self._plan, str(self.root)) if self.root else []

    async def start(self) -> None:
        if self._plan.skipped:
            self._say("volumes not copied (their data is not in the API server): "
                      + ", ".join(self._plan.skipped))
        if self._plan.empty:
            return
        parent = runtime_dir(VOLUMES_DIR)
        for gone in sweep_dead(parent):  # a killed run could not remove its copies
            log.info("removed the volume copies of a process that is gone: %s", gone)
        self.root = parent / owned_name()
        self.root.mkdir(mode=0o700)
        try:
            await self.refresh()
            self._write_table()
        except BaseException:
            await self.aclose()
            raise
        self._poller = asyncio.ensure_future(self._poll())
        log.info("volumes of %s copied to %s: %s", self._container, self.root,
                 ", ".join(f"{c} → {p}" for c, p in self.mounts))

    def env(self) -> dict[str, str]:
        """`INNERLOOP_VOLUMES`: the root of the copies (and its mount table), if any."""
        return {VOLUMES_ENV: str(self.root)} if self.root else {}

    async def aclose(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        root, self.root = self.root, None
        if root is not None:
            await asyncio.to_thread(shutil.rmtree, root, True)

    # -- reading and writing ----------------------------------------------------------------

    async def refresh(self) -> None:
        """Read every object again and bring the copies in line."""
        fetched = await self._fetch()
        for volume in self._plan.volumes.values():
            files, warnings = volume_files(volume, self._pod, self._container, fetched)
            for warning in warnings:
                self._say(warning)
            self._sync(volume["name"], files)

    async def _fetch(self) -> Fetched:
        ns = self._namespace
        cms = sorted(self._needs.config_maps)
        secs = sorted(self._needs.secrets)
        results = await asyncio.gather(
            *(self._reader.config_map_data(ns, n) for n in cms),
            *(self._reader.secret_data(ns, n) for n in secs))
        return Fetched(
            config_maps={n: d for n, d in zip(cms, results[:len(cms)]) if d is not None},
            secrets={n: d for n, d in zip(secs, results[len(cms):]) if d is not None},
            tokens=await self._fresh_tokens())

    async def _fresh_tokens(self) -> dict[TokenSpec, str]:
        now = time.monotonic()
        for spec in sorted(self._needs.tokens, key=repr):
            if self._no_tokens or self._tokens.get(spec, ("", 0.0))[1] > now:
                continue
            try:
                token = await self._reader.service_account_token(
                    self._namespace, self._account, spec.audience, spec.expiration)
            except InnerloopError as exc:
                if spec not in self._tokens:  # never had one: the user may not; say it once
                    self._no_tokens = True
                    self._say(f"no service-account token in the copies: {exc}")
                else:  # keep the one we have until it expires
                    log.warning("cannot renew the service-account token: %s", exc)
                continue
            self._tokens[spec] = (token, now + spec.expiration * TOKEN_REFRESH)
        return {spec: token for spec, (token, _) in self._tokens.items()}

    def _sync(self, volume: str, files: dict[str, File]) -> None:
        assert self.root is not None
        base = self.root / volume
        base.mkdir(mode=0o700, exist_ok=True)
        wanted = {base / rel: f for rel, f in files.items()}
        for path, f in wanted.items():
            if self._written.get(path) != f:
                write_atomic(path, f)
                self._written[path] = f
        for path in [p for p in self._written if p.is_relative_to(base) and p not in wanted]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            del self._written[path]
            with contextlib.suppress(OSError):  # emptied directories go too
                for parent in path.parents:
                    if parent == base:
                        break
                    parent.rmdir()

    def _write_table(self) -> None:
        assert self.root is not None
        text = json.dumps({"mounts": self.mounts}).encode()
        write_atomic(self.root / TABLE_NAME, File(text, 0o600))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            try:
                await self.refresh()
            except InnerloopError as exc:  # the copies stay as they were
                log.warning("cannot re-read the workload's volumes: %s", exc)
            except OSError as exc:
                log.warning("cannot update the volume copies in %s: %s", self.root, exc)

    def _say(self, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            self._report(line)


def write_atomic(path: Path, f: File) -> None:
    """Write beside, then rename over: a reader opens the old file or the new one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, f.mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(f.data)
        os.chmod(tmp, f.mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
