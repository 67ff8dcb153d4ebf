#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The freestanding build check: compiles the core and the C facade on
# kernel_compat's platform layer with kernel-style flags, then fails on any
# undefined symbol outside the allow-list (the host hooks and memcpy/memset/
# memmove), on global constructors (kernels run none), unwind tables and
# thread-local storage.
# Usage: check_symbols.py <out-dir> <include-dir> <source> -- <compiler...> [-- <compiler...>]
import os
import re
import subprocess
import sys

FLAGS = ["-std=c++20", "-ffreestanding", "-fno-exceptions", "-fno-rtti", "-fno-asynchronous-unwind-tables",
         "-fno-threadsafe-statics", "-mno-red-zone", "-nostdlib++", "-nostdinc++", "-O2",
         "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-c"]
ALLOWED = re.compile(r"^(resmon_kc_[a-z_]+|memcpy|memset|memmove)$")
FACADE = ["resmon_install", "resmon_uninstall", "resmon_log_all", "resmon_track_acquire", "resmon_track_release",
          "resmon_live_count", "resmon_live_bytes", "resmon_register_kind", "resmon_set_report_callback",
          "resmon_limits_init", "resmon_limits_check", "resmon_misuse_count", "resmon_set_limit", "resmon_admit",
          "resmon_refused_count", "resmon_process_figures"]

out_dir, include_dir, source = sys.argv[1], sys.argv[2], sys.argv[3]
rest = sys.argv[4:]
compilers, cur = [], None
for a in rest:
    if a == "--":
        cur = []
        compilers.append(cur)
    else:
        cur.append(a)
os.makedirs(out_dir, exist_ok=True)
failed = 0
for compiler in compilers:
    name = os.path.basename(compiler[0])
    obj = os.path.join(out_dir, "resmon_kc-%s.o" % name)
    flags = FLAGS
    version = subprocess.run(compiler + ["--version"], capture_output=True, text=True).stdout
    if "Free Software Foundation" in version and int(re.search(r"\) (\d+)", version).group(1)) < 13:
        # g++ learnt -nostdlib++ in 13; for a compile-only step -nostdlib says the same (link nothing).
        flags = [f if f != "-nostdlib++" else "-nostdlib" for f in FLAGS]
    cmd = compiler + flags + ["-I", include_dir, "-I", os.path.dirname(source), source, "-o", obj]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("%s: the freestanding compile failed:\n%s\n%s" % (name, " ".join(cmd), r.stderr))
        failed += 1
        continue
    undefined = subprocess.run(["nm", "-u", obj], capture_output=True, text=True, check=True).stdout.split()
    undefined = [u for u in undefined if u not in ("U", "w")]
    bad = [u for u in undefined if not ALLOWED.match(u)]
    defined = subprocess.run(["nm", "--defined-only", obj], capture_output=True, text=True, check=True).stdout
    missing = [f for f in FACADE if not re.search(r" T %s$" % f, defined, re.M)]
    sections = subprocess.run(["readelf", "-S", "-W", obj], capture_output=True, text=True, check=True).stdout
    ctors = [s for s in (".init_array", ".ctors", ".eh_frame", ".gcc_except_table", ".tbss", ".tdata")
             if s in sections]
    print("%s: undefined: %s" % (name, " ".join(sorted(undefined)) or "(none)"))
    if bad:
        print("%s: FAIL: symbols outside the allow-list: %s" % (name, " ".join(bad)))
    if missing:
        print("%s: FAIL: facade functions not defined: %s" % (name, " ".join(missing)))
    if ctors:
        print("%s: FAIL: sections a kernel cannot use: %s" % (name, " ".join(ctors)))
    if bad or missing or ctors:
        failed += 1
    else:
        print("%s: ok: %d facade functions, no C++ runtime, no TLS, no constructors" % (name, len(FACADE)))
sys.exit(1 if failed else 0)
