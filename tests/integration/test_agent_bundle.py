"""The agent zipapp: small, deterministic, self-contained, and exactly the documented CLI."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from innerloop.agent.zipapp import agent_bundle, build_zipapp

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
MAX_BYTES = 128 * 1024
"""84,000 bytes when a bound was first set (issue 9: filters, per-request HTTP/1.1 routing,
mirror; 57,792 before); 198,916 when it went from 192 to 200 KiB (the HTTP/2 mirror); 207,090
when it went to 208 KiB (the quick-request reader, a7df934, and the push-receive tunnel,
0d8535d); 122,512 when it went to 128 KiB (sources without docstrings and comments,
core.source_shrink; 208,482 before): room for growth, but not for a stray dependency."""


def test_bundle_is_deterministic_small_and_named_by_its_hash() -> None:
    digest, data = agent_bundle()
    assert build_zipapp() == data
    assert digest == hashlib.sha256(data).hexdigest()[:12]
    assert len(data) <= MAX_BYTES, f"{len(data)} bytes"
    assert data.startswith(b"#!/usr/bin/env python3\n")


@pytest.mark.parametrize("doc", ["README.md", "docs/architecture.md"])
def test_the_docs_state_the_real_size(doc: str) -> None:
    """Within 3 KiB of what they promise, and the bound within 8 KiB of that: a bound far
    above the promise would let the bundle grow past it unnoticed."""
    [promised] = re.findall(r"~(\d+) KiB zipapp", (REPO / doc).read_text())
    assert abs(len(agent_bundle()[1]) / 1024 - int(promised)) <= 3, f"{doc} says ~{promised} KiB"
    assert MAX_BYTES / 1024 - int(promised) <= 8, f"{doc} says ~{promised} KiB, the bound is higher"


def test_bundle_holds_the_agent_core_and_h11_but_no_laptop_code() -> None:
    names = zipfile.ZipFile(io.BytesIO(agent_bundle()[1])).namelist()
    assert "__main__.py" in names
    for needed in ("innerloop/agent/server.py", "innerloop/core/mux.py",
                   "innerloop/tunnel/link.py", "h11/_connection.py"):
        assert needed in names
    roots = {name.split("/")[0] for name in names}
    assert roots == {"__main__.py", "innerloop", "h11", "h2", "hpack", "hyperframe"}
    assert not any(n.startswith(("innerloop/k8s", "innerloop/lsp", "innerloop/dap",
                                 "innerloop/intercepts")) for n in names)
    assert "innerloop/tunnel/client.py" not in names


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)


def interpreters() -> list[str]:
    """This Python plus any other 3.10+ on the machine (the sidecar image may be older)."""
    found = [sys.executable]
    for name in ("python3.10", "python3.12", "python3.13"):
        path = shutil.which(name)
        if path and run(path, "-c", "pass").returncode == 0:
            found.append(path)
    return found


@pytest.mark.parametrize("python", interpreters())
def test_runs_on_a_bare_python_with_the_documented_cli(tmp_path: Path, python: str) -> None:
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(agent_bundle()[1])
    # -I -S: no site-packages, no environment, no current directory: only the zipapp itself.
    ok = run(python, "-I", "-S", str(pyz), "--help")
    assert ok.returncode == 0, ok.stderr
    for flag in ("--tunnel-port", "--health-port", "--route LISTEN:APP"):
        assert flag in ok.stdout
    bad = run(python, "-I", "-S", str(pyz), "--tunnel-port", "1", "--health-port", "2",
              "--route", "15401")
    assert bad.returncode == 2
    assert "expected LISTEN:APP ports, got '15401'" in bad.stderr
    script = ("import sys; sys.path.insert(0, sys.argv[1]); "
              "import innerloop.agent.server, innerloop.agent.health; print('ok')")
    imports = run(python, "-I", "-S", "-c", script, str(pyz))
    assert imports.stdout.strip() == "ok", imports.stderr


def test_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(agent_bundle()[1])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run(sys.executable, "-I", "-S", str(pyz), "--tunnel-port", str(port),
                   "--health-port", str(port), "--route", f"{port}:1")
    assert busy.returncode == 1
    assert "ERROR cannot listen: " in busy.stdout
