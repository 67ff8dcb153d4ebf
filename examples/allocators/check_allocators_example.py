#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs examples/allocators and checks what it prints: the order book's
account figures, the budget refusal, the naive stack's leak, and the report."""
import re
import subprocess
import sys


def fail(what, output):
    print(f"FAILED: {what}\n--- output ---\n{output}")
    sys.exit(1)


def main():
    run = subprocess.run([sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    out = run.stdout
    if run.returncode != 1:
        fail(f"exit status 1 (the naive stack leaks), got {run.returncode}", out)
    m = re.search(r"order_book holds (\d+) blocks \((\d+) bytes\)", out)
    if not m or m.group(1) != "100" or int(m.group(2)) < 100 * 16:
        fail("order_book holds 100 blocks", out)
    m = re.search(r"cache: entry (\d+) refused by the budget \((\d+) bytes held\)", out)
    if not m or m.group(1) != "4" or int(m.group(2)) > 4096:
        fail("the fourth cache entry is refused within 4096 bytes", out)
    # Named by the program's own frame, not the allocator's header.
    # One message: its first line, then the stack when one was captured.
    message = re.search(r"resmon: 1 memory resource \(\d+ bytes\) acquired at (.*?)\(when allocation \d+ failed\)",
                        out, re.S)
    first = message.group(1).splitlines()[0] if message else ""
    if not re.match(r"\S*main\.cpp:\d+ in .*naive_stack::push", first) or "tracking_allocator.hpp" in first:
        fail("the naive stack's leak is named with the failed allocation", out)
    if "order_book" not in out.split("naive_stack", 1)[1]:
        fail("the report lists the order book's site", out)
    print("ok")


main()
