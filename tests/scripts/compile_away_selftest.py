#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks compile_away.py itself: a difference outside .text (a COMDAT
function, .rodata, .data, .bss, .init_array; tests/compile_away/outside_text.cpp)
must make it fail, saying that the object code differs.

Usage: compile_away_selftest.py SCRIPT COMPILER... -- SOURCE INCLUDE_DIR"""
import subprocess
import sys


def main():
    script = sys.argv[1]
    rest = sys.argv[2:]
    failures = 0
    for part in ["COMDAT", "RODATA", "DATA", "BSS", "INIT_ARRAY"]:
        p = subprocess.run([sys.executable, script] + rest + [f"-DPART_{part}"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        if p.returncode == 0 or "object code differs" not in p.stdout:
            print(f"FAILED: a difference in {part} went unnoticed (exit {p.returncode})\n--- output ---\n{p.stdout}")
            failures += 1
        else:
            print(f"ok: a difference in {part} is reported")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
