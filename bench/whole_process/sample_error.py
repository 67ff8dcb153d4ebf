#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How far RESMON_SAMPLE's estimates fall from the truth: runs the known heap
of tests/preload/sampled.cpp (one function keeps 40,000 blocks of 1 KiB,
another 10,000 of 100 bytes, two threads churn and free all theirs) under
the preload N times per sampling mean (each run draws other sample points),
reads each snapshot with resmon-view --format json, and prints per site the
median and the worst relative error of the estimated held bytes.

usage: sample_error.py --preload LIB --view RESMON_VIEW --program SAMPLED [--runs N] [--means 16KiB,64KiB,512KiB]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--preload", required=True)
ap.add_argument("--view", required=True)
ap.add_argument("--program", required=True)
ap.add_argument("--runs", type=int, default=20)
ap.add_argument("--means", default="16KiB,64KiB,512KiB")
args = ap.parse_args()
tmp = tempfile.mkdtemp()
truth = {"keep_big": 40000 * 1024, "keep_small": 10000 * 100}


def site_bytes(doc, function):
    return sum(g["bytes"] for g in doc["groups"]
               if g["kind"] == "memory" and any(f.get("function", "").split("(")[0] == function for f in g["stack"]))


print(f"Estimated held bytes per site against the truth, {args.runs} runs per mean")
print()
print("| RESMON_SAMPLE | site (held) | samples held, about | median error | worst error |")
print("|---|---|---|---|---|")
for mean in args.means.split(","):
    errors = {f: [] for f in truth}
    for i in range(args.runs):
        out = os.path.join(tmp, f"s{i}.resmon")
        env = dict(os.environ, LD_PRELOAD=os.path.abspath(args.preload), RESMON_OUTPUT=out, RESMON_SAMPLE=mean)
        r = subprocess.run([os.path.abspath(args.program)], env=env, capture_output=True)
        if r.returncode != 0:
            sys.exit(f"{args.program} failed under RESMON_SAMPLE={mean}: {r.stderr[-300:]!r}")
        doc = json.loads(subprocess.run([args.view, "--format", "json", out], capture_output=True, check=True).stdout)
        for f, held in truth.items():
            errors[f].append(abs(site_bytes(doc, f) - held) / held)
    bytes_per_mean = doc["sampling"]["bytes"]
    for f, held in truth.items():
        e = errors[f]
        print(f"| {mean} | {f} ({held / 2**20:.1f} MiB) | {held / bytes_per_mean:.0f} | "
              f"{100 * statistics.median(e):.1f} % | {100 * max(e):.1f} % |")
