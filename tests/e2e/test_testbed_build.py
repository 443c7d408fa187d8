"""The testbed's build pieces: binaries stamped with the pinned version, a replace list generated
from the release's own go.mod, the apt mirror read from the machine's sources, and OCI archives
written by our own code that containerd imports and runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from tools.cluster import Cluster
from tools.testbed import build, images, oci
from tools.testbed.config import (
    BIN_DIR,
    BUILD_DIR,
    K8S_COMPONENTS,
    K8S_VERSION,
    containerd_socket,
)


def test_binaries_report_the_pinned_version() -> None:
    if not build.is_built():
        pytest.skip("binaries not built (python -m tools.testbed build)")
    for component in K8S_COMPONENTS:
        args = ["version", "--client", "-o", "json"] if component == "kubectl" else ["--version"]
        out = subprocess.run(
            [str(BIN_DIR / component), *args], capture_output=True, text=True, check=True
        ).stdout
        assert K8S_VERSION in out, f"{component}: {out}"


def test_replace_list_comes_from_the_release_go_mod() -> None:
    gomod = shutil.which("go") and subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{K8S_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=BUILD_DIR,
    )
    if not gomod or gomod.returncode != 0:
        pytest.skip("the release's go.mod is not in the Go module cache")
    upstream = Path(json.loads(gomod.stdout)["GoMod"]).read_text()
    rendered = build.render_gomod(K8S_VERSION, upstream)
    pinned = [line.split()[0] for line in upstream.splitlines() if line.endswith(" v0.0.0")]
    assert "k8s.io/client-go" in pinned and len(pinned) > 20
    used = (BUILD_DIR / "src" / "go.mod").read_text()  # as `go mod tidy` left it
    for module in pinned:
        replace = f"\t{module} => {module} {build.staging_version(K8S_VERSION)}\n"
        assert replace in rendered and replace in used


def test_apt_mirror_read_from_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert images.apt_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64] http://one-line.example/debian bookworm main\n"
    )
    assert images.apt_mirror(tmp_path) == "http://one-line.example/debian"


def test_oci_archive_layout(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "hello").chmod(0o755)
    (root / "bin" / "link").symlink_to("hello")
    (root / "dev").mkdir()
    (root / "dev" / "junk").write_text("device nodes stay out")
    archive = tmp_path / "img.tar"
    oci.write_archive(root, oci.ImageSpec("localhost/t:2", ["/bin/hello"]), archive)
    with tarfile.open(archive) as outer:
        index = json.load(outer.extractfile("index.json"))  # type: ignore[arg-type]
        (entry,) = index["manifests"]
        assert entry["annotations"]["io.containerd.image.name"] == "localhost/t:2"
        blob = f"blobs/sha256/{entry['digest'].split(':')[1]}"
        manifest = json.load(outer.extractfile(blob))  # type: ignore[arg-type]
        layer_name = f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"
        with tarfile.open(fileobj=outer.extractfile(layer_name)) as layer:
            names = {m.name: m for m in layer.getmembers()}
    assert names["bin/hello"].mode & 0o777 == 0o755
    assert names["bin/link"].issym() and names["bin/link"].linkname == "hello"
    assert "dev" in names and "dev/junk" not in names


@pytest.mark.e2e
def test_our_archive_runs_as_a_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """An image written by oci.py, imported with ctr, runs in a pod (imagePullPolicy: Never)."""
    if not cluster.testbed:
        pytest.skip("imports into the testbed's containerd")
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    name = f"localhost/il-test-{uuid.uuid4().hex[:8]}:1"
    archive = tmp_path / "img.tar"
    oci.write_archive(
        root, oci.ImageSpec(name, ["/bin/busybox", "echo", "made-by-oci-py"]), archive
    )
    ctr = ["ctr", "-a", str(containerd_socket()), "-n", "k8s.io", "images"]
    subprocess.run([*ctr, "import", str(archive)], check=True, capture_output=True)
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "oci"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": name, "imagePullPolicy": "Never"}],
            },
        }
        cluster.apply(namespace, [pod])
        cluster.kubectl(
            "-n",
            namespace,
            "wait",
            "pod/oci",
            "--for=jsonpath={.status.phase}=Succeeded",
            "--timeout=60s",
            timeout=70,
        )
        assert cluster.kubectl("-n", namespace, "logs", "oci").stdout.strip() == "made-by-oci-py"
    finally:
        cluster.kubectl("-n", namespace, "delete", "pod", "oci", "--wait=true", check=False)
        subprocess.run([*ctr, "rm", name], check=False, capture_output=True)
