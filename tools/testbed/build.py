"""Build the Kubernetes binaries from the Go module proxy, cached by version.

k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at v0.0.0 and points them at
./staging with replaces that a dependency's go.mod cannot pass on; so we build in a small module
of our own whose replace list is generated from the pinned release's go.mod.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from tools.testbed.config import BIN_DIR, BUILD_DIR, K8S_COMPONENTS, K8S_VERSION
from tools.testbed.proc import log, run

MODULE = "k8s.io/kubernetes"
_STAMP = "build.json"


def staging_version(version: str) -> str:
    """v1.36.3 -> v0.36.3: the tag the staging modules are published under."""
    major, minor, patch = version.lstrip("v").split(".")
    if major != "1":
        raise ValueError(f"unexpected Kubernetes version {version}")
    return f"v0.{minor}.{patch}"


def staging_replaces(gomod_text: str) -> list[str]:
    """Every k8s.io module the release requires at v0.0.0 (those resolve only via replace)."""
    return sorted(
        set(re.findall(r"^\s*(k8s\.io/[\w.\-/]+) v0\.0\.0\s*$", gomod_text, re.MULTILINE))
    )


def _directive(gomod_text: str, name: str) -> str | None:
    match = re.search(rf"^{name} (\S+)\s*$", gomod_text, re.MULTILINE)
    return match.group(1) if match else None


def render_gomod(version: str, gomod_text: str) -> str:
    """go.mod of the build module: require the release, replace its staging modules."""
    lines = ["module innerloop.local/k8s-build", ""]
    go_version = _directive(gomod_text, "go")
    if go_version:
        lines.append(f"go {go_version}")
    godebug = _directive(gomod_text, "godebug")
    if godebug:
        lines.append(f"godebug {godebug}")
    lines += ["", f"require {MODULE} {version}", "", "replace ("]
    lines += [
        f"\t{mod} => {mod} {staging_version(version)}" for mod in staging_replaces(gomod_text)
    ]
    lines += [")", ""]
    return "\n".join(lines)


def render_tools_go() -> str:
    """Blank imports of the commands so `go mod tidy` keeps everything they need."""
    imports = "\n".join(f'\t_ "{MODULE}/cmd/{c}"' for c in K8S_COMPONENTS)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def ldflags(version: str) -> str:
    """Stamp the real version, else the binaries say v0.0.0-master and warn about skew."""
    major, minor, _ = version.lstrip("v").split(".")
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def is_built(bin_dir: Path = BIN_DIR, version: str = K8S_VERSION) -> bool:
    """True when every binary of ``version`` is in the cache."""
    stamp = bin_dir / _STAMP
    if not stamp.exists():
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except ValueError:
        return False
    return recorded.get("version") == version and all(
        (bin_dir / c).exists() for c in K8S_COMPONENTS
    )


def _go() -> str:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise RuntimeError("Go is not installed: `build` needs a Go toolchain (>= 1.26) on PATH")
    return go


def build(version: str = K8S_VERSION, force: bool = False) -> Path:
    """Build (or reuse) the six binaries; returns the bin directory."""
    if is_built() and not force:
        log(f"Kubernetes {version} binaries cached in {BIN_DIR}")
        return BIN_DIR
    go = _go()
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    src = BUILD_DIR / "src"
    src.mkdir(parents=True, exist_ok=True)
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    log(f"resolving {MODULE}@{version} from the Go module proxy")
    info = json.loads(
        run([go, "mod", "download", "-json", f"{MODULE}@{version}"], env=env, cwd=src).stdout
    )
    upstream = Path(info["GoMod"]).read_text()
    (src / "go.mod").write_text(render_gomod(version, upstream))
    (src / "tools.go").write_text(render_tools_go())
    log(f"go mod tidy ({len(staging_replaces(upstream))} replaces -> {staging_version(version)})")
    run([go, "mod", "tidy"], env=env, cwd=src)
    started = time.monotonic()
    for component in K8S_COMPONENTS:
        t0 = time.monotonic()
        log(f"go build {component} ...")
        run(
            [
                go,
                "build",
                "-p",
                "2",
                "-trimpath",
                "-ldflags",
                ldflags(version),
                "-o",
                BIN_DIR / component,
                f"{MODULE}/cmd/{component}",
            ],
            env=env,
            cwd=src,
        )
        log(f"built {component} in {time.monotonic() - t0:.0f}s")
    (BIN_DIR / _STAMP).write_text(
        json.dumps({"version": version, "seconds": round(time.monotonic() - started)}) + "\n"
    )
    log(f"all binaries in {BIN_DIR} ({time.monotonic() - started:.0f}s)")
    return BIN_DIR
