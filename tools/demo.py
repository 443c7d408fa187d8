"""The README's demo: a real intercept of the testbed's sample service, with a local copy of the
service running under debugpy; then the debug adapter (what VS Code's F5 starts) stops that copy
at a breakpoint in tools/sample/echo.py `handle()` on a request from a pod, prints the paused
frame and continues (tools/demo_debug.py).

Run by `scripts/demo` after the testbed is up. The "laptop" (innerloop + the local service) runs
in the developer network namespace, which reaches only the API server: every `pod=local` answer
below travelled from a pod through the tunnel.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from tools.cluster import Cluster, parse_answer
from tools.demo_debug import debug_a_pods_request
from tools.laptop import Laptop
from tools.sample import ECHO_APP, manifests
from tools.testbed.config import KUBECONFIG

NAMESPACE = "innerloop-demo"
LOCAL_PORT = 8080
"""The workload's own PORT: the local copy gets the workload's env, so it listens there too."""
DEBUG_PORT = 5678


def show(cluster: Cluster, url: str, title: str, count: int = 6) -> None:
    print(f"\n--- {title}: {count} requests from the client pod to {url}")
    result = cluster.load_via_exec(NAMESPACE, url, count=count, rate=5)
    for r in sorted(result.records, key=lambda r: r["seq"]):
        body = r.get("body") or r.get("error")
        answer = parse_answer(body) if "body" in r else {}
        # The local copy runs with the workload's env (POD_NAME too); its pid tells it apart.
        who = f"LOCAL (pid {answer['pid']})" if answer.get("pid", "1") != "1" else answer.get(
            "pod", "?")
        print(f"    {who:28} {body}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("DEMO_SECONDS", "0")),
                        help="end the intercept after this long (default: wait for Ctrl-C)")
    args = parser.parse_args()
    cluster = Cluster(Path(KUBECONFIG), started=False, testbed=True)
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    print(f"deploying the sample service 'echo' (2 replicas) into namespace {NAMESPACE!r}…")
    cluster.deploy_echo(NAMESPACE)
    cluster.start_client(NAMESPACE)
    url = f"http://echo.{NAMESPACE}.svc.cluster.local/orders/42"
    show(cluster, url, "before: the cluster answers")

    laptop = Laptop(cluster)
    try:
        print(f"\n$ innerloop intercept echo -n {NAMESPACE} --port {LOCAL_PORT}:80 "
              f"-- python -m debugpy --listen 127.0.0.1:{DEBUG_PORT} {ECHO_APP.name}")
        proc, lines = laptop.innerloop(
            "intercept", "echo", "-n", NAMESPACE, "--port", f"{LOCAL_PORT}:80",
            "--agent-image", manifests.PYTHON_IMAGE, "--",
            sys.executable, "-Xfrozen_modules=off", "-m", "debugpy", "--listen", f"127.0.0.1:{DEBUG_PORT}",
            str(ECHO_APP))
        lines.wait_for("innerloop: intercepting", 180)
        lines.wait_for("echo listening", 30)
        print("\n".join("    " + ln for ln in lines.text().splitlines()))
        show(cluster, url, "intercepted: the local process answers, with the workload's "
             "env (its Secret and ConfigMap too)")
        print(f"\nThe local service runs under debugpy on 127.0.0.1:{DEBUG_PORT} inside the "
              f"developer netns; the debug adapter below does what an editor attached there "
              f"would.")
        if args.seconds:
            time.sleep(args.seconds)
        else:
            print("Press Ctrl-C to leave the intercept.")
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
        laptop.stop(proc)
        print("\n".join("    " + ln for ln in lines.text().splitlines()[-3:]))
        asyncio.run(debug_a_pods_request(cluster, laptop, NAMESPACE, url, LOCAL_PORT))
        show(cluster, url, "after the debug session: the cluster answers again")
    finally:
        laptop.close()
    print(f"\nUndo everything: innerloop uninstall echo -n {NAMESPACE} "
          f"(KUBECONFIG={KUBECONFIG}); scripts/demo leaves the testbed up.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
