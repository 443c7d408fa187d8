"""Coverage-guided fuzzing of the parsers that read bytes from strangers (issue 11):

- ``frames``: the tunnel frame decoder, fed each input in random-sized chunks;
- ``agent-mux``: the agent's side of the tunnel protocol (handshake, claims, streams, credits)
  fed the same way, as a client could;
- ``socks5``: the SOCKS5 handshake of the cluster-network proxy;
- ``control``: the resolver hook's control-socket request codec.

    python -m tools.fuzz [--runs 1000000] [--target frames ...] [--json docs/fuzz.json]

Each target runs in a child process under atheris (libFuzzer), which must stay alive: an
exception other than the parser's documented refusal is counted as a crash (the first ones
printed), an input that takes longer than ``--hang`` seconds as a hang. Prints one JSON line per
target: runs, crashes, hangs, seconds. Exit status 1 when any target crashed or hung.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

TARGETS = ("frames", "agent-mux", "socks5", "control")


def _chunks(data: bytes) -> list[bytes]:
    """Split by the input's first byte, so the fuzzer explores chunk boundaries too."""
    if not data:
        return [b""]
    size = data[0] % 17 + 1
    body = data[1:]
    return [body[i:i + size] for i in range(0, len(body), size)] or [b""]


def _target(name: str) -> tuple[Callable[[bytes], None], tuple[type[BaseException], ...]]:
    """The function one input runs through and the exceptions that are a clean refusal."""
    import atheris

    with atheris.instrument_imports():
        from innerloop.core import cluster_names, frame_decoder, mux_agent, socks5
        from innerloop.core.errors import RemoteProtocolError

    if name == "frames":
        def run(data: bytes) -> None:
            decoder = frame_decoder.FrameDecoder()
            for chunk in _chunks(data):
                decoder.feed(chunk)
                while decoder.next_frame() is not None:
                    pass
        return run, (RemoteProtocolError,)
    if name == "agent-mux":
        def run(data: bytes) -> None:
            mux = mux_agent.AgentConnection("fuzz", now=0.0)
            for n, chunk in enumerate(_chunks(data)):
                mux.receive_data(chunk, now=n * 0.01)
                mux.data_to_send()
                if mux.closed:
                    return
            mux.receive_eof()
        return run, (RemoteProtocolError,)  # the agent closes that tunnel
    if name == "socks5":
        def run(data: bytes) -> None:
            shake = socks5.SocksHandshake()
            for chunk in _chunks(data):
                effects = shake.receive(chunk)
                if any(isinstance(e, (socks5.SocksRefuse, socks5.SocksConnect)) for e in effects):
                    return
        return run, (RemoteProtocolError,)
    if name == "control":
        def run(data: bytes) -> None:
            cluster_names.parse_request(data[:cluster_names.MAX_LINE])
        return run, (cluster_names.ControlMessageError,)
    raise SystemExit(f"unknown target {name!r}; one of {', '.join(TARGETS)}")


def _child(name: str, runs: int, hang: float) -> None:
    """Runs inside the child: fuzz one target, print its JSON summary line at exit."""
    import atheris

    run, refusals = _target(name)
    tally: dict[str, Any] = {"target": name, "runs": 0, "crashes": 0, "hangs": 0,
                             "examples": []}
    started = time.monotonic()

    def one(data: bytes) -> None:
        tally["runs"] += 1
        t0 = time.monotonic()
        try:
            run(data)
        except refusals:
            pass
        except Exception as exc:  # noqa: BLE001 (a crash: recorded, and the fuzzer goes on)
            tally["crashes"] += 1
            if len(tally["examples"]) < 5:
                tally["examples"].append(f"{type(exc).__name__}: {exc} <- {data[:64]!r}")
        if time.monotonic() - t0 > hang:
            tally["hangs"] += 1
        if tally["runs"] == runs:  # libFuzzer ends with _exit: no atexit
            tally["seconds"] = round(time.monotonic() - started, 1)
            print("FUZZ " + json.dumps(tally), flush=True)

    atheris.Setup([sys.argv[0], f"-runs={runs}", "-max_len=4096", "-print_final_stats=0"], one)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--target", action="append", choices=TARGETS)
    parser.add_argument("--hang", type=float, default=1.0, help="seconds that make a hang")
    parser.add_argument("--json", help="also write the summaries to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.runs, args.hang)
        return 0
    results = []
    for name in args.target or TARGETS:
        proc = subprocess.run(
            [sys.executable, "-m", "tools.fuzz", "--child", name, "--runs", str(args.runs),
             "--hang", str(args.hang)],
            check=False, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FUZZ ")]
        result = json.loads(lines[-1][5:]) if lines else {
            "target": name, "error": f"the fuzzer died ({proc.returncode}): "
                                     f"{proc.stderr[-2000:]}"}
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 0 if all(r.get("crashes") == 0 and r.get("hangs") == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
