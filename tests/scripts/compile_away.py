#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves the compile-away claim: without RESMON_ENABLE, a translation unit
with the macros compiles to the same machine code (.text, disassembled) as the
same unit without them. With RESMON_ENABLE=1 the code must differ (so the
comparison can fail)."""
import os
import re
import subprocess
import sys
import tempfile


def text_of(compiler, source, include, flags):
    with tempfile.TemporaryDirectory() as d:
        obj = os.path.join(d, "subject.o")
        subprocess.run(compiler + ["-std=c++20", "-c", source, "-I", include, "-o", obj] + flags, check=True)
        dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", obj], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
    lines = []
    for line in dis.splitlines():
        if ":" not in line or line.startswith(obj) or "file format" in line:
            continue
        lines.append(re.sub(r"^\s*[0-9a-f]+:\s*", "", line).strip())
    return lines


def main():
    sep = sys.argv.index("--")
    compiler = sys.argv[1:sep]
    source, include = sys.argv[sep + 1:sep + 3]
    failures = 0
    for opt in ["-O0", "-O2"]:
        without = text_of(compiler, source, include, [opt])
        with_macros = text_of(compiler, source, include, [opt, "-DWITH_MACROS"])
        if not without:
            print(f"{opt}: no code disassembled"); failures += 1
        elif without != with_macros:
            print(f"{opt}: machine code differs with the macros while RESMON_ENABLE is off")
            for a, b in zip(without, with_macros):
                if a != b:
                    print(f"  without: {a}\n  with:    {b}")
                    break
            failures += 1
        else:
            print(f"{opt}: identical ({len(without)} lines of .text)")
        enabled = text_of(compiler, source, include, [opt, "-DWITH_MACROS", "-DRESMON_ENABLE=1"])
        if enabled == without:
            print(f"{opt}: enabled build gives the same code: the comparison proves nothing"); failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
