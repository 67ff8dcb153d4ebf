#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Whole-process mode against plain and LeakSanitizer, runs interleaved: each
round runs every configuration once, in a fresh random order, so that a
burst of load on a shared machine falls on all of them alike. Prints the
median and the best of each, and their ratios to plain.

usage: interleaved.py --plain WORKLOAD --preload LIB [--lsan WORKLOAD_LSAN] [--rounds N]
"""
import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--plain", required=True)
ap.add_argument("--preload", required=True)
ap.add_argument("--lsan")
ap.add_argument("--rounds", type=int, default=9)
ap.add_argument("--pairs", type=int, default=2_000_000)
args = ap.parse_args()
tmp = tempfile.mkdtemp()
plain, preload = os.path.abspath(args.plain), os.path.abspath(args.preload)
pre = {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(tmp, "run.resmon")}
configs = [
    ("plain", [plain], {}),
    ("resmon, depth 16 (auto)", [plain], pre),
    ("resmon, RESMON_SAMPLE=512KiB", [plain], dict(pre, RESMON_SAMPLE="512KiB")),
    ("the interposition alone (RESMON_KINDS=fd)", [plain], dict(pre, RESMON_KINDS="fd")),
]
if args.lsan:
    configs.append(("LeakSanitizer", [os.path.abspath(args.lsan)], {}))
times = {name: [] for name, _, _ in configs}
for _ in range(args.rounds):
    for name, argv, env in random.sample(configs, len(configs)):
        e = {k: v for k, v in os.environ.items() if not k.startswith("RESMON_") and k != "LD_PRELOAD"}
        e.update(env)
        r = subprocess.run(argv + ["churn", str(args.pairs)], env=e, capture_output=True, text=True, cwd=tmp)
        m = re.search(r"ns_per_pair=([0-9.]+)", r.stdout)
        if r.returncode != 0 or not m:
            sys.exit(f"{name} failed ({r.returncode}): {r.stderr[-300:]}")
        times[name].append(float(m.group(1)))
med = {k: statistics.median(v) for k, v in times.items()}
best = {k: min(v) for k, v in times.items()}
print(f"Churn, 2 threads x {args.pairs:,} pairs; {args.rounds} interleaved rounds")
print()
print("| run | median ns per pair | vs plain | best | vs plain |")
print("|---|---|---|---|---|")
for name, _, _ in configs:
    print(f"| {name} | {med[name]:.1f} | {med[name] / med['plain']:.2f}x | {best[name]:.1f} | "
          f"{best[name] / best['plain']:.2f}x |")
if args.lsan:
    r = med["resmon, depth 16 (auto)"] / med["LeakSanitizer"]
    print(f"\nresmon (depth 16) against LeakSanitizer, medians: {r:.2f}x")
