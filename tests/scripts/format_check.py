#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The library and the tools follow the project's .clang-format (120
columns): clang-format --dry-run --Werror on every header and source under
include/ and tools/ finds nothing to change.

usage: format_check.py SOURCE_ROOT CLANG_FORMAT
"""
import os
import subprocess
import sys

root, clang_format = sys.argv[1], sys.argv[2]
files = []
for top in ("include", "tools"):
    for folder, _, names in os.walk(os.path.join(root, top)):
        files += [os.path.join(folder, n) for n in sorted(names) if n.endswith((".hpp", ".h", ".cpp"))]
r = subprocess.run([clang_format, "--dry-run", "--Werror", f"--style=file:{os.path.join(root, '.clang-format')}"] +
                   files, capture_output=True, text=True)
wrong = sorted({line.split(":", 1)[0] for line in r.stderr.splitlines() if ": error:" in line})
for path in wrong:
    print("FAIL: not formatted:", os.path.relpath(path, root), f"(clang-format -i {os.path.relpath(path, root)})")
if r.returncode != 0 and not wrong:
    print(r.stderr[-2000:])
print(f"format: {len(files)} files checked, {len(wrong)} to reformat")
sys.exit(1 if r.returncode != 0 or len(files) < 50 else 0)
