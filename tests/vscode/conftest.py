"""Fixtures for the real-VS-Code tests: the pinned runtime, the built VSIX, a code-server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vscode.codeserver import ARTIFACTS, Runtime, build_vsix


@pytest.fixture(scope="session")
def vscode_runtime() -> Runtime:
    return Runtime.install()


@pytest.fixture(scope="session")
def vsix() -> Path:
    """The VSIX built from this checkout; INNERLOOP_TEST_VSIX names another (e.g. an older build,
    to see a new test fail against it)."""
    given = os.environ.get("INNERLOOP_TEST_VSIX")
    return Path(given) if given else build_vsix()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Iterator[Path]:
    """test-artifacts/vscode/<test name>/, emptied first."""
    path = ARTIFACTS / request.node.name
    if path.exists():
        for old in sorted(path.rglob("*"), reverse=True):
            old.rmdir() if old.is_dir() else old.unlink()
    path.mkdir(parents=True, exist_ok=True)
    yield path
