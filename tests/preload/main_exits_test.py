#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A program whose main thread ends with pthread_exit (tests/preload/
main_exits.cpp) ends under the preload as it does plain: resmon's clock
ticker and snapshot writer end when only they are left, the final snapshot
is written, names the leak at work() with the executable's file and line
(/proc/self/exe names nothing once the main thread has ended), and its
reachability is computed (the ended main thread is not waited for). A
program that ends with quick_exit, from main or another thread, gets its
snapshot and RESMON_EXIT_CODE as well.

usage: main_exits_test.py PRELOAD VIEW MAIN_EXITS
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, outcome, run, view_json  # noqa: E402


def main():
    preload, view, program = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="resmon-main-exits-")
    plain = run([program], timeout=30)
    check(plain.returncode == 0 and plain.stdout == b"main_exits: the last thread ends\n",
          f"plain run: {plain.returncode} {plain.stdout!r}")
    for name, extra in (("default", {}), ("flush thread, no ticker",
                                          {"RESMON_FLUSH_INTERVAL": "1s", "RESMON_CLOCK_TICKER": "0"}),
                        ("flush thread and ticker", {"RESMON_FLUSH_INTERVAL": "1s"})):
        out = os.path.join(work, "m.resmon")
        if os.path.exists(out):
            os.remove(out)
        env = {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, **extra}
        start = time.monotonic()
        try:
            r = run([program], env, timeout=20)
        except subprocess.TimeoutExpired:
            check(False, f"{name}: the process did not end (resmon's threads kept it alive)")
            continue
        took = time.monotonic() - start
        check(r.returncode == 0 and r.stdout == plain.stdout and r.stderr == plain.stderr,
              f"{name}: output and status unchanged: {r.returncode} {r.stdout!r} {r.stderr!r}")
        check(took < 5, f"{name}: it ended in {took:.1f} s")
        if not os.path.exists(out):
            check(False, f"{name}: no snapshot written")
            continue
        doc = view_json(view, out)
        leak = [g for g in doc["groups"] if g["kind"] == "memory" and g["bytes"] == 77]
        check(len(leak) == 1, f"{name}: the 77-byte block is held: {[g['bytes'] for g in doc['groups']]}")
        if leak:
            top = leak[0]["stack"][0]
            check(top.get("function", "").startswith("work") and top.get("file", "").endswith("main_exits.cpp"),
                  f"{name}: named at work() in main_exits.cpp: {top}")
            check(leak[0].get("lost") is None, f"{name}: a global holds it: {leak[0]}")
        classes = doc.get("reachability")
        check(classes is not None and classes["reachable"]["count"] >= 1 and classes["definite"]["count"] == 0,
              f"{name}: reachability computed: {classes}")
    # quick_exit runs no exit handler: the snapshot is written from resmon's
    # at_quick_exit handler, after the program's, from the thread that calls it.
    for how in ("quick", "quick-thread"):
        out = os.path.join(work, f"{how}.resmon")
        plain = run([program, how], timeout=30)
        check(plain.returncode == 3 and plain.stdout == b"main_exits: the last thread ends\n",
              f"{how}, plain run: {plain.returncode} {plain.stdout!r}")
        r = run([program, how], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out}, timeout=30)
        check(r.returncode == 3 and r.stdout == plain.stdout, f"{how}: status and output unchanged: {r.returncode}")
        check(os.path.exists(out), f"{how}: the snapshot is written")
        if os.path.exists(out):
            doc = view_json(view, out)
            check(any(g["kind"] == "memory" and g["bytes"] == 77 for g in doc["groups"]),
                  f"{how}: the 77-byte block is held")
        r = run([program, how], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_EXIT_CODE": "23",
                                 "RESMON_EXIT_ON": "memory"}, timeout=30)
        check(r.returncode == 23, f"{how}: RESMON_EXIT_CODE=23 with something held gives 23 (got {r.returncode})")
    return outcome("main_exits_test", "the process ends, the snapshot names the leak; quick_exit writes it too")


if __name__ == "__main__":
    sys.exit(main())
