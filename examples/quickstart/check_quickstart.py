#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs examples/quickstart and checks its real leak report, in text and in
JSON (schema resmon.report version 1)."""
import json
import subprocess
import sys


def fail(what, output):
    print(f"FAILED: {what}\n--- output ---\n{output}")
    sys.exit(1)


def main():
    exe = sys.argv[1]
    text = subprocess.run([exe], stdout=subprocess.PIPE, text=True, check=True, timeout=30).stdout
    for needle in ["resmon report: 5 resources held in 4 kinds",
                   "memory: 2 held, 4608 B",
                   "file: 1 held",
                   "socket: 1 held",
                   "session: 1 held"]:
        if needle not in text:
            fail(f"text report has {needle!r}", text)
    if "in grow" not in text or "in find_line" not in text or "in connect_peers" not in text:
        fail("text report names the acquiring functions", text)

    out = subprocess.run([exe, "--json"], stdout=subprocess.PIPE, text=True, check=True, timeout=30).stdout
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as e:
        fail(f"JSON parses ({e})", out)
    if doc.get("schema") != "resmon.report" or doc.get("version") != 1:
        fail("JSON names its schema and version 1", out)
    kinds = {k["kind"]: k for k in doc["kinds"]}
    mem = kinds.get("memory")
    if mem is None or mem["held"] != {"count": 2, "bytes": 4608}:
        fail("JSON memory held is 2 resources, 4608 bytes", out)
    sizes = sorted(r["size"] for s in mem["sites"] for r in s["resources"])
    if sizes != [512, 4096]:
        fail("JSON lists each held buffer", out)
    if mem["total"]["count"] != 5 or mem["peak"]["count"] != 3:
        fail("JSON memory total 5 and peak 3", out)
    for name in ["file", "socket", "session"]:
        if kinds.get(name, {}).get("held", {}).get("count") != 1:
            fail(f"JSON {name} held 1", out)
    print("ok")


if __name__ == "__main__":
    main()
