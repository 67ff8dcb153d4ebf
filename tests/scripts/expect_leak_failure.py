#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs a test binary of the doctest or GoogleTest integration and checks both
directions: clean cases pass silently; leaking cases fail naming the file:line
of each leak and its count."""
import re
import subprocess
import sys


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


def main():
    framework, binary, source = sys.argv[1:4]
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

    rc, out = run(clean)
    expect(rc == 0, "the clean case passes", out)
    expect("resmon" not in out, "the clean case prints nothing of resmon", out)

    rc, out = run(leaky)
    expect(rc != 0, "the leaking case fails", out)
    sep = r"\)?:(?: Failure\nFailed\n| [^\n]*?)"  # gtest: "file:N: Failure\nFailed\n"; doctest: "file:N: ERROR: "
    mem = re.compile(file_re + r"[:(]" + str(mem_line) + sep + r"resmon: 2 memory resources \(48 bytes\) acquired at "
                     + file_re + ":" + str(mem_line) + r" in grab are still held at the end of the leak check at "
                     + file_re + ":" + str(check_line))
    fd = re.compile(file_re + r"[:(]" + str(fd_line) + sep + r"resmon: 1 fd resource acquired at " + file_re + ":"
                    + str(fd_line))
    expect(mem.search(out), f"the memory leak is reported at line {mem_line} with count 2 and 48 bytes", out)
    expect(fd.search(out), f"the fd leak is reported at line {fd_line} with count 1", out)

    if framework == "gtest":
        rc, out = run([binary, "--gtest_filter=Listener.CleanWithoutMacroPasses", "--resmon-listener"])
        expect(rc == 0, "a clean test passes under the listener", out)
        rc, out = run([binary, "--gtest_filter=Listener.LeakWithoutMacroFails", "--resmon-listener"])
        expect(rc != 0, "a leaking test fails under the listener", out)
        expect(re.search(r"resmon: 1 memory resource \(64 bytes\) acquired at " + file_re + ":" + str(mem_line)
                         + r" in grab is still held at the end of the leak check at Listener.LeakWithoutMacroFails", out),
               "the listener names the leak", out)
        expect(re.search(r"\[  FAILED  \] Listener.LeakWithoutMacroFails", out), "the test itself is marked failed", out)
        rc, out = run([binary, "--gtest_filter=Listener.LeakWithoutMacroFails"])
        expect(rc == 0, "without the listener, a test without the macro is not checked", out)
    print("ok")


if __name__ == "__main__":
    main()
