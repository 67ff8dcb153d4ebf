#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compiles tests/stacks/static_program.cpp (resmon.hpp, macros, a report)
with the given compiler under -fsanitize=thread and under
-fsanitize=address,undefined, with -Wall -Wextra -Wpedantic -Werror: a
user's sanitizer build of resmon's headers stays warning-free (g++ warns at
every atomic fence under TSan, -Wtsan). Exit 77 (skipped) when the compiler
cannot build with a sanitizer here.
Usage: sanitizer_headers.py <compiler...> -- <source.cpp> <include dir>"""
import subprocess
import sys
import tempfile


def main():
    sep = sys.argv.index("--")
    compiler = sys.argv[1:sep]
    source, include = sys.argv[sep + 1], sys.argv[sep + 2]
    base = ["-std=c++20", "-O1", "-DRESMON_ENABLE=1", "-Wall", "-Wextra", "-Wpedantic", "-c", "-o", "/dev/null"]
    failed = 0
    for sanitizer in ("thread", "address,undefined"):
        probe = subprocess.run(compiler + ["-x", "c++", f"-fsanitize={sanitizer}", "-c", "-o", "/dev/null", "-"],
                               input="int main() {}\n", capture_output=True, text=True)
        if probe.returncode != 0:
            print(f"{compiler[0]} cannot build with -fsanitize={sanitizer} here: skipped")
            continue
        r = subprocess.run(compiler + base + [f"-fsanitize={sanitizer}", "-Werror", source, "-I", include],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failed += 1
            print(f"-fsanitize={sanitizer} -Werror: the headers warn:\n{r.stderr[:3000]}")
        else:
            print(f"-fsanitize={sanitizer} -Werror: no warning")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
