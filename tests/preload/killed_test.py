#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A program killed (SIGKILL) while resmon writes one of its periodic
snapshots leaves no partial file beside it: the snapshot is written to an
unnamed file and named once complete. Whatever snapshot is there reads back
whole. While the program runs, no partial file is ever seen beside the
snapshot either (before, a `.tmp.<pid>` file was there a third of the time).

usage: killed_test.py PRELOAD VIEW
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, clean_env, outcome, view_json  # noqa: E402

# Holds 300,000 blocks, so that writing a snapshot takes a while, then waits.
HOLDER = "import time\nheld = [bytearray(24) for _ in range(300000)]\nprint('ready', flush=True)\ntime.sleep(60)\n"


def main():
    preload, view = sys.argv[1:3]
    work = tempfile.mkdtemp(prefix="resmon-killed-")
    rounds = 6
    for i in range(rounds):
        out = os.path.join(work, f"k{i}.resmon")
        # Every object through malloc: 600,000 held blocks.
        env = clean_env({"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_FLUSH_INTERVAL": "1ms",
                         "PYTHONMALLOC": "malloc"})
        p = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE)
        check(p.stdout.readline() == b"ready\n", f"round {i}: the program started")
        deadline = time.monotonic() + 30
        while not os.path.exists(out) and time.monotonic() < deadline:
            time.sleep(0.01)
        check(os.path.exists(out), f"round {i}: a periodic snapshot appeared")
        # Snapshots follow each other, each written for a third of the time
        # or more: what is there beside the snapshot, looked at every 5 ms.
        seen = set()
        stop = time.monotonic() + 0.1 + 0.05 * i
        while time.monotonic() < stop:
            seen.update(f for f in os.listdir(work) if f.startswith(f"k{i}.") and f != f"k{i}.resmon")
            time.sleep(0.005)
        check(not seen, f"round {i}: no partial file appears beside the snapshot: {sorted(seen)}")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        left = sorted(f for f in os.listdir(work) if f.startswith(f"k{i}.") and f != f"k{i}.resmon")
        check(not left, f"round {i}: nothing but the snapshot is left after SIGKILL: {left}")
        if os.path.exists(out):
            doc = view_json(view, out)
            memory = {k["kind"]: k for k in doc["kinds"]}.get("memory")
            check(memory is not None and memory["held"]["count"] >= 300000,
                  f"round {i}: the snapshot reads back whole: {memory and memory['held']}")
    return outcome("killed_test", f"{rounds} programs killed while snapshots were written; no partial file left")


if __name__ == "__main__":
    sys.exit(main())
