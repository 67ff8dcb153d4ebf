#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Compiles kernel_compat's Windows hooks and the C facade for the Windows
# kernel (clang --target=x86_64-pc-windows-msvc, freestanding, no exceptions,
# no RTTI) and checks that the result is an x64 COFF object whose only
# undefined symbols are kernel imports (__imp_*) and memcpy/memset/memmove.
# Usage: check_windows.py <clang++> <include-dir> <source> <out.obj>
import re
import subprocess
import sys

clang, include, source, out = sys.argv[1:5]
cmd = [clang, "--target=x86_64-pc-windows-msvc", "-std=c++20", "-ffreestanding", "-fno-exceptions", "-fno-rtti",
       "-nostdinc++", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I", include, "-c", source, "-o", out]
subprocess.run(cmd, check=True)
magic = open(out, "rb").read(2)
assert magic == b"\x64\x86", "not an x64 COFF object: %r" % magic
undefined = [u for u in subprocess.run(["nm", "-u", out], capture_output=True, text=True, check=True).stdout.split()
             if u not in ("U", "w")]
bad = [u for u in undefined if not re.match(r"^(__imp_\w+|memcpy|memset|memmove)$", u)]
print("undefined:", " ".join(undefined))
if bad:
    sys.exit("FAIL: symbols outside the kernel imports: " + " ".join(bad))
for f in ("resmon_install", "resmon_track_acquire", "resmon_uninstall"):
    defined = subprocess.run(["nm", "--defined-only", out], capture_output=True, text=True, check=True).stdout
    if not re.search(r" T %s$" % f, defined, re.M):
        sys.exit("FAIL: %s not defined" % f)
print("ok: x64 COFF object, only kernel imports undefined")
