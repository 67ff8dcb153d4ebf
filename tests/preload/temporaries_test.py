#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Acquisitions per stack and temporaries (RESMON_TEMPORARY), end to end:
the counts of each function of tests/preload/temporaries.cpp in the JSON,
--sort temporaries|allocations in the text, the pprof profile's alloc_*
sample types read back by `go tool pprof`, and the bad values.

usage: temporaries_test.py PRELOAD RESMON_VIEW RESMON_RUN TEMPORARIES
"""
import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, failures, run  # noqa: E402

preload, view, resmon_run, program = (os.path.abspath(a) for a in sys.argv[1:5])


def traced(out, **env):
    r = run([program], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, **env}, text=True)
    check(r.returncode == 0 and r.stdout == "done\n", f"the program runs unchanged: {r.returncode} {r.stderr[-300:]}")
    return out


def stacks_by_function(doc):
    """The allocation groups by their innermost function."""
    out = {}
    for s in doc["allocations"]["stacks"]:
        name = s["stack"][0]["function"] if s["stack"] else ""
        out.setdefault(name, []).append(s)
    return out


with tempfile.TemporaryDirectory() as tmp:
    snap = traced(os.path.join(tmp, "t.resmon"), RESMON_TEMPORARY="20ms")
    r = run([view, "--format", "json", snap], text=True)
    doc = json.loads(r.stdout)
    a = doc["allocations"]
    check(a is not None and a["temporary_ns"] >= 20_000_000 and a["temporary_ns"] < 22_000_000,
          f"the threshold, to the clock unit: {a and a['temporary_ns']}")
    by = stacks_by_function(doc)

    def one(name, count, size, temporary, held):
        groups = [g for g in by.get(name, []) if g["bytes"] == count * size]
        check(len(groups) == 1, f"{name}: one stack of {count} x {size} B: {by.get(name)}")
        if groups:
            g = groups[0]
            check(g["kind"] == "memory" and g["count"] == count and g["temporary"]["count"] == temporary and
                  g["temporary"]["bytes"] == temporary * size and g["held"]["count"] == held,
                  f"{name}: {count} acquired, {temporary} temporary, {held} held: {g}")

    one("churn_lines(int)", 20000, 48, 20000, 0)
    one("keep_rows(int)", 300, 100, 0, 0)
    one("make_messages(int)", 500, 32, 0, 0)  # released by another thread: counted all the same
    one("leak_once()", 1, 7, 0, 1)
    check(a["memory"]["temporary"] >= 20000 and a["memory"]["count"] >= 20802,
          f"the memory totals: {a['memory']}")
    check(a["memory"]["count"] == sum(s["count"] for s in a["stacks"] if s["kind"] == "memory"),
          "the memory total is the sum of the stacks")

    # The text: the summary line, and the lists.
    r = run([view, snap], text=True)
    check(re.search(r"memory: \d+ temporary of \d+ acquired \(\d+\.\d %, freed within 2\d ms", r.stdout),
          f"text: the temporaries line: {r.stdout}")
    r = run([view, "--sort", "temporaries", "--top", "1", snap], text=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith("memory ")]
    check(r.returncode == 0 and len(lines) == 1 and
          lines[0].startswith("memory 20000 acquired (937.5 KiB), 20000 temporary (937.5 KiB), 0 held: churn_lines(int) at temporaries.cpp:"),
          f"--sort temporaries --top 1 names churn_lines: {r.stdout}")
    r = run([view, "--sort", "allocations", "--callstack", snap], text=True)
    check(r.returncode == 0 and "make_messages(int) at temporaries.cpp:" in r.stdout and
          "    main at temporaries.cpp:" in r.stdout, f"--sort allocations --callstack: {r.stdout}")
    # Folded to functions: the array and the blocks of make_messages are one group.
    r = run([view, "--sort", "allocations", "--by", "function", snap], text=True)
    check(r.returncode == 0 and "memory 501 acquired (19.5 KiB), 0 temporary, 0 held: make_messages(int)" in r.stdout,
          f"--sort allocations --by function: {r.stdout}")

    # pprof: Go's heap profile sample types.
    prof = os.path.join(tmp, "t.pb.gz")
    r = run([view, "--format", "pprof", "-o", prof, snap])
    check(r.returncode == 0, "pprof written")
    if shutil.which("go"):
        env = {"GOCACHE": os.path.join(tmp, "gocache"), "HOME": tmp, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
        r = run(["go", "tool", "pprof", "-top", "-sample_index=alloc_objects", prof], env, text=True)
        m = re.search(r"^\s*(\d+)\s.*churn_lines\(int\)$", r.stdout, re.M)
        check(r.returncode == 0 and m and int(m.group(1)) == 20000,
              f"go tool pprof -sample_index=alloc_objects: churn_lines 20000: {r.stdout[-800:]}{r.stderr[-300:]}")
        r = run(["go", "tool", "pprof", "-top", "-sample_index=temporary_objects", prof], env, text=True)
        check(r.returncode == 0 and re.search(r"flat%.*\n\s*20000\s.*churn_lines\(int\)$", r.stdout, re.M),
              f"temporary_objects: churn_lines first, 20000: {r.stdout[-600:]}")
        r = run(["go", "tool", "pprof", "-top", "-sample_index=inuse_objects", prof], env, text=True)
        check(r.returncode == 0 and "leak_once" in r.stdout and "churn_lines" not in r.stdout,
              f"inuse_objects: the held block only: {r.stdout[-600:]}")
    else:
        print("go not installed: the pprof read-back is skipped")

    # HTML: the table of acquisitions, rendered by headless Chromium.
    page = os.path.join(tmp, "t.html")
    r = run([view, "--format", "html", "-o", page, snap])
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        r = run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                 "--dump-dom", "file://" + page + "#selftest=leak_once"], text=True)
        m = re.search(r'data-selftest="([^"]*)"', r.stdout)
        fields = dict(kv.split("=", 1) for kv in m.group(1).split(";")) if m else {}
        check(int(fields.get("acquired_rows", "0")) >= 5 and fields.get("acquired_first") == "churn_lines(int)" and
              'data-error' not in r.stdout,
              f"HTML: the acquisitions table renders, churn_lines first: {fields}")
    else:
        print("chromium not installed: the HTML rendering is skipped")

    # resmon-run --temporary sets the threshold.
    out = os.path.join(tmp, "run.resmon")
    r = run([resmon_run, "--temporary", "2s", "-o", out, "--", program], text=True)
    check(r.returncode == 0, f"resmon-run --temporary 2s: {r.stderr}")
    r = run([view, "--format", "json", out], text=True)
    by = stacks_by_function(json.loads(r.stdout))
    rows = [g for g in by.get("keep_rows(int)", []) if g["count"] == 300]
    check(len(rows) == 1 and rows[0]["temporary"]["count"] == 300, f"with 2 s, the rows freed after 60 ms are temporary: {rows}")

    # Off: no counts, and the viewer says why.
    off = traced(os.path.join(tmp, "off.resmon"), RESMON_TEMPORARY="0")
    r = run([view, "--format", "json", off], text=True)
    check(json.loads(r.stdout)["allocations"] is None, "RESMON_TEMPORARY=0: no counts")
    r = run([view, "--sort", "allocations", off], text=True)
    check(r.returncode == 2 and r.stderr.count("\n") == 1 and "--sort allocations: the snapshot has no counts per stack" in r.stderr,
          f"--sort allocations without counts: one line: {r.returncode} {r.stderr}")
    r = run([view, "--sort", "temporaries", "--diff", snap, snap], text=True)
    check(r.returncode == 2 and "not with --diff" in r.stderr, f"--sort temporaries --diff: {r.stderr}")

    # Bad values stop the program before main with one line.
    for bad in ("soon", "5", "-1ms", "1ms,2"):
        r = run([program], {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(tmp, "bad.resmon"),
                            "RESMON_TEMPORARY": bad}, text=True)
        check(r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1 and
              f"RESMON_TEMPORARY='{bad}' is not valid: expected a duration" in r.stderr,
              f"RESMON_TEMPORARY={bad!r}: one line, status 2: {r.returncode} {r.stderr}")

print(f"temporaries_test: {len(failures)} failures")
sys.exit(1 if failures else 0)
