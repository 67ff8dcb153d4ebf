#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs the example driver's user-space harness (load -> work -> unload) and
# checks the unload report: exactly the handle the harness saw left open, at
# driver.c's leak line, with a return address that lies in driver_work and
# that addr2line maps back to that line.
import re
import shutil
import subprocess
import sys

exe, source = sys.argv[1], sys.argv[2]
leak_line = next(i for i, l in enumerate(open(source), 1) if "resmon-leak-site" in l)
p = subprocess.run([exe], capture_output=True, text=True, timeout=60)
out = p.stdout
print(out, p.stderr)
assert p.returncode == 0, p.returncode
open_handles = re.findall(r"harness: handle still open: (0x[0-9a-f]+)", out)
assert len(open_handles) == 1, open_handles
assert "harness: table uses outside a pinned context: 0" in out
assert "resmon: still held at uninstall: 1 resource held in 1 kind" in out
held = [l for l in out.splitlines() if l.startswith("  held: ")]
assert len(held) == 1, held
m = re.match(r"  held: event (0x[0-9a-f]+), acquired at (\S+):(\d+) in driver_work, age .*, return address (0x[0-9a-f]+)$", held[0])
assert m, held[0]
key, file, line, ret = m.group(1), m.group(2), int(m.group(3)), int(m.group(4), 16)
assert key == open_handles[0], (key, open_handles)
assert file.endswith("driver.c") and line == leak_line, (file, line, leak_line)

# The return address: inside driver_work, and addr2line says driver.c:<leak line>.
runtime = int(re.search(r"driver_work at (0x[0-9a-f]+)", out).group(1), 16)
nm = subprocess.run(["nm", "-S", exe], capture_output=True, text=True, check=True).stdout
sym = re.search(r"^([0-9a-f]+) ([0-9a-f]+) T driver_work$", nm, re.M)
assert sym, "driver_work not in nm output"
start, size = int(sym.group(1), 16), int(sym.group(2), 16)
bias = runtime - start
assert start <= ret - bias < start + size, (hex(ret), hex(runtime), size)
if shutil.which("addr2line"):
    where = subprocess.run(["addr2line", "-e", exe, hex(ret - bias - 1)], capture_output=True, text=True).stdout
    print("addr2line:", where.strip())
    assert re.search(r"driver\.c:%d\b" % leak_line, where), where
print("ok: the unload report names event %s at driver.c:%d, return address %s in driver_work" % (key, leak_line, hex(ret)))
