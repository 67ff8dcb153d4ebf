#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs the handle examples and checks what the README says they print: the
fd example reports a reused descriptor and a close by a non-owner, each with
both sites; the thread example reports its forgotten thread and joins it."""
import re
import subprocess
import sys


def run(exe):
    p = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if p.returncode != 0:
        print(f"{exe} exited with {p.returncode}:\n{p.stdout}{p.stderr}")
        sys.exit(1)
    return p.stdout, p.stderr


def expect(pattern, text, what):
    if not re.search(pattern, text, re.M):
        print(f"missing {what}: /{pattern}/ in:\n{text}")
        sys.exit(1)


def main():
    fd_exe, thread_exe = sys.argv[1:3]
    out, _ = run(fd_exe)
    expect(r"^misuse: 1 reused descriptor, 1 close by a non-owner$", out, "misuse counts")
    expect(r"acquire of a key still held \(fd 0x[0-9a-f]+\) at .*fd\.cpp:\d+ in main.*; acquired at .*fd\.cpp:\d+ in main",
           out, "reused descriptor with both sites")
    expect(r"release by a non-owner \(fd 0x[0-9a-f]+\) at .*fd\.cpp:\d+ in main.*; acquired at .*fd\.cpp:\d+ in main",
           out, "wrong owner with both sites")
    out, err = run(thread_exe)
    expect(r"^2 threads to join$", out, "thread records")
    expect(r"tracked_thread started at .*thread\.cpp:\d+ in main was destroyed while joinable", err, "unjoined report")
    expect(r"^work done: 1; forgotten threads: 1$", out, "policy: joined")
    print("handle examples: ok")


if __name__ == "__main__":
    main()
