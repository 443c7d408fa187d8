"""The benchmark in one command: the cluster bench on the testbed, its headline numbers, a plot.

    .venv/bin/python -m bench.run [--committed] [cluster_bench flags, e.g. --conns 0]
    .venv/bin/python -m bench.run --table bench/results/A.json B.json ...   # headline table

Writes bench/results/<date>-<time>-<commit>.json — the headline keys below at the top level,
the whole run under "run" — and the same name .png (latency CDFs, bulk bars; needs the `bench`
extra). Every ratio is of two numbers measured in the same run (docs/benchmarks.md, Method).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.cluster_bench import REPO, _loadavg, arguments, measure

RESULTS = REPO / "bench" / "results"
Json = dict[str, Any]

GOALS: dict[str, tuple[str, float]] = {
    "latency_ratio_vs_port_forward": ("<=", 1.2),
    "throughput_ratio_vs_port_forward": (">=", 0.8),
    "warm_intercept_s": ("<=", 0.25),
    "cold_minus_rollout_s": ("<=", 0.5),
    "agent_rss_idle_mib": ("<=", 40),
    "agent_rss_1k_mib": ("<=", 80),
    "concurrency_errors": ("<=", 0),
    "hol_ratio": ("<=", 1.1),
}
"""Issue 10's goals, per headline key."""


def _lifecycle(run: Json, what: str, key: str) -> float | None:
    return next((e[key] for e in run["lifecycle"] if e["what"] == what and key in e), None)


def _warm(run: Json, key: str) -> float | None:
    """The median over the run's warm starts (each alone is one noisy sample)."""
    values = [e[key] for e in run["lifecycle"]
              if e["what"].startswith("warm") and e.get(key) is not None]
    return statistics.median(values) if values else None


def headline(run: Json) -> Json:
    """The numbers the issue asks for, from one run's results."""
    ratios = {r["ratio"]: r for r in run["ratios"] if "p50" in r}
    bulk = [r["throughput"] for r in run["ratios"]
            if "throughput" in r and r["meaning"].startswith("bulk ")]
    cold = _lifecycle(run, "cold intercept start", "to_first_routed_s")
    bares = [e["to_first_new_pod_s"] for e in run["lifecycle"] if "to_first_new_pod_s" in e]
    bare = statistics.median(bares) if bares else None
    agent = run["agent"]
    errors = None
    if "opened" in agent:
        missing = agent["conns"] - agent["opened"]
        errors = agent["open_errors"] + agent["request_errors"] + max(0, missing)
    return {
        "latency_ratio_vs_port_forward": ratios.get("c/ka / d", {}).get("p50"),
        "throughput_ratio_vs_port_forward": min(bulk) if len(bulk) == 2 else None,
        "warm_intercept_s": _warm(run, "to_first_routed_s"),
        "warm_intercept_cli_cpu_s": _warm(run, "cli_cpu_s"),
        "cold_minus_rollout_s": cold - bare if cold is not None and bare is not None else None,
        "fallback_s": _lifecycle(run, "laptop killed (SIGKILL)", "to_cluster_s"),
        "agent_rss_idle_mib": agent.get("rss_idle_mib"),
        "agent_rss_1k_mib": agent.get("rss_1k_mib"),
        "concurrency_errors": errors,
        "hol_ratio": run["tunnel"].get("hol_ratio"),
    }


def goals(top: Json) -> Json:
    met = {}
    for key, (op, bound) in GOALS.items():
        value = top.get(key)
        met[key] = None if value is None else (value <= bound if op == "<=" else value >= bound)
    return met


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                          capture_output=True, check=False).stdout.strip() or "unknown"


def _archive(commit: str) -> Path:
    """`commit`'s server/ unpacked under ~/.cache (the laptop and the agent it ships run from
    there), with a COMMIT file that names it."""
    root = Path.home() / ".cache" / "innerloop" / "bench-trees" / commit
    if not (root / "COMMIT").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "server"], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        (root / "COMMIT").write_text(f"{commit} (committed; an archive of server/)\n")
    return root / "server"


def table(paths: list[Path]) -> str:
    """Markdown: each headline key per run and its range."""
    runs = [json.loads(p.read_text()) for p in paths]
    heads = [f"{r['date'][11:16]} {r['commit'].split()[0]}" for r in runs]
    lines = ["| measure | goal | " + " | ".join(heads) + " | range |",
             "|---|---|" + "---:|" * len(runs) + "---|"]
    for key in [*headline(runs[0]["run"]).keys()]:
        values = [r.get(key) for r in runs]
        shown = [("—" if v is None else f"{v:.3g}") for v in values]
        known = [v for v in values if v is not None]
        spread = f"{min(known):.3g}–{max(known):.3g}" if known else "—"
        op, bound = GOALS.get(key, ("", ""))
        goal = f"{ {'<=': '≤', '>=': '≥'}.get(op, op)} {bound}".strip()
        lines.append(f"| `{key}` | {goal} | " + " | ".join(shown) + f" | {spread} |")
    lines.append("| load average, 1 min (start → end) | | " + " | ".join(
        f"{r['load_average_start'].split()[0]} → {r['load_average'].split()[0]}" for r in runs)
        + " | |")
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:2] == ["--table"]:
        print(table([Path(p) for p in sys.argv[2:]]))
        return 0
    parser = arguments()
    parser.add_argument("--committed", action="store_true",
                        help="measure HEAD as committed (an archive of its server/), not the "
                             "working tree with whatever others have not committed yet")
    args = parser.parse_args()
    if args.committed:
        args.tree = _archive(_head())
    load_start = _loadavg()
    results = asdict(measure(args))
    top = headline(results)
    doc: Json = {**top, "commit": results["meta"]["commit"], "load_average": _loadavg(),
                 "load_average_start": load_start, "date": results["meta"]["date"],
                 "goals_met": goals(top), "run": results}
    if top["hol_ratio"] is None:
        doc["hol_ratio_why"] = results["tunnel"].get("hol_ratio_why")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{time.strftime('%Y-%m-%d-%H%M')}-{doc['commit'].split()[0]}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in [*top, "commit", "load_average", "goals_met"]},
                     indent=1))
    print(out)
    try:
        from bench.plot import draw

        draw(doc, out.with_suffix(".png"))
        print(out.with_suffix(".png"))
    except ImportError:
        print("no plot: pip install -e '.[bench]' for matplotlib", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
