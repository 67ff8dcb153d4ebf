#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs the GoogleTest or doctest binary that replaces operator new
(tests/integration/*_new_test.cpp) and checks: a clean test, also one whose
assertion fails, reports no leak (the framework's allocations are its own);
a leak is reported once, at the source line of the `new`, with its stack,
whether RESMON_LEAK_CHECK(), the listener or both find it.

Usage: check_framework_leaks.py gtest|doctest BINARY SOURCE"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expect_leak_failure import results  # noqa: E402  (the frameworks' machine-readable reports)

framework, binary, source = sys.argv[1:4]
with open(source) as f:
    site = next(n for n, text in enumerate(f, 1) if "leak-site: widget" in text)
failures = []


def run(*args):
    p = subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    return p.returncode, p.stdout


def check(cond, what, out):
    if not cond:
        failures.append(f"{what}\n--- output ---\n{out}")


def leak_lines(out):
    return re.findall(r"resmon: \d+ \w+ resources? .*", out)


if framework == "gtest":
    cases = {"Clean.NewAndDelete": 0, "Clean.FailingExpectWithMacro": 1, "Leaks.NewWithMacro": 1,
             "Leaks.NewWithoutMacro": 1}
    for listener in ([], ["--resmon-listener"]):
        for case, status in cases.items():
            if case == "Leaks.NewWithoutMacro" and not listener:
                continue  # nothing checks it
            code, out = run(f"--gtest_filter={case}", *listener)
            what = f"{case} {' '.join(listener)}"
            check(results("gtest", [binary, f"--gtest_filter={case}", *listener]) == (1, status),
                  f"{what}: one test ran, {'failed' if status else 'passed'}", out)
            check(code == status, f"{what}: exit status {status}, got {code}", out)
            leaks = leak_lines(out)
            if case.startswith("Clean"):
                check(not leaks, f"{what}: no leak reported (GoogleTest's own allocations are not the test's)", out)
            else:
                check(len(leaks) == 1, f"{what}: the leak reported once, got {len(leaks)}", out)
                check(bool(leaks) and re.search(rf"1 memory resource \(40 bytes\) acquired at \S*gtest_new_test\.cpp:{site} "
                                                r"in .*make_widget\(int\)", leaks[0]) is not None,
                      f"{what}: named at the line of the new", out)
                check(f"gtest_new_test.cpp:{site}: Failure" in out, f"{what}: the failure is at the line of the new", out)
                check("acquired by:" in out and "#0 " in out and "make_widget(int)" in out, f"{what}: with its stack", out)
else:
    code, out = run("--test-case=clean*")
    check(code == 1 and results("doctest", [binary, "--test-case=clean*"]) == (1, 1),
          "the failing check fails its case", out)
    check(not leak_lines(out), "no leak reported for doctest's own allocations", out)
    code, out = run("--test-case=leaks*")
    leaks = leak_lines(out)
    check(code == 1 and len(leaks) == 1, f"the leak reported once, got {len(leaks)}", out)
    check(bool(leaks) and re.search(rf"acquired at \S*doctest_new_test\.cpp:{site} in .*make_widget\(int\)", leaks[0])
          is not None, "named at the line of the new", out)

if failures:
    print("\n\n".join(failures))
    sys.exit(1)
print("ok")
