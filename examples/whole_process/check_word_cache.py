#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The demo's program under whole-process mode: its output and status are its
own, and resmon-view names what it loses: the 10 entries of its 10 distinct
words, definitely lost where lookup() makes them (each entry's vector of
positions indirectly lost with it), and the FILE* it never closes.

Usage: check_word_cache.py RESMON_RUN RESMON_VIEW WORD_CACHE"""
import json
import os
import subprocess
import sys
import tempfile

run, view, program = sys.argv[1:4]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as work:
    snap = os.path.join(work, "word_cache.resmon")
    plain = subprocess.run([program], capture_output=True, text=True, timeout=60)
    traced = subprocess.run([run, "-o", snap, "--", program], capture_output=True, text=True, timeout=60)
    check(traced.returncode == plain.returncode == 0, f"status {traced.returncode}, plain {plain.returncode}")
    check(traced.stdout == plain.stdout == "counted 13 words\n", f"output {traced.stdout!r}")
    r = subprocess.run([view, "--format", "json", snap], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"resmon-view: {r.stderr}")
    doc = json.loads(r.stdout) if r.returncode == 0 else {"groups": []}
    lost = {}
    for g in doc["groups"]:
        if g["kind"] != "memory" or g.get("lost") is None:
            continue
        functions = [f.get("function", "") for f in g["stack"]]
        site = "lookup" if any("lookup" in f for f in functions) else "main" if any(f == "main" for f in functions) else "?"
        key = (site, g["lost"])
        lost[key] = lost.get(key, 0) + g["count"]
    print("lost memory by function:", lost)
    # Every entry is lost (glibc's arena pointing at the chunk after the last
    # one must not keep it "reachable"); the positions' buffers go with them.
    check(lost.get(("lookup", "definite")) == 10, f"10 entries definitely lost in lookup: {lost}")
    check(sum(n for (site, cls), n in lost.items() if cls == "indirect") == 10,
          f"the 10 entries' position buffers indirectly lost: {lost}")
    # The text names each lost group by the program's own frame, not by the
    # standard library template it inlined (std::vector's allocate).
    text = subprocess.run([view, snap], capture_output=True, text=True, timeout=120).stdout
    heads = [line for line in text.splitlines() if line.startswith("memory indirectly lost")]
    check(len(heads) == 1 and ": main at main.cpp:" in heads[0],
          f"the indirectly lost buffers named by main: {heads}")
    files = [g for g in doc["groups"] if g["kind"] == "file"]
    check(sum(g["count"] for g in files) == 1, f"the log FILE* held: {files}")

print("word_cache: " + ("ok" if not failures else f"{len(failures)} check(s) failed"))
sys.exit(1 if failures else 0)
