#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What each duty of the core's hot path costs, and the floor of the design.

Builds bench/floor/driver.cpp against the core as it is and against copies of
include/ with one duty taken out (the release quarantine, the clock read, the
peak check, the origin lookup, the generation), then with all of them out:
the skeleton (find a record, write it, index it, count it). Then against
event_log.hpp, the floor of the other design (a per-thread event log matched
in batches), with each way of deleting and without batching. Prints ns added
per malloc+free pair over untracked malloc+free measured in the same run, in
the tight loop and at 64, 1024 and 65,536 live blocks. The variants are
experiments, never shipped: a duty taken out breaks what it is for (a double
release naming the first release, ages, peaks, sites).

With --cross, measures instead what bounds a release on another thread
(cross.cpp: the core against floors of its remote-release protocol).

Usage: python3 bench/floor/run.py [--pairs N] [--cxx g++]
       python3 bench/floor/run.py --cross [--items N]
       python3 bench/floor/run.py --check   (the variants still apply: a test)
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# (file under include/resmon, text, replacement)
DUTIES = {
    "quarantine": [("core/track.hpp", "  quarantine_put(t, p.key, k, p.origin, stamp_ns(p.stamp), at);\n", "")],
    "clock": [("core/track.hpp", "  uint64_t now = stamp_clock();", "  uint64_t now = 1;")],
    "peak check": [("core/track.hpp", "  if (RESMON_DETAIL_UNLIKELY(acquired - c.released > c.peak",
                    "  if (false && RESMON_DETAIL_UNLIKELY(acquired - c.released > c.peak")],
    "origin lookup": [("core/track.hpp", "payload{origin_for(t, a.where, a.ret, a.stack_id),", "payload{1,")],
    "generation": [("core/track.hpp", "  uint32_t generation = next_generation(t, load_relaxed(&r->xstate));",
                    "  uint32_t generation = 5;")],
}

# The other design (event_log.hpp): a per-thread event log matched into a
# table of 32-byte records in batches; it leaves out most duties, so it is a
# floor, not a candidate as it is.
PROTOTYPES = [
    ("event log, backward-shift deletion", [], ["-DRESMON_FLOOR_EVENT_LOG"]),
    ("event log, tombstones", [], ["-DRESMON_FLOOR_EVENT_LOG", "-DRESMON_FLOOR_TOMBSTONES"]),
    ("event log, tombstones, batch of 1", [], ["-DRESMON_FLOOR_EVENT_LOG", "-DRESMON_FLOOR_TOMBSTONES",
                                             "-DRESMON_FLOOR_BATCH=1"]),
    ("event log, tombstones, releases found at the call", [],
     ["-DRESMON_FLOOR_EVENT_LOG", "-DRESMON_FLOOR_TOMBSTONES", "-DRESMON_FLOOR_RELEASE_AT_CALL"]),
]


def patched(tmp, name, patches):
    """Returns: a copy of include/ with the patches applied, under tmp."""
    include = os.path.join(tmp, name.replace(" ", "_"), "include")
    shutil.copytree(os.path.join(ROOT, "include"), include)
    for path, old, new in patches:
        full = os.path.join(include, "resmon", path)
        with open(full) as f:
            text = f.read()
        if old not in text:
            sys.exit(f"bench/floor/run.py: {path} no longer has the line the '{name}' variant takes out: "
                     f"{old.strip()!r}; update DUTIES")
        with open(full, "w") as f:
            f.write(text.replace(old, new, 1))
    return include


def build(tmp, name, patches, defines, args, out="driver"):
    """Returns: the driver built against the variant (patches of the core, or
    defines that select the event-log prototype)."""
    include = patched(tmp, name, patches)
    exe = os.path.join(tmp, name.replace(" ", "_"), out)
    # The prototype must build warning-free; a duty taken out of the core leaves unused names.
    warnings = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"] if defines else []
    subprocess.run([args.cxx, "-std=c++20", "-O2", *warnings, "-DRESMON_ENABLE=1", *defines, "-I", include, os.path.join(HERE, "driver.cpp"), "-o", exe, "-lpthread", "-ldl"], check=True)
    return exe


def variant(tmp, name, patches, defines, args):
    exe = build(tmp, name, patches, defines, args)
    out = subprocess.run([exe, str(args.pairs)], check=True, stdout=subprocess.PIPE, text=True).stdout
    added = {}
    rows = [line.split() for line in out.strip().splitlines()]
    for live, plain, tracked in rows:
        added[int(live)] = float(tracked) - float(plain)
    return added


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3000000)
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"))
    ap.add_argument("--check", action="store_true", help="only check that every variant still applies")
    ap.add_argument("--cross", action="store_true", help="measure releases on another thread (cross.cpp)")
    ap.add_argument("--items", type=int, default=1000000, help="--cross: items per round")
    args = ap.parse_args()
    if args.cross or args.check:
        with tempfile.TemporaryDirectory() as tmp:
            exe = os.path.join(tmp, "cross")
            subprocess.run([args.cxx, "-std=c++20", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-DRESMON_ENABLE=1",
                            "-I", os.path.join(ROOT, "include"), os.path.join(HERE, "cross.cpp"), "-o", exe,
                            "-lpthread", "-ldl"], check=True)
            if args.cross:
                print("| run | ns per item (median of 7) | vs untracked |")
                print("|---|---|---|")
                sys.stdout.flush()
                subprocess.run([exe, str(args.items)], check=True)
                return
    runs = [("the core as it is", [], [])] + [(f"without the {d}", p, []) for d, p in DUTIES.items()]
    runs.append(("skeleton: all five out", [p for ps in DUTIES.values() for p in ps], []))
    runs += PROTOTYPES
    with tempfile.TemporaryDirectory() as tmp:
        if args.check:
            for name, patches, defines in runs:
                if defines:
                    build(tmp, name, patches, defines, args)
                else:
                    patched(tmp, name, patches)
            print(f"{len(runs)} variants apply or build")
            return
        print("| variant | tight | 64 live | 1024 live | 65,536 live |")
        print("|---|---|---|---|---|")
        for name, patches, defines in runs:
            a = variant(tmp, name, patches, defines, args)
            print(f"| {name} | " + " | ".join(f"+{a[live]:.1f}" for live in (0, 64, 1024, 65536)) + " |",
                  flush=True)
    print("ns added per malloc+free pair over untracked, best of 5 rounds interleaved")


if __name__ == "__main__":
    main()
