#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves the compile-away claim: without RESMON_ENABLE, a translation unit
with the macros compiles to the same object code as the same unit without
them: the same sections (name, size, flags), the same disassembly of every
executable section (.text, .text.*, .text.startup, COMDAT functions), and the
same contents and relocations of every data section (.rodata*, .data*,
.bss* sizes, .init_array, .eh_frame, ...). Only debug sections, comments and
notes are ignored. With RESMON_ENABLE=1 the code must differ (so the
comparison can fail).

Usage: compile_away.py COMPILER... -- SOURCE INCLUDE_DIR [FLAG...]
(the FLAGs go to every compile: the self-test selects its subject's part)"""
import os
import re
import subprocess
import sys
import tempfile

IGNORED = re.compile(r"^(\.debug|\.zdebug|\.comment|\.note|\.group$|\.llvm_addrsig$)")


def objdump(args):
    return subprocess.run(["objdump"] + args, check=True, stdout=subprocess.PIPE, text=True).stdout


def sections(obj):
    """Returns: [(name, size, flags)] of the sections compared, in file order."""
    out = []
    for line in objdump(["-h", "-w", obj]).splitlines():
        m = re.match(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+\S+\s+(.*)$", line)
        if m and not IGNORED.match(m.group(1)):
            out.append((m.group(1), int(m.group(2), 16), m.group(3).strip()))
    return out


def strip(dump, obj):
    """Drops the lines that name the object file (it lives in a fresh temporary directory)."""
    return [line.rstrip() for line in dump.splitlines() if line.strip() and obj not in line]


def object_code(compiler, source, include, flags):
    """Returns: the object's sections, then per section its disassembly (with
    relocations) or contents (with relocations), as lines of text."""
    with tempfile.TemporaryDirectory() as d:
        obj = os.path.join(d, "subject.o")
        subprocess.run(compiler + ["-std=c++20", "-c", source, "-I", include, "-o", obj] + flags, check=True)
        secs = sections(obj)
        lines = [f"section {name} size {size:#x} {flags}" for name, size, flags in secs]
        seen = set()
        for name, _, sec_flags in secs:
            if name in seen:  # objdump -j dumps every section of that name at once
                continue
            seen.add(name)
            if "CODE" in sec_flags:
                dump = objdump(["-d", "-r", "--no-show-raw-insn", "-j", name, obj])
                lines += [re.sub(r"^\s*[0-9a-f]+:\s*", "", line).strip() for line in strip(dump, obj)]
            elif "CONTENTS" in sec_flags:
                lines += strip(objdump(["-s", "-j", name, obj]), obj)
                lines += strip(objdump(["-r", "-j", name, obj]), obj)
    return lines


def code_lines(lines):
    return sum(1 for line in lines if not line.startswith("section "))


def main():
    sep = sys.argv.index("--")
    compiler = sys.argv[1:sep]
    source, include = sys.argv[sep + 1:sep + 3]
    extra = sys.argv[sep + 3:]
    failures = 0
    for opt in ["-O0", "-O2"]:
        without = object_code(compiler, source, include, [opt] + extra)
        with_macros = object_code(compiler, source, include, [opt, "-DWITH_MACROS"] + extra)
        if code_lines(without) == 0:
            print(f"{opt}: no code disassembled"); failures += 1
        elif without != with_macros:
            print(f"{opt}: object code differs with the macros while RESMON_ENABLE is off")
            for a, b in zip(without + ["(end)"], with_macros + ["(end)"]):
                if a != b:
                    print(f"  without: {a}\n  with:    {b}")
                    break
            failures += 1
        else:
            names = sorted({line.split()[1] for line in without if line.startswith("section ")})
            print(f"{opt}: identical ({len(without)} lines; sections {' '.join(names)})")
        enabled = object_code(compiler, source, include, [opt, "-DWITH_MACROS", "-DRESMON_ENABLE=1"] + extra)
        if enabled == without:
            print(f"{opt}: enabled build gives the same code: the comparison proves nothing"); failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
