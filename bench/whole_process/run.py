#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Whole-process mode, side by side with the tools it replaces, in one run:
the churn workload (2 threads, 1024 live blocks each, 16-527 B, random
replacement) plain, under the preload (depth 16, with each stack method),
under LeakSanitizer, heaptrack and valgrind where installed; and the memory
of 1,000,000 held 32-byte blocks. Prints a Markdown table of ratios to plain.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--plain", required=True)
ap.add_argument("--preload", required=True)
ap.add_argument("--lsan")
ap.add_argument("--view", help="resmon-view: time reading a snapshot of 1,000,000 blocks from 10,000 stacks")
ap.add_argument("--many-stacks", help="the program that makes that snapshot")
ap.add_argument("--only-view", action="store_true")
ap.add_argument("--pairs", type=int, default=2_000_000)
ap.add_argument("--hold", type=int, default=1_000_000)
ap.add_argument("--repeat", type=int, default=3)
args = ap.parse_args()
plain, preload = os.path.abspath(args.plain), os.path.abspath(args.preload)
tmp = tempfile.mkdtemp()


def run(argv, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("RESMON_") and k != "LD_PRELOAD"}
    e.update(env or {})
    r = subprocess.run(argv, env=e, capture_output=True, text=True, cwd=tmp, timeout=3600)
    m = re.search(r"(ns_per_pair|hwm_kib)=([0-9.]+)", r.stdout)
    if r.returncode != 0 or not m:
        sys.exit(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr[-500:]}")
    return float(m.group(2))


def best(argv, env=None, repeat=None):
    return min(run(argv, env) for _ in range(repeat or args.repeat))


pre = {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(tmp, "run.resmon")}


def view_figures():
    """Reads and symbolizes a snapshot of 1,000,000 held blocks from 10,000 stacks."""
    import time
    snap = os.path.join(tmp, "many.resmon")
    e = {k: v for k, v in os.environ.items() if not k.startswith("RESMON_") and k != "LD_PRELOAD"}
    e.update({"LD_PRELOAD": preload, "RESMON_OUTPUT": snap})
    subprocess.run([os.path.abspath(args.many_stacks), "1000000", "10000"], env=e, check=True, capture_output=True)
    size = os.path.getsize(snap)
    rows = []
    for fmt in ("json", "text", "html", "pprof"):
        start = time.monotonic()
        p = subprocess.Popen([os.path.abspath(args.view), "--format", fmt, "-o", os.path.join(tmp, "out"), snap],
                             stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)  # this child's own peak RSS
        wall = time.monotonic() - start
        if status != 0:
            sys.exit(f"resmon-view --format {fmt} failed: {p.stderr.read()}")
        rows.append((fmt, wall, usage.ru_maxrss / 1024))
    print()
    print(f"resmon-view: a snapshot of 1,000,000 held blocks from 10,000 stacks ({size / 2**20:.1f} MiB)")
    print()
    print("| format | seconds | peak RSS | target |")
    print("|---|---|---|---|")
    for fmt, wall, rss in rows:
        print(f"| {fmt} | {wall:.2f} | {rss:.0f} MiB | < 5 s, < 1 GiB |")


if args.only_view:
    view_figures()
    sys.exit(0)
pairs = str(args.pairs)
rows = []
base = best([plain, "churn", pairs])
rows.append(("plain", base))
rows.append(("resmon, depth 16 (auto: cached unwind rules)", best([plain, "churn", pairs], pre)))
rows.append(("resmon, depth 16, RESMON_STACK_METHOD=unwind", best([plain, "churn", pairs],
                                                                  dict(pre, RESMON_STACK_METHOD="unwind"))))
rows.append(("resmon, depth 16, RESMON_STACK_METHOD=fp", best([plain, "churn", pairs],
                                                              dict(pre, RESMON_STACK_METHOD="fp"))))
rows.append(("resmon, depth 16, RESMON_TEMPORARY=0 (no counts per stack)",
             best([plain, "churn", pairs], dict(pre, RESMON_TEMPORARY="0"))))
rows.append(("resmon, depth 0 (return address only)", best([plain, "churn", pairs], dict(pre, RESMON_STACK_DEPTH="0"))))
rows.append(("resmon, RESMON_SAMPLE=512KiB (depth 16)", best([plain, "churn", pairs], dict(pre, RESMON_SAMPLE="512KiB"))))
rows.append(("preload, memory not tracked (RESMON_KINDS=fd): the interposition alone",
             best([plain, "churn", pairs], dict(pre, RESMON_KINDS="fd"))))
if args.lsan:
    rows.append(("LeakSanitizer (-fsanitize=leak)", best([os.path.abspath(args.lsan), "churn", pairs])))
small = str(args.pairs // 20)
if shutil.which("heaptrack"):
    rows.append(("heaptrack", best(["heaptrack", "-o", os.path.join(tmp, "ht"), plain, "churn", small], repeat=1)))
if shutil.which("valgrind"):
    rows.append(("valgrind --leak-check=full", best(["valgrind", "--leak-check=full", "-q", plain, "churn", small],
                                                    repeat=1)))

print(f"Churn: 2 threads x {args.pairs:,} malloc+free pairs, 1024 live blocks each, 16-527 B "
      f"(heaptrack and valgrind: {args.pairs // 20:,} pairs); best of {args.repeat}")
print()
print("| run | ns per pair | vs plain |")
print("|---|---|---|")
for name, ns in rows:
    print(f"| {name} | {ns:.1f} | {ns / base:.2f}x |")

n = str(args.hold)
hold_plain = best([plain, "hold", n])
hold_pre = best([plain, "hold", n], pre)
print()
print(f"Memory: {args.hold:,} held blocks of 32 bytes, peak RSS (VmHWM)")
print()
print("| run | peak RSS | added per held block |")
print("|---|---|---|")
print(f"| plain | {hold_plain / 1024:.1f} MiB | |")
print(f"| resmon (depth 16) | {hold_pre / 1024:.1f} MiB | {(hold_pre - hold_plain) * 1024 / args.hold:.1f} B |")
if args.lsan:
    hold_lsan = best([os.path.abspath(args.lsan), "hold", n])
    print(f"| LeakSanitizer | {hold_lsan / 1024:.1f} MiB | {(hold_lsan - hold_plain) * 1024 / args.hold:.1f} B |")
if args.view and args.many_stacks:
    view_figures()
shutil.rmtree(tmp, ignore_errors=True)
