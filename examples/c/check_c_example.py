#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs examples/c and checks its uninstall report: the leaked FILE* alone, at
# the line that opened it, with a return address; freed buffers are absent.
import re
import subprocess
import sys

exe, source = sys.argv[1], sys.argv[2]
leak_line = next(i for i, l in enumerate(open(source), 1) if "the leaked one" in l)
p = subprocess.run([exe], capture_output=True, text=True, timeout=60)
out = p.stdout + p.stderr
print(out)
assert p.returncode == 0, p.returncode
assert "held now: 8 buffers (9216 bytes), 1 files, 1 sessions" in p.stdout, "live figures"
assert "resmon: still held at uninstall: 1 resource held in 1 kind" in p.stderr, "report title"
held = [l for l in p.stderr.splitlines() if l.startswith("  held: ")]
assert len(held) == 1, held
m = re.match(r"  held: file 0x[0-9a-f]+, acquired at (\S+):(\d+) in open_log, age .*, return address (0x[0-9a-f]+)$", held[0])
assert m, held[0]
assert m.group(1).endswith("main.c") and int(m.group(2)) == leak_line, (m.groups(), leak_line)
assert int(m.group(3), 16) != 0
assert "memory: " not in p.stderr, "released buffers must not be reported"
assert "leaked files: 1" in p.stdout
print("ok: the report names the leaked FILE* at main.c:%d" % leak_line)
