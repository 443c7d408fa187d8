"""The volume hook in a real child interpreter: container paths read the local copies.

The child gets only what innerloop gives a launched process for volumes (the hook's directory
first on PYTHONPATH, INNERLOOP_VOLUMES naming a root with `mounts.json`), no cluster at all:
everything it reads at a container path comes from files under the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from innerloop.clusternet.env import HOOK_DIR
from innerloop.clusternet.volumes import VOLUMES_ENV, write_atomic
from innerloop.core.volumes import TABLE_NAME, File, local_path

from tests.unit.test_volumes import TABLE_EXPECTED, TABLE_PATHS

pytestmark = pytest.mark.integration
PYTHON = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python")
SA = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Copies as VolumeMirror lays them out: a ConfigMap dir, a Secret key by subPath (inside
    the ConfigMap's mount), the service-account projection with a real CA bundle."""
    r = tmp_path / "vol"
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    for rel, data in {"cfg/config.yaml": b"a: 1\n", "cfg/sub/deep.txt": b"deep",
                      "db/password": b"s3cret", "sa/token": b"jwt-token",
                      "sa/ca.crt": ca.read_bytes(), "sa/namespace": b"shop"}.items():
        write_atomic(r / rel, File(data, 0o600))
    table = [(SA, str(r / "sa")), ("/etc/app/db.pw", str(r / "db/password")),
             ("/etc/app", str(r / "cfg"))]
    write_atomic(r / TABLE_NAME, File(json.dumps({"mounts": table}).encode(), 0o600))
    return r


def child(root: Path, code: str, **env: str) -> dict[str, Any]:
    """Run `code` (which sets `out`) under the hook; its `out` as JSON."""
    script = "import json, os, sys\nout = {}\n" + textwrap.dedent(code) + \
        "\nprint(json.dumps(out))\n"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INNERLOOP_", "KUBERNETES_"))}
    done = subprocess.run(
        [PYTHON, "-c", script], capture_output=True, text=True, timeout=60, check=False,
        env={**base, "PYTHONPATH": str(HOOK_DIR), VOLUMES_ENV: str(root), **env})
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_reads_at_container_paths_go_to_the_copies(root: Path) -> None:
    ca, table_file = SA + "/ca.crt", str(root / TABLE_NAME)
    out = child(root, f"""
        import io, pathlib, ssl
        out["open"] = open("/etc/app/config.yaml").read()
        out["io.open bytes"] = io.open("/etc/app/sub/deep.txt", "rb").read().decode()
        out["subPath"] = open("/etc/app/db.pw").read()
        out["pathlib"] = pathlib.Path("/etc/app/config.yaml").read_text()
        out["bytes path"] = open(b"/etc/app/config.yaml", "rb").read().decode()
        out["exists"] = [os.path.exists(p) for p in ("/etc/app", "/etc/app/config.yaml",
                                                       "/etc/app/nope")]
        out["isfile"] = [os.path.isfile("/etc/app/config.yaml"), os.path.isfile("/etc/app")]
        out["isdir"] = [os.path.isdir("/etc/app/sub"), pathlib.Path("/etc/app").is_dir()]
        out["listdir"] = sorted(os.listdir("/etc/app"))
        out["scandir"] = sorted(e.name for e in os.scandir("/etc/app"))
        out["iterdir"] = sorted(p.name for p in pathlib.Path("/etc/app").iterdir())
        out["glob"] = sorted(str(p) for p in pathlib.Path("/etc/app").glob("**/*.txt"))
        out["stat"] = os.stat("/etc/app/config.yaml").st_size
        out["lstat"] = os.lstat("/etc/app/db.pw").st_size
        out["os.open"] = os.read(os.open("/etc/app/db.pw", os.O_RDONLY), 100).decode()
        out["access"] = os.access("/etc/app/config.yaml", os.R_OK)
        try:
            open("/etc/app/nope.yaml")
        except FileNotFoundError as exc:
            out["missing"] = exc.filename
        ctx = ssl.create_default_context(cafile={ca!r})
        out["ssl"] = ctx.cert_store_stats()["x509_ca"] > 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations({ca!r})
        out["ssl positional"] = ctx.cert_store_stats()["x509_ca"] > 0
        out["unmapped"] = open({table_file!r}).read()
    """)
    assert out["open"] == out["pathlib"] == out["bytes path"] == "a: 1\n"
    assert out["io.open bytes"] == "deep"
    assert out["subPath"] == out["os.open"] == "s3cret"
    assert out["exists"] == [True, True, False]
    assert out["isfile"] == [True, False]
    assert out["isdir"] == [True, True]
    assert out["listdir"] == out["scandir"] == out["iterdir"] == ["config.yaml", "sub"]
    assert [Path(p).name for p in out["glob"]] == ["deep.txt"]
    assert out["stat"] == 5 and out["lstat"] == 6 and out["access"] is True
    assert out["missing"] == "/etc/app/nope.yaml", "errors name the container path"
    assert out["ssl"] is True and out["ssl positional"] is True
    assert json.loads(out["unmapped"])["mounts"][0][0] == SA


