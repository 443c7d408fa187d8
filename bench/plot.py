"""The PNG of one cluster bench run: latency CDFs of rows a/c/d/f and the bulk throughputs.

    .venv/bin/python -m bench.plot bench/results/RUN.json   # writes RUN.png next to it

Needs matplotlib (`pip install -e '.[bench]'`); `bench.run` calls it after each run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CDF_ROWS = [
    ("a2", "a: pod → ClusterIP → app"),
    ("c", "c: intercepted (pod → agent → tunnel → laptop)"),
    ("c/ka", "c/ka: intercepted, keep-alive"),
    ("d", "d: laptop → warm port-forward, keep-alive"),
    ("f", "f: laptop → kubectl port-forward, new connection"),
]
BARS = [
    ("intercepted: response from the laptop", "raw port-forward: request body to the pod",
     "laptop → cluster"),
    ("intercepted: request body to the laptop", "raw port-forward: response from the pod",
     "cluster → laptop"),
]


def draw(run: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, bars) = plt.subplots(1, 2, figsize=(12, 4.5),
                                    gridspec_kw={"width_ratios": [3, 2]})
    samples = run["run"]["samples"]
    for key, label in CDF_ROWS:
        values = sorted(samples.get(key, []))
        if values:
            cdf.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=label)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency, ms (log)")
    cdf.set_ylabel("fraction of requests")
    cdf.set_title("latency CDF (same run)")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize=8, loc="lower right")

    rates = {b["path"]: b["MB/s"] for b in run["run"]["bulk"]}
    xs = range(len(BARS))
    ours = [rates.get(top, 0.0) for top, _, _ in BARS]
    raw = [rates.get(bottom, 0.0) for _, bottom, _ in BARS]
    bars.bar([x - 0.2 for x in xs], ours, 0.4, label="through an intercept")
    bars.bar([x + 0.2 for x in xs], raw, 0.4, label="raw port-forward")
    bars.set_xticks(list(xs), [label for _, _, label in BARS])
    meta = run["run"]["meta"]
    bars.set_ylabel(f"MB/s ({meta['bulk_bytes'] / 2**20:g} MiB, median of {meta['bulk_reps']})")
    bars.set_title("bulk throughput (same run)")
    bars.legend(fontsize=8)
    fig.suptitle(f"innerloop {run['commit']} — {run['date']} — load {run['load_average']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> int:
    for name in sys.argv[1:]:
        path = Path(name)
        draw(json.loads(path.read_text()), path.with_suffix(".png"))
        print(path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
