"""Steady HTTP load for tests (stdlib only; runs on Python >= 3.10, in a client pod or locally).

Sends GET requests to URL on a fixed schedule (RATE per second, so a slow answer never delays
the next request) until COUNT requests were sent or DURATION seconds passed, and prints one JSON
line per request, in completion order::

    {"seq": 3, "t": 1700000000.123, "status": 200, "ms": 4.1, "body": "pod=echo-... path=/ ..."}
    {"seq": 4, "t": 1700000000.143, "error": "URLError: <urlopen error [Errno 111] ...>", "ms": 1.0}

then one summary line ``{"summary": true, "sent": N, "ok": N, "failed": N, "sending_s": S,
"ms": {"p50": …, "p99": …, "max": …}, "slowest": [[seq, t, ms], …], "answered_by": {"local":
N, …}}``: how long the sending took (longer than the duration when this client could not keep
the rate), latencies of every request, the ten slowest (to find a stall by its time), and who
answered (the ``pod=`` word of the echo app's answers). A non-2xx status counts as failed. Exit status 0 when every request
succeeded, 1 otherwise. ``--failures-only`` prints only the failed requests' lines (a run of
minutes at hundreds a second would outgrow the pod's log).

A timed-out request's error says where it waited: ``URLError: <urlopen error timed out>`` while
connecting, ``TimeoutError: timed out`` (``socket.timeout`` before 3.10) for the answer.

``--retry-refused N`` makes each request a caller that retries (up to N times, 50 ms apart) when
the connection is refused or reset before any answer, as clients behind a Service commonly do
during a rollout; a record that needed retries says how many (``"retries": 2``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_print_lock = threading.Lock()
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def emit(record: dict[str, Any]) -> None:
    with _print_lock:
        print(json.dumps(record), flush=True)


RETRY_DELAY = 0.05
REFUSED = (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected)


def _refused(exc: BaseException) -> bool:
    return isinstance(exc, REFUSED) or isinstance(getattr(exc, "reason", None), REFUSED)


def one_request(seq: int, url: str, timeout: float, retry_refused: int = 0,
                failures_only: bool = False) -> dict[str, Any]:
    """Send one GET and print its record (unless it succeeded and ``failures_only``)."""
    started = time.monotonic()
    record: dict[str, Any] = {"seq": seq, "t": round(time.time(), 3)}
    for attempt in range(retry_refused + 1):
        try:
            with _opener.open(url, timeout=timeout) as resp:
                record["status"] = resp.status
                record["body"] = resp.read().decode(errors="replace").strip()
        except urllib.error.HTTPError as exc:
            record["status"] = exc.code
            record["body"] = exc.read().decode(errors="replace").strip()
        except (OSError, http.client.HTTPException, ValueError) as exc:  # data for the test
            if _refused(exc) and attempt < retry_refused:
                record["retries"] = attempt + 1
                time.sleep(RETRY_DELAY)
                continue
            record["error"] = f"{type(exc).__name__}: {exc}"
        break
    record["ms"] = round((time.monotonic() - started) * 1000, 1)
    if not (failures_only and succeeded(record)):
        emit(record)
    return record


def succeeded(record: dict[str, Any]) -> bool:
    status: int = record.get("status", 0)
    return 200 <= status < 300


def latencies(records: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p99/max of every request's time, and the ten slowest (seq, send time, ms)."""
    ms = sorted(r["ms"] for r in records)
    if not ms:
        return {"ms": {}, "slowest": []}
    slowest = sorted(records, key=lambda r: r["ms"])[-10:]
    return {"ms": {"p50": ms[len(ms) // 2], "p99": ms[int(0.99 * len(ms))], "max": ms[-1]},
            "slowest": [[r["seq"], r["t"], r["ms"]] for r in reversed(slowest)]}


def run(url: str, rate: float, count: int | None, duration: float | None, timeout: float,
        retry_refused: int = 0, failures_only: bool = False) -> int:
    if count is None and duration is None:
        count = 1
    interval = 1.0 / rate
    start = time.monotonic()
    futures = []
    with ThreadPoolExecutor(max_workers=max(8, int(rate * timeout) + 1)) as pool:
        seq = 0
        while (count is None or seq < count) and (duration is None or seq * interval < duration):
            delay = start + seq * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one_request, seq, url, timeout, retry_refused,
                                       failures_only))
            seq += 1
        sending = time.monotonic() - start  # past the duration: the schedule slipped
    records = [f.result() for f in futures]
    ok = sum(1 for r in records if succeeded(r))
    answered_by = Counter(word[4:] for r in records if succeeded(r)
                          for word in r["body"].split() if word.startswith("pod="))
    emit({"summary": True, "sent": len(records), "ok": ok, "failed": len(records) - ok,
          "sending_s": round(sending, 2), **latencies(records), "answered_by": dict(answered_by)})
    return 0 if ok == len(records) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    parser.add_argument("--count", type=int, help="stop after this many requests")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--timeout", type=float, default=2.0, help="per-request timeout (s)")
    parser.add_argument("--retry-refused", type=int, default=0, metavar="N",
                        help="retry a refused or reset connection up to N times (default 0)")
    parser.add_argument("--failures-only", action="store_true",
                        help="print only failed requests (and the summary)")
    args = parser.parse_args(argv)
    return run(args.url, args.rate, args.count, args.duration, args.timeout, args.retry_refused,
               args.failures_only)


if __name__ == "__main__":
    sys.exit(main())