def test_the_hooks_twin_maps_as_core_does(root: Path) -> None:
    table = [("/var/run/secrets/kubernetes.io/serviceaccount", "/r/kube-api-access-x"),
             ("/etc/app/db/password", "/r/db/password"), ("/etc/app", "/r/cfg")]
    out = child(root, f"""
        from _innerloop_volumes import local
        out["mapped"] = [local({table!r}, p) for p in {TABLE_PATHS!r}]
    """)
    assert out["mapped"] == [local_path(table, p) for p in TABLE_PATHS] == TABLE_EXPECTED


def test_writes_to_a_mapped_path_fail_as_on_a_read_only_mount(root: Path) -> None:
    out = child(root, """
        import errno, pathlib
        def fails(fn):
            try:
                fn()
            except OSError as exc:
                return [exc.errno == errno.EROFS, exc.filename]
            return "wrote"
        out["w"] = fails(lambda: open("/etc/app/config.yaml", "w"))
        out["a"] = fails(lambda: open("/etc/app/new.txt", mode="a"))
        out["r+"] = fails(lambda: open("/etc/app/config.yaml", "r+b"))
        out["x"] = fails(lambda: pathlib.Path("/etc/app/new.txt").write_text("x"))
        out["os.open"] = fails(lambda: os.open("/etc/app/db.pw", os.O_WRONLY))
        out["creat"] = fails(lambda: os.open("/etc/app/n", os.O_RDONLY | os.O_CREAT))
        out["after"] = open("/etc/app/config.yaml").read()
    """)
    assert out["w"] == out["r+"] == [True, "/etc/app/config.yaml"]
    assert out["a"] == out["x"] == [True, "/etc/app/new.txt"]
    assert out["os.open"] == [True, "/etc/app/db.pw"]
    assert out["creat"] == [True, "/etc/app/n"]
    assert out["after"] == "a: 1\n"
    assert not (root / "cfg" / "new.txt").exists()


def test_load_incluster_config_reads_the_service_account_copies(root: Path) -> None:
    out = child(root, """
        from kubernetes import client, config
        config.load_incluster_config()
        c = client.Configuration.get_default_copy()
        out["host"] = c.host
        out["auth"] = c.api_key.get("BearerToken")
        out["ca"] = c.ssl_ca_cert
        out["namespace"] = open(%r).read()
    """.replace("%r", repr(SA + "/namespace")),
        KUBERNETES_SERVICE_HOST="10.96.0.1", KUBERNETES_SERVICE_PORT="443")
    assert out == {"host": "https://10.96.0.1:443", "auth": "bearer jwt-token",
                   "ca": SA + "/ca.crt", "namespace": "shop"}


def test_without_the_variable_nothing_is_mapped(root: Path) -> None:
    out = child(root, """
        out["exists"] = os.path.exists("/etc/app/config.yaml")
        out["wrapped"] = hasattr(os.stat, "__wrapped__")
    """, **{VOLUMES_ENV: ""})
    assert out == {"exists": False, "wrapped": False}


def test_a_broken_table_leaves_the_process_untouched(root: Path) -> None:
    (root / TABLE_NAME).write_text("{not json")
    out = child(root, """
        out["exists"] = os.path.exists("/etc/app/config.yaml")
        out["wrapped"] = hasattr(os.stat, "__wrapped__")
    """)
    assert out == {"exists": False, "wrapped": False}


def test_a_child_of_the_child_inherits_the_mapping(root: Path) -> None:
    out = child(root, """
        import subprocess
        out["grandchild"] = subprocess.run(
            [sys.executable, "-c", "print(open('/etc/app/config.yaml').read(), end='')"],
            capture_output=True, text=True, check=True).stdout
    """)
    assert out["grandchild"] == "a: 1\n"

