"""Fixtures for the real-VS-Code tests: the pinned runtime, the built VSIX, a code-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vscode.codeserver import ARTIFACTS, Runtime, build_vsix


@pytest.fixture(scope="session")
def vscode_runtime() -> Runtime:
    return Runtime.install()


@pytest.fixture(scope="session")
def vsix() -> Path:
    return build_vsix()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Iterator[Path]:
    """test-artifacts/vscode/<test name>/, emptied first."""
    path = ARTIFACTS / request.node.name
    if path.exists():
        for old in sorted(path.rglob("*"), reverse=True):
            old.rmdir() if old.is_dir() else old.unlink()
    path.mkdir(parents=True, exist_ok=True)
    yield path
