#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs the snapshot reader's fuzz target: every regression file once, then
the seed corpus (copied: the tree is not written) for a bounded time.

usage: run_fuzz.py FUZZER CORPUS_DIR REGRESSIONS_DIR SECONDS
"""
import os
import shutil
import subprocess
import sys
import tempfile

fuzzer, corpus, regressions, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
files = sorted(os.path.join(regressions, f) for f in os.listdir(regressions) if not f.startswith("."))
if files:
    r = subprocess.run([fuzzer, *files], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr[-3000:])
        sys.exit("a regression input fails again")
with tempfile.TemporaryDirectory() as tmp:
    work = os.path.join(tmp, "corpus")
    shutil.copytree(corpus, work)
    r = subprocess.run([fuzzer, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
                        f"-artifact_prefix={tmp}/", work], capture_output=True, text=True)
    tail = r.stderr[-4000:]
    print(tail)
    if r.returncode != 0:
        for f in os.listdir(tmp):
            if f.startswith(("crash-", "leak-", "timeout-", "oom-")):
                print("artifact:", f, open(os.path.join(tmp, f), "rb").read()[:200])
        sys.exit("the fuzzer found a failing input: add it to tests/fuzz/regressions once fixed")
print("fuzz: ok")
