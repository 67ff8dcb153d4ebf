#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A program that drops root keeping its capabilities (credentials.cpp, and
util-linux's setpriv when it is there) behaves under the preload as
without it, with resmon's clock ticker and with its flush thread too, and
its snapshot is written. glibc makes every thread repeat a set*id call and
aborts the program when one fails; resmon's threads, which had not kept
the capabilities, failed it (exit 134). Not root: the program cannot drop
root, and the preloaded run must fail the same way.

A library constructor that calls set*id inside dlopen, while resmon's flush
thread waits for the loader's lock that dlopen holds, does not hang the
program (the pause waits 2 s at most for that thread).

usage: credentials_test.py PRELOAD VIEW CREDENTIALS PLUGIN
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, outcome, run, view_json  # noqa: E402


def main():
    preload, view, program, plugin = sys.argv[1:5]
    work = tempfile.mkdtemp(prefix="resmon-credentials-")
    os.chmod(work, 0o1777)  # the program ends as nobody: it must still write its snapshot
    commands = [[program]]
    setpriv = shutil.which("setpriv")
    if setpriv:
        commands.append([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "id", "-u"])
    for cmd in commands:
        name = os.path.basename(cmd[0])
        plain = run(cmd, timeout=60)
        print(f"{name}, plain: status {plain.returncode}, {plain.stdout!r}")
        for extra in ({}, {"RESMON_FLUSH_INTERVAL": "100ms"}, {"RESMON_CLOCK_TICKER": "0"}):
            out = os.path.join(work, f"{name}.{len(extra) and list(extra)[0]}.resmon")
            r = run(cmd, {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, **extra}, timeout=60)
            check(r.returncode == plain.returncode and r.stdout == plain.stdout and r.stderr == plain.stderr,
                  f"{name} {extra}: status {r.returncode}, {r.stdout!r} {r.stderr[-300:]!r} "
                  f"(plain: {plain.returncode}, {plain.stdout!r})")
            if plain.returncode == 0 and cmd[0] == program:
                check(os.path.exists(out), f"{name} {extra}: the snapshot is written")
                if os.path.exists(out):
                    groups = view_json(view, out)["groups"]
                    check(any(g["kind"] == "memory" and g["bytes"] == 77 and g["count"] == 1 for g in groups),
                          f"{name} {extra}: the 77-byte block is held")
    # Many threads calling set*id at once share one pause; with the flush
    # thread stopping and starting around them, none may hang (a race of
    # two pauses joined a thread handle glibc had reused: it waited for ever).
    for round in range(5):
        try:
            r = run([program, "concurrent"], {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(work, "c.resmon"),
                                              "RESMON_FLUSH_INTERVAL": "50ms"}, timeout=60)
            check(r.returncode == 0 and r.stdout == b"concurrent: 1600 calls\n",
                  f"concurrent set*id, round {round}: {r.returncode} {r.stdout!r} {r.stderr[-300:]!r}")
        except subprocess.TimeoutExpired:
            check(False, f"concurrent set*id, round {round}: the program hung (60 s)")
    try:
        r = run([program, "dlopen", plugin], {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(work, "d.resmon"),
                                              "RESMON_FLUSH_INTERVAL": "50ms"}, timeout=30)
        check(r.returncode == 0 and r.stdout == b"loaded\n", f"set*id inside dlopen: {r.returncode} {r.stdout!r}")
    except subprocess.TimeoutExpired:
        check(False, "set*id inside dlopen: the program hung (30 s)")
    return outcome("credentials_test", "dropping root with capabilities kept, under the preload")


if __name__ == "__main__":
    sys.exit(main())
