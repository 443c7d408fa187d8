"""A CLI start imports nothing heavy before it needs it: `innerloop --help`, parsing any
command's flags, and everything an intercept loads before its first API call (with a simple
kubeconfig) stay clear of the `kubernetes` package, pygls, debugpy and h2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("kubernetes", "pygls", "debugpy", "h2", "h11", "lsprotocol", "yaml")


def imported_after(code: str) -> set[str]:
    """The heavy top-level packages a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout.splitlines()[-1]
    return set(json.loads(out)) & set(HEAVY)


def test_help_imports_nothing_heavy() -> None:
    code = ("import contextlib, io\nfrom innerloop.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])")
    assert imported_after(code) == set()


@pytest.mark.parametrize("argv", [
    ["intercept", "orders", "--port", "8080:80", "--header", "x-dev=me"],
    ["list", "-n", "shop"], ["leave", "orders"], ["uninstall", "--all"], ["dap"], ["lsp"],
    ["run", "--like", "deploy/orders"],
])
def test_parsing_a_command_imports_nothing_heavy(argv: list[str]) -> None:
    code = f"from innerloop.cli import build_parser\nbuild_parser().parse_args({argv!r})"
    assert imported_after(code) == set()


def test_an_intercept_loads_no_heavy_package_before_its_first_api_call() -> None:
    """Everything `innerloop intercept` imports up to the cluster connection; the agent bundle
    needs h2's files, not h2 itself."""
    code = ("import innerloop.cli, innerloop.intercepts.manager, innerloop.k8s.gateway\n"
            "from innerloop.agent.zipapp import agent_bundle\nagent_bundle()")
    assert imported_after(code) == set()


def test_the_tunnel_machinery_waits_for_the_first_tunnel() -> None:
    """The tunnel's protocol (frames, events: dozens of dataclasses) and the port-forward's
    WebSocket client are imported by the first tunnel, not before the first API call (an
    error there, e.g. no such Service, costs none of it); env and uninstall modules never."""
    probe = ("import sys, json\nimport innerloop.cli, innerloop.intercepts.manager, "
             "innerloop.k8s.gateway, innerloop.tunnel.loop\n"
             "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout.splitlines()[-1]
    loaded = set(json.loads(out))
    later = {"innerloop.core.frames", "innerloop.core.mux_events", "innerloop.tunnel.client",
             "innerloop.k8s.portforward", "websockets", "innerloop.core.env",
             "innerloop.envfile", "innerloop.intercepts.holders"}
    assert loaded & later == set()



def test_python_m_innerloop_runs_without_collections_only_until_it_serves() -> None:
    """`__main__` starts without cyclic collections; a command that runs on (here `status`;
    `intercept` once started) has them back, with the start's objects frozen out of the way."""
    probe = ("import gc, io, contextlib, json\nfrom innerloop.__main__ import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    rc = main()\n"
             "print(json.dumps([rc, gc.isenabled(), gc.get_freeze_count() > 0]))")
    out = subprocess.run([sys.executable, "-c", probe, "status"], capture_output=True,
                         text=True, check=True, timeout=60).stdout.splitlines()[-1]
    assert json.loads(out) == [0, True, True]


def test_the_innerloop_command_starts_as_python_m_innerloop() -> None:
    """The console script enters through `__main__.main`, so it starts without collections."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert scripts == {"innerloop": "innerloop.__main__:main"}
