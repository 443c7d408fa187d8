"""Local container images (pause, busybox, python3), built without any registry.

Archives are cached under ~/.cache/innerloop/images; `import_images` loads them into the
testbed's containerd. Bump config.IMAGE_TAG when a recipe changes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.testbed.config import (
    BUSYBOX_IMAGE,
    DEBIAN_SUITE,
    IMAGES_DIR,
    PAUSE_IMAGE,
    PYTHON_IMAGE,
    containerd_socket,
)
from tools.testbed.oci import ImageSpec, write_archive
from tools.testbed.proc import log, run

_HERE = Path(__file__).resolve().parent
_ETC_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_ETC_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _pause_rootfs(root: Path) -> None:
    """A static C binary: the sandbox process of every pod."""
    run(["gcc", "-Os", "-static", "-s", "-o", root / "pause", _HERE / "pause.c"])


def _busybox_rootfs(root: Path) -> None:
    """Debian's busybox-static with one symlink per applet."""
    (root / "bin").mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    applets = run([root / "bin" / "busybox", "--list-full"]).stdout.split()
    for applet in applets:
        link = root / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text(_ETC_PASSWD)
    (root / "etc" / "group").write_text(_ETC_GROUP)
    for empty in ("tmp", "proc", "sys", "dev", "root"):
        (root / empty).mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for the suite (never hard-coded in the repo)."""
    candidates: list[tuple[str, list[str]]] = []
    files = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text()
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = {
                    m.group(1).lower(): m.group(2).strip()
                    for m in re.finditer(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE)
                }
                if (
                    "deb" in fields.get("types", "").split()
                    and fields.get("enabled", "yes") != "no"
                ):
                    for uri in fields.get("uris", "").split():
                        candidates.append((uri, fields.get("suites", "").split()))
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(parts) >= 3 and parts[0] == "deb":
                    candidates.append((parts[1], [parts[2]]))
    for uri, suites in candidates:
        if DEBIAN_SUITE in suites:
            return uri
    raise RuntimeError(f"no apt source for Debian {DEBIAN_SUITE} found under {sources_dir}")


def _python3_rootfs(root: Path) -> None:
    """Debian minbase + python3 with its full standard library (http, json, ssl, ...)."""
    mirror = apt_mirror()
    log(f"debootstrap {DEBIAN_SUITE} python3 from {mirror} (about a minute)")
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3-minimal,libpython3.11-stdlib",
                DEBIAN_SUITE,
                root,
                mirror,
            ]
        )
    finally:
        _unmount_under(root)
    for junk in (
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "var/lib/apt/lists",
        "var/cache/apt",
        "var/cache/debconf",
        "var/log",
    ):
        shutil.rmtree(root / junk, ignore_errors=True)
        (root / junk).mkdir(parents=True, exist_ok=True)
    run(["chroot", root, "python3", "-c", "import http.server, json, ssl, urllib.request"])


def _unmount_under(root: Path) -> None:
    """debootstrap mounts /proc and /sys in the target; never leave them behind on failure."""
    prefix = str(root.resolve())
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted(
        (m for m in mounts if m == prefix or m.startswith(prefix + "/")), reverse=True
    ):
        subprocess.run(["umount", "-l", mount], check=False)


@dataclass(frozen=True)
class Recipe:
    spec: ImageSpec
    build_rootfs: Callable[[Path], None]

    @property
    def archive(self) -> Path:
        repo, tag = self.spec.name.removeprefix("localhost/").rsplit(":", 1)
        return IMAGES_DIR / f"{repo}-{tag}.tar"


RECIPES = (
    Recipe(ImageSpec(PAUSE_IMAGE, ["/pause"]), _pause_rootfs),
    Recipe(ImageSpec(BUSYBOX_IMAGE, ["sh"]), _busybox_rootfs),
    Recipe(ImageSpec(PYTHON_IMAGE, ["python3"]), _python3_rootfs),
)


def build_images(force: bool = False) -> list[Path]:
    """Build every missing archive; returns all archive paths."""
    for recipe in RECIPES:
        if recipe.archive.exists() and not force:
            continue
        log(f"building image {recipe.spec.name}")
        IMAGES_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=IMAGES_DIR, prefix="rootfs-") as tmp:
            root = Path(tmp) / "rootfs"
            root.mkdir()
            try:
                recipe.build_rootfs(root)
                write_archive(root, recipe.spec, recipe.archive)
            finally:
                _unmount_under(root)
        log(f"wrote {recipe.archive} ({recipe.archive.stat().st_size // (1 << 20)} MiB)")
    return [r.archive for r in RECIPES]


def _ctr(*args: str | Path) -> list[str | Path]:
    return ["ctr", "-a", containerd_socket(), "-n", "k8s.io", *args]


def imported_images() -> set[str]:
    """Image names our containerd holds."""
    return set(run(_ctr("images", "ls", "-q")).stdout.split())


def import_images() -> None:
    """Import every missing image into the testbed's containerd (which must be running)."""
    present = imported_images()
    for recipe in RECIPES:
        if recipe.spec.name in present:
            continue
        log(f"importing {recipe.spec.name}")
        run(_ctr("images", "import", recipe.archive))
