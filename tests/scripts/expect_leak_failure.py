#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs a test binary of the doctest or GoogleTest integration and checks both
directions: clean cases pass silently; leaking cases fail naming the file:line
of each leak and its count. Every run must run exactly one test case: a filter
that matches nothing (a renamed case) exits 0 and would pass vacuously.

Usage: expect_leak_failure.py doctest|gtest BINARY SOURCE [clean=FILTER] [leaky=FILTER]
(the optional filters replace the default case names; the self-test uses them
to prove that a filter matching nothing fails)."""
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET


def run(args):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    return p.returncode, p.stdout


def line_of(source, marker):
    with open(source) as f:
        for n, text in enumerate(f, 1):
            if marker in text:
                return n
    sys.exit(f"marker {marker!r} not found in {source}")


def expect(cond, what, output):
    if not cond:
        print(f"FAILED: {what}\n--- output ---\n{output}")
        sys.exit(1)


def results(framework, args):
    """Returns: (cases run, cases failed), read from the framework's
    machine-readable report of the same run (GoogleTest's JSON, doctest's
    XML), not from its console text."""
    with tempfile.TemporaryDirectory() as tmp:
        if framework == "doctest":
            # doctest's own XML reporter: its JUnit one leaves out failures
            # added as messages (ADD_FAIL_AT, what the integration reports with).
            report = os.path.join(tmp, "report.xml")
            subprocess.run(args + ["-r=xml", "-o=" + report], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=120)
            totals = ET.parse(report).getroot().find(".//OverallResultsTestCases")
            if totals is None:
                return 0, 0
            return int(totals.get("successes", 0)) + int(totals.get("failures", 0)), int(totals.get("failures", 0))
        report = os.path.join(tmp, "report.json")
        subprocess.run(args + ["--gtest_output=json:" + report], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)
        doc = json.load(open(report))
        cases = [t for suite in doc.get("testsuites", []) for t in suite.get("testsuite", [])
                 if t.get("result") == "COMPLETED"]
        return len(cases), sum(1 for t in cases if t.get("failures"))


def ran_one(framework, args, passed):
    """Returns: true when exactly one test case ran, and it passed
    (passed=True) or failed (passed=False)."""
    return results(framework, args) == (1, 0 if passed else 1)


def main():
    framework, binary, source = sys.argv[1:4]
    overrides = dict(arg.split("=", 1) for arg in sys.argv[4:])
    mem_line = line_of(source, "leak-site: memory")
    fd_line = line_of(source, "leak-site: fd")
    check_line = line_of(source, "leak-check")
    file_re = r"\S*" + re.escape(source.split("/")[-1])
    if framework == "doctest":
        clean = [binary, "-tc=clean case passes"]
        leaky = [binary, "-tc=leaking case fails"]
    else:
        clean = [binary, "--gtest_filter=Clean.*"]
        leaky = [binary, "--gtest_filter=Leaks.*"]

    flag = "-tc=" if framework == "doctest" else "--gtest_filter="
    if "clean" in overrides:
        clean = [binary, flag + overrides["clean"]]
    if "leaky" in overrides:
        leaky = [binary, flag + overrides["leaky"]]

    rc, out = run(clean)
    expect(rc == 0, "the clean case passes", out)
    expect(ran_one(framework, clean, True), "exactly one clean case ran, and passed", out)
    expect("resmon" not in out, "the clean case prints nothing of resmon", out)

    rc, out = run(leaky)
    expect(rc != 0, "the leaking case fails", out)
    expect(ran_one(framework, leaky, False), "exactly one leaking case ran, and failed", out)
    sep = r"\)?:(?: Failure\nFailed\n| [^\n]*?)"  # gtest: "file:N: Failure\nFailed\n"; doctest: "file:N: ERROR: "
    mem = re.compile(file_re + r"[:(]" + str(mem_line) + sep + r"resmon: 2 memory resources \(48 bytes\) acquired at "
                     + file_re + ":" + str(mem_line) + r" in grab are still held at the end of the leak check at "
                     + file_re + ":" + str(check_line))
    fd = re.compile(file_re + r"[:(]" + str(fd_line) + sep + r"resmon: 1 fd resource acquired at " + file_re + ":"
                    + str(fd_line))
    expect(mem.search(out), f"the memory leak is reported at line {mem_line} with count 2 and 48 bytes", out)
    expect(fd.search(out), f"the fd leak is reported at line {fd_line} with count 1", out)

    if framework == "gtest":
        clean_listener = [binary, "--gtest_filter=Listener.CleanWithoutMacroPasses", "--resmon-listener"]
        rc, out = run(clean_listener)
        expect(rc == 0, "a clean test passes under the listener", out)
        expect(ran_one(framework, clean_listener, True), "exactly one clean test ran under the listener, and passed", out)
        leaky_listener = [binary, "--gtest_filter=Listener.LeakWithoutMacroFails", "--resmon-listener"]
        rc, out = run(leaky_listener)
        expect(rc != 0, "a leaking test fails under the listener", out)
        expect(ran_one(framework, leaky_listener, False), "exactly one leaking test ran under the listener, and failed",
               out)
        expect(re.search(r"resmon: 1 memory resource \(64 bytes\) acquired at " + file_re + ":" + str(mem_line)
                         + r" in grab is still held at the end of the leak check at Listener.LeakWithoutMacroFails", out),
               "the listener names the leak", out)
        unchecked = [binary, "--gtest_filter=Listener.LeakWithoutMacroFails"]
        rc, out = run(unchecked)
        expect(rc == 0, "without the listener, a test without the macro is not checked", out)
        expect(ran_one(framework, unchecked, True), "exactly one test ran without the listener, and passed", out)
    print("ok")


if __name__ == "__main__":
    main()
