#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A program that enters a new user namespace (unshare -r, as rootless
containers and sandboxes do) behaves under the preload as without it. The
kernel lets only a single-threaded process do that; resmon's own threads
(the clock ticker, the flush thread) are stopped for the call and started
again after it. Where this machine does not allow user namespaces at all,
the preloaded run must fail the same way.

usage: namespace_test.py PRELOAD UNSHARE
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, outcome, run  # noqa: E402


def main():
    preload, unshare = sys.argv[1:3]
    work = tempfile.mkdtemp(prefix="resmon-namespace-")
    cmd = [unshare, "--user", "--map-root-user", "id", "-u"]
    plain = run(cmd, timeout=60)
    print(f"plain: status {plain.returncode}, {plain.stdout!r}")
    for extra in ({}, {"RESMON_FLUSH_INTERVAL": "100ms"}):
        env = {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(work, "u.resmon"), **extra}
        r = run(cmd, env, timeout=60)
        check(r.returncode == plain.returncode and r.stdout == plain.stdout and r.stderr == plain.stderr,
              f"{extra}: status {r.returncode}, {r.stdout!r} {r.stderr!r} (plain: {plain.returncode}, {plain.stdout!r})")
    return outcome("namespace_test", "a new user namespace under the preload")


if __name__ == "__main__":
    sys.exit(main())
