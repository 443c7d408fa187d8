"""The agent zipapp's per-user cache: the same bytes as a build, rebuilt when a source changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from innerloop.agent import zipapp


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    zipapp.agent_bundle.cache_clear()
    yield tmp_path / "innerloop" / "agent"
    zipapp.agent_bundle.cache_clear()


def test_a_cached_bundle_is_the_built_one_and_skips_the_build(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digest, data = zipapp.agent_bundle()
    assert (cache / f"{digest}.pyz").read_bytes() == data == zipapp.build_zipapp()
    zipapp.agent_bundle.cache_clear()

    def no_build(*_: object) -> bytes:
        raise AssertionError("built again although nothing changed")

    monkeypatch.setattr(zipapp, "build_zipapp", no_build)
    assert zipapp.agent_bundle() == (digest, data)


def test_a_changed_source_or_a_damaged_cache_means_a_new_build(cache: Path) -> None:
    digest, data = zipapp.agent_bundle()
    index = json.loads(zipapp._index().read_text())
    source = next(p for p in index["stamps"] if p.endswith("agent/server.py"))
    index["stamps"][source][1] -= 1  # as if the file had been edited since
    zipapp._index().write_text(json.dumps(index))
    assert zipapp._cached() is None
    zipapp.agent_bundle.cache_clear()
    assert zipapp.agent_bundle() == (digest, data)  # rebuilt, and the index is current again
    assert zipapp._cached() == (digest, data)
    (cache / f"{digest}.pyz").write_bytes(data[:-1])
    assert zipapp._cached() is None


def test_an_unwritable_cache_only_costs_a_build(cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("not a directory")
    zipapp.agent_bundle.cache_clear()
    assert zipapp.agent_bundle()[1] == zipapp.build_zipapp()
