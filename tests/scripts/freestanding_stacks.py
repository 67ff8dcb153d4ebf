#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compiles tests/stacks/freestanding_subject.cpp as freestanding code and
checks that its object code needs nothing but the stub platform and
memcpy/memset/memmove: the stack walker and depot stay kernel-safe.
Usage: freestanding_stacks.py <compiler...> -- <subject.cpp> <include dir>"""
import os
import subprocess
import sys
import tempfile

ALLOWED = {"memcpy", "memset", "memmove", "resmon_stub_pages_alloc", "resmon_stub_pages_free"}


def main():
    sep = sys.argv.index("--")
    compiler = sys.argv[1:sep]
    source, include = sys.argv[sep + 1], sys.argv[sep + 2]
    with tempfile.TemporaryDirectory() as d:
        obj = os.path.join(d, "subject.o")
        flags = ["-std=c++20", "-O2", "-ffreestanding", "-nostdinc++", "-fno-exceptions", "-fno-rtti",
                 "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
        subprocess.run(compiler + flags + ["-c", source, "-I", include, "-o", obj], check=True)
        nm = subprocess.run(["nm", "-u", obj], check=True, stdout=subprocess.PIPE, text=True).stdout
    undefined = {line.split()[-1] for line in nm.splitlines() if line.strip()}
    extra = sorted(undefined - ALLOWED)
    if extra:
        print("the freestanding stack code needs symbols beyond the platform: " + ", ".join(extra))
        return 1
    if "resmon_stub_pages_alloc" not in undefined:
        print("the subject did not use the depot (no pages_alloc): the check would prove nothing")
        return 1
    print("freestanding stack code needs only: " + ", ".join(sorted(undefined)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
