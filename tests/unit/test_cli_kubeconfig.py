"""Kubeconfig snags a new user meets, each one line naming the fix (issue 11): no current
context, and an API server whose certificate the kubeconfig's CA does not sign."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from innerloop.cli import main


def kubeconfig(path: Path, server: str, ca: bytes | None = None, current: bool = True) -> Path:
    cluster: dict[str, object] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    config: dict[str, object] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}},
                     {"name": "prod", "context": {"cluster": "c", "user": "u"}}],
    }
    if current:
        config["current-context"] = "dev"
    path.write_text(json.dumps(config))
    return path


def error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0].removeprefix("innerloop: ")


def test_no_current_context_is_one_line_naming_the_contexts_and_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", current=False)
    line = error_line(capsys, ["list", "-n", "x", "--kubeconfig", str(path)])
    assert line == (f"kubeconfig {path} has no current context (its contexts: dev, prod); "
                    "pass --context")


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """A TLS listener with its own self-signed certificate; the handshake is all it does."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    key, cert = self_signed(tmp_path, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    done.set()
    thread.join(5)
    listener.close()


def test_a_wrong_ca_is_a_certificate_problem_not_a_stopped_cluster(
    tmp_path: Path, tls_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    _, other_ca = self_signed(tmp_path, "other-ca")
    path = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{tls_server}", other_ca.read_bytes())
    line = error_line(capsys, ["list", "-n", "x", "--kubeconfig", str(path)])
    assert "certificate" in line and "certificate-authority" in line, line
    assert "check that the cluster is running" not in line, line
