#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A block the program keeps only in a block another library allocated
before resmon started (its constructor ran first, as libgpg-error's does in
ps) is still reachable: such blocks are roots of the scan while held. The
same block dropped is definitely lost, so the roots hide no leak.

usage: early_test.py PRELOAD VIEW EARLY
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, outcome, run, view_json  # noqa: E402


def main():
    preload, view, program = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="resmon-early-")
    for args, lost in (([], 0), (["lose"], 1)):
        out = os.path.join(work, f"e{len(args)}.resmon")
        r = run([program, *args], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_EXIT_CODE": "23",
                                   "RESMON_LOG": "stderr"})
        check(r.stdout == b"linked\n" and r.returncode == (23 if lost else 0),
              f"{args}: status {r.returncode} (the gate fails only on a real loss)")
        doc = view_json(view, out)
        check(doc["misuse"] == 0 and b"double release" not in r.stderr,
              f"{args}: freeing a block from before resmon started is no misuse: {r.stderr!r}")
        memory = [k for k in doc["kinds"] if k["kind"] == "memory"][0]
        check(memory["total"]["bytes"] < 40000, f"{args}: totals leave out what was allocated before: {memory}")
        classes = doc.get("reachability")
        check(classes is not None and classes["definite"]["count"] == lost,
              f"{args}: {lost} definitely lost: {classes}")
    return outcome("early_test", "blocks from before resmon started are roots")


if __name__ == "__main__":
    sys.exit(main())
