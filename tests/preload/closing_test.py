#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What is closed late or out of resmon's sight is not reported held: a
descriptor closed by the raw close system call, and what a library's
destructor closes and frees after the program's exit handlers (the last
snapshot is written after every library's destructors), and a failed
dlopen's message the C library keeps (resmon's own dlsym leaves it). A shell's
redirections onto its standard streams hold nothing either. The one
descriptor the program leaks is reported, at its function.

A program that leaked every descriptor it may have still gets its
snapshot (resmon raises the soft limit for the one open it needs).

usage: closing_test.py PRELOAD VIEW CLOSING DESCRIPTOR_LIMIT
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, outcome, run, view_json  # noqa: E402


def main():
    preload, view, program, limited = sys.argv[1:5]
    work = tempfile.mkdtemp(prefix="resmon-closing-")
    out = os.path.join(work, "c.resmon")
    plain = run([program])
    r = run([program], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out})
    check(r.returncode == 0 and r.stdout == plain.stdout, f"output and status unchanged: {r.returncode} {r.stdout!r}")
    doc = view_json(view, out)
    fds = [g for g in doc["groups"] if g["kind"] == "fd"]
    check(len(fds) == 1 and fds[0]["count"] == 1 and fds[0]["stack"][0]["function"].startswith("leak_descriptor"),
          f"only the leaked descriptor is held: {[(g['count'], g['stack'][0]['function']) for g in fds]}")
    lib = [g for g in doc["groups"] if g["kind"] == "memory" and g["bytes"] == 4321]
    check(not lib, "the block the library's destructor freed is not held")
    classes = doc.get("reachability")
    check(classes is not None and classes["definite"]["count"] == 0 and classes["indirect"]["count"] == 0,
          f"no memory lost (a pending dlerror message is the C library's): {classes}")
    # A shell's redirections: the saved stream put back with dup2 is no new descriptor.
    bash = shutil.which("bash")
    if bash:
        r = run([bash, "-c", "echo x >/dev/null; read l </etc/hostname; echo y 2>/dev/null; echo done"],
                {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(work, "b.resmon"), "RESMON_EXIT_CODE": "23"})
        check(r.returncode == 0 and r.stdout == b"y\ndone\n", f"bash redirections hold nothing: {r.returncode} {r.stdout!r}")
    # Out of descriptors at exit.
    out = os.path.join(work, "l.resmon")
    r = run([limited], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out})
    check(r.returncode == 0 and r.stdout in (b"descriptor_limit: out of descriptors\n", b""),
          f"descriptor_limit: {r.returncode} {r.stdout!r} {r.stderr!r}")
    if r.stdout:
        check(os.path.exists(out), f"a snapshot out of descriptors: {r.stderr!r}")
        if os.path.exists(out):
            doc = view_json(view, out)
            leaked = sum(g["count"] for g in doc["groups"]
                         if g["kind"] == "fd" and g["stack"][0]["function"].startswith("leak_all"))
            check(leaked > 50, f"the descriptors leak_all leaked: {leaked}")
    return outcome("closing_test", "only the leaked descriptor is held")


if __name__ == "__main__":
    sys.exit(main())
