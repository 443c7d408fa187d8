"""The laptop's optional uvloop: used only when installed and not switched off."""

from __future__ import annotations

import asyncio
import importlib
import types

import pytest
from innerloop.tunnel import loop


class FakePolicy(asyncio.DefaultEventLoopPolicy):
    pass


def test_no_uvloop_installed_means_the_stock_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> types.ModuleType:
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", missing)
    assert loop.uvloop_policy() is None
    assert loop.run(asyncio.sleep(0, "done")) == "done"


def test_installed_uvloop_is_used_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.SimpleNamespace(EventLoopPolicy=FakePolicy)
    monkeypatch.setattr(importlib, "import_module", lambda name: fake)
    assert isinstance(loop.uvloop_policy(), FakePolicy)
    monkeypatch.setenv("INNERLOOP_UVLOOP", "0")
    assert loop.uvloop_policy() is None
