#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs a test program as Debian ships one: stripped, its debug information
in a separate file found through .gnu_debuglink. The symbolizer must still
name the program's static functions (libdw reads the debug file's symbol
table); the module's own file has none of them.

usage: stripped_symbols.py OBJCOPY PROGRAM [ARGS...]
"""
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    objcopy, program, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    with tempfile.TemporaryDirectory() as tmp:
        name = os.path.basename(program)
        stripped = os.path.join(tmp, name)
        debug = stripped + ".debug"
        subprocess.run([objcopy, "--only-keep-debug", program, debug], check=True)
        shutil.copy(program, stripped)
        subprocess.run([objcopy, "--strip-all", "--add-gnu-debuglink=" + debug, stripped], check=True)
        readelf = os.path.join(os.path.dirname(objcopy), "readelf")
        sections = subprocess.run([readelf, "-S", "--wide", stripped], capture_output=True, text=True, check=True)
        if ".symtab" in sections.stdout or ".debug_info" in sections.stdout:
            print(f"stripped_symbols: {stripped} still has a .symtab or debug information; the test would prove nothing")
            return 1
        return subprocess.run([stripped] + args, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
