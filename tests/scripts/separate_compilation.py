#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Separate compilation: the program built with RESMON_SEPARATE_COMPILATION
tracks and reports (it checks itself), and the unit that only uses the
macros defines none of resmon's functions, where the
same unit built header-only defines the core's slow paths.

usage: separate_compilation.py PROGRAM SEPARATE_ARCHIVE INLINE_ARCHIVE
"""
import subprocess
import sys

program, separate, inline = sys.argv[1:4]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def defined_functions(archive):
    out = subprocess.run(["nm", "-C", "--defined-only", archive], capture_output=True, text=True, check=True).stdout
    return [line.split(" ", 2)[2] for line in out.splitlines() if len(line.split(" ", 2)) == 3 and
            line.split(" ", 2)[1] in ("T", "W", "t", "w")]


r = subprocess.run([program], capture_output=True, text=True, timeout=30)
check(r.returncode == 0 and "separate compilation: ok" in r.stdout, f"the program: {r.returncode} {r.stdout}{r.stderr[-500:]}")

mine = defined_functions(separate)
resmon = [f for f in mine if f.startswith("resmon::")]
check("user_alloc(unsigned long)" in mine and "user_free(void*)" in mine, f"the user's functions: {mine}")
# Nothing of resmon: tracking, interning and reading the environment are
# all compiled in the implementation unit.
check(not resmon, f"separate: no function of resmon in the unit: {resmon}")
header_only = [f for f in defined_functions(inline) if f.startswith("resmon::")]
check(any(f.startswith("resmon::core::acquire") or f.startswith("resmon::detail::acquire_here") for f in header_only) and
      len(header_only) > len(resmon) + 10,
      f"header-only, the same unit compiles the core ({len(header_only)} functions of resmon against {len(resmon)})")
print(f"separate: {len(resmon)} functions of resmon in the unit; header-only: {len(header_only)}")
sys.exit(1 if failures else 0)
