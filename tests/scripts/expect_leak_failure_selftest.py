#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks expect_leak_failure.py itself: a clean filter that matches no case
(a renamed case: the binary exits 0) and a leaky filter that matches more than
the leaking case must both make it fail, saying that not exactly one case ran.

Usage: expect_leak_failure_selftest.py SCRIPT doctest|gtest BINARY SOURCE"""
import subprocess
import sys


def main():
    script, framework, binary, source = sys.argv[1:5]
    if framework == "doctest":
        cases = ["clean=no such case", "leaky=*case*"]
    else:
        cases = ["clean=NoSuch.*", "leaky=Clean.*:Leaks.*"]
    failures = 0
    for override in cases:
        p = subprocess.run([sys.executable, script, framework, binary, source, override], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        if p.returncode == 0 or "exactly one" not in p.stdout:
            print(f"FAILED: with {override!r} expect_leak_failure.py must fail because not exactly one case ran;"
                  f" exit {p.returncode}\n--- output ---\n{p.stdout}")
            failures += 1
        else:
            print(f"ok: {override!r} is refused")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
