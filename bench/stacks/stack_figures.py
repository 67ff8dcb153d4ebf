#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs stack_bench and prints the README's call-stack figures (CPU time per
operation: the machine is shared, so wall time counts other processes): the cost of
a 16-frame stack over tracking without one (same run), the depot hit path,
and the unwinders alone. Exits non-zero when a target is missed."""
import json
import subprocess
import sys


def main():
    bench = sys.argv[1]
    out = subprocess.run([bench, "--benchmark_min_time=0.5", "--benchmark_repetitions=3",
                          "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    med = {b["run_name"]: b["cpu_time"] for b in json.loads(out)["benchmarks"]
           if b.get("aggregate_name") == "median"}
    base, fp, unw = med["track_no_stack"], med["track_stack16"], med["track_stack16_unwind"]
    rows = [
        ("tracking, no stack (baseline)", base, ""),
        ("tracking + 16-frame stack", fp, f"+{fp - base:.1f} ns over baseline; target <= 60"),
        ("tracking + 16 frames, fallback only", unw, f"+{unw - base:.1f} ns over baseline"),
        ("stack depot hit (16 frames)", med["depot_hit"], "target < 20"),
        ("frame-pointer walk, 16 frames", med["walk16"], ""),
        ("fallback unwinder, 16 frames", med["fallback16"], ""),
        ("glibc backtrace(), 16 frames", med["glibc_backtrace16"], ""),
    ]
    for name, ns, note in rows:
        print(f"{name:38s} {ns:8.1f} ns  {note}")
    ok = fp - base <= 60 and med["depot_hit"] < 20
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
