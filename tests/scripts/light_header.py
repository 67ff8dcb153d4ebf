#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""<resmon/macros.hpp> is a light header: with tracking on it preprocesses
to at most 10,000 lines and brings nothing of reports (no leak scope, no
report code, no symbolizer, no <link.h> or <cxxabi.h>).

usage: light_header.py INCLUDE_DIR COMPILER [ARGS...]
"""
import subprocess
import sys

LIMIT = 10_000
HEAVY = ["leak_scope.hpp", "resmon/report/report.hpp", "symbolize.hpp", "/link.h", "/cxxabi.h", "/string", "/vector"]


def preprocess(cxx, include, enable):
    source = "#include <resmon/macros.hpp>\n"
    args = cxx + ["-std=c++20", "-E", "-H", "-I", include, "-x", "c++", "-"]
    if enable:
        args.insert(-3, "-DRESMON_ENABLE=1")
    p = subprocess.run(args, input=source, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"FAILED: {' '.join(args)}\n{p.stderr}")
        sys.exit(1)
    included = [line.lstrip(". ").strip() for line in p.stderr.splitlines() if line.startswith(".")]
    return p.stdout.count("\n"), included


def main():
    include, cxx = sys.argv[1], sys.argv[2:]
    failed = False
    for enable in (True, False):
        lines, included = preprocess(cxx, include, enable)
        mode = "tracking on" if enable else "tracking off"
        print(f"<resmon/macros.hpp>, {mode}: {lines} preprocessed lines, {len(included)} headers")
        if lines > LIMIT:
            print(f"FAILED: {lines} lines, over the {LIMIT} a light header may have")
            failed = True
        heavy = [h for h in included if any(h.endswith(x) or x + "/" in h for x in HEAVY)]
        if heavy:
            print(f"FAILED: it includes {heavy}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
