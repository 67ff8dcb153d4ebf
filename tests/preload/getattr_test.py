#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A thread that asks for its own attributes (pthread_getattr_np) before
its first allocation, as every Rust program's main thread and every Ruby
thread does, runs to its end under the preload, with each stack method, and
the snapshot is written. glibc holds the thread's lock while it allocates
there; resmon's first look at the thread's stack bounds used to ask for the
same lock and wait forever.

usage: getattr_test.py PRELOAD VIEW GETATTR
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, outcome, run, view_json  # noqa: E402


def main():
    preload, view, program = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="resmon-getattr-")
    plain = run([program], timeout=60)
    check(plain.returncode == 0 and plain.stdout == b"main: 0\nthread: 0\ndone\n", f"plain run: {plain.stdout!r}")
    for method in ("auto", "fp", "unwind"):
        out = os.path.join(work, f"{method}.resmon")
        try:
            r = run([program], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_STACK_METHOD": method},
                    timeout=30)
        except subprocess.TimeoutExpired:
            check(False, f"{method}: the program hung (30 s)")
            continue
        check(r.returncode == 0 and r.stdout == plain.stdout, f"{method}: {r.returncode} {r.stdout!r} {r.stderr!r}")
        check(os.path.exists(out), f"{method}: a snapshot")
        if os.path.exists(out):
            doc = view_json(view, out)
            kinds = {k["kind"]: k for k in doc["kinds"]}
            memory, thread = kinds.get("memory"), kinds.get("thread")
            check(memory is not None and memory["total"]["count"] > 0, f"{method}: memory recorded: {memory}")
            classes = doc.get("reachability")
            check(classes is not None and classes["definite"]["count"] == 0, f"{method}: nothing lost: {classes}")
            check(thread is not None and thread["total"]["count"] == 1 and thread["held"]["count"] == 0,
                  f"{method}: one thread, joined: {thread}")
    return outcome("getattr_test", "pthread_getattr_np before a thread's first allocation")


if __name__ == "__main__":
    sys.exit(main())
