#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compile time of resmon's headers: g++ -O2 -c of a translation unit that
includes a header and tracks one block (or, "included only", does not use
it), against the same unit without it, in the same run (best of N: the
least disturbed run of a shared machine).
The light header target: <resmon/macros.hpp> adds at most 150 ms.

usage: run.py [--cxx g++] [--include include] [--repeat 5]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

UNITS = {
    "nothing": "",
    "<resmon/macros.hpp>, included only": "#include <resmon/macros.hpp>\n#undef RESMON_TRACK_ALLOC\n",
    "<resmon/macros.hpp>": "#include <resmon/macros.hpp>\n",
    "<resmon/macros.hpp>, RESMON_SEPARATE_COMPILATION": "#define RESMON_SEPARATE_COMPILATION\n#include <resmon/macros.hpp>\n",
    "<resmon/report/leak_scope.hpp>": "#include <resmon/report/leak_scope.hpp>\n",
    "<resmon/resmon.hpp>": "#include <resmon/resmon.hpp>\n",
}
BODY = """#include <cstdlib>
void* grow(unsigned long n) {
  void* p = std::malloc(n);
#ifdef RESMON_TRACK_ALLOC
  RESMON_TRACK_ALLOC(p, n);
#endif
  return p;
}
"""


def best(cxx, include, source, repeat, workdir):
    path = os.path.join(workdir, "unit.cpp")
    with open(path, "w") as f:
        f.write(source + BODY)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([cxx, "-std=c++20", "-O2", "-DRESMON_ENABLE=1", "-I", include, "-c", path, "-o",
                        os.path.join(workdir, "unit.o")], check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cxx", default="g++")
    ap.add_argument("--include", default=os.path.join(os.path.dirname(__file__), "..", "..", "include"))
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    if a.repeat < 1:
        print(f"run.py: --repeat {a.repeat}: expected 1 or more")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        base = best(a.cxx, a.include, UNITS["nothing"], a.repeat, tmp)
        print(f"| {a.cxx} -O2 -c, tracking on | ms | added | target |")
        print("|---|---|---|---|")
        print(f"| nothing of resmon | {base * 1000:.0f} | | |")
        for name, source in UNITS.items():
            if not source:
                continue
            t = best(a.cxx, a.include, source, a.repeat, tmp)
            target = "<= 150 ms" if name.startswith("<resmon/macros.hpp>") else ""
            print(f"| {name} | {t * 1000:.0f} | +{(t - base) * 1000:.0f} ms | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
