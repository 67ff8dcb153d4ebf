#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The exit-time check of a tracking program, as LeakSanitizer's: a report
at exit on request (RESMON_REPORT_AT_EXIT=1, resmon::report_at_exit), an exit
status when resources are still held (RESMON_EXIT_CODE), suppressions in
LeakSanitizer's syntax (RESMON_SUPPRESSIONS: leak:<pattern>, kind:<name>)
that the report counts, and one clear line for each bad value.

Usage: exit_check_test.py BINARY SOURCE"""
import os
import re
import subprocess
import sys
import tempfile

binary, source = sys.argv[1:3]
lines = {}
with open(source) as f:
    for n, text in enumerate(f, 1):
        m = re.search(r"leak-site: (\w+)", text)
        if m:
            lines[m.group(1)] = n
failures = []


def run(env=None, args=()):
    e = dict(os.environ)
    for k in ("RESMON_REPORT_AT_EXIT", "RESMON_EXIT_CODE", "RESMON_SUPPRESSIONS"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                          timeout=60)


def check(cond, what, r):
    if not cond:
        failures.append(f"{what}\n--- status {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")


def at(name):
    return f"exit_leaker.cpp:{lines[name]} in "


with tempfile.TemporaryDirectory() as tmp:
    def rules(text):
        path = os.path.join(tmp, "rules.supp")
        with open(path, "w") as f:
            f.write(text)
        return path

    r = run()
    check(r.returncode == 0 and r.stdout == "main done\n" and r.stderr == "", "nothing asked: nothing changes", r)

    r = run({"RESMON_REPORT_AT_EXIT": "1"})
    check(r.returncode == 0, "a report alone keeps the exit status", r)
    check("resmon report at exit: 3 resources held in 2 kinds" in r.stderr, "the report at exit counts 3 held", r)
    check(at("keep_cache") in r.stderr and at("lose_entry") in r.stderr, "each block at the program's line", r)
    check("operator new" not in r.stderr, "never at operator new", r)

    r = run({"RESMON_EXIT_CODE": "23"})
    check(r.returncode == 23, "RESMON_EXIT_CODE=23: status 23 when resources are held", r)
    check("resmon: 3 resources still held at exit: exit status 23" in r.stderr, "the reason, in one line", r)
    check(r.stdout == "main done\n", "the program's output is whole (flushed before _exit)", r)

    r = run({"RESMON_EXIT_CODE": "23", "RESMON_SUPPRESSIONS": rules("# known\nleak:keep_cache\n")})
    check(r.returncode == 23 and at("lose_entry") in r.stderr and at("keep_cache") not in r.stderr,
          "a leak:<function> rule hides that block only", r)
    check("note: 1 resource (48 B) suppressed" in r.stderr, "the report counts what the rules hid", r)

    r = run({"RESMON_EXIT_CODE": "23",
             "RESMON_SUPPRESSIONS": rules("leak:^*keep_cache\nleak:exit_leaker.cpp\nkind:fd\n")})
    check(r.returncode == 0 and r.stderr == "", "every resource suppressed (function, file, kind): status 0", r)

    r = run({"RESMON_EXIT_CODE": "300", "RESMON_REPORT_AT_EXIT": "yes",
             "RESMON_SUPPRESSIONS": rules("leak:lose_entry\ninterceptor_via_fun:x\n")})
    bad = [l for l in r.stderr.splitlines() if l.startswith("resmon: RESMON_")]
    check(len(bad) == 3 and "RESMON_EXIT_CODE='300'" in bad[0] + bad[1] + bad[2] and
          "rules.supp:2: 'interceptor_via_fun:x': expected leak:<pattern> or kind:<name>" in r.stderr,
          "one line per bad value, naming it and the expected form", r)
    check(r.returncode == 0 and "main done" in r.stdout, "bad values: the program runs as without them", r)

    # resmon::ignore: what the program says is no leak fails nothing, and the report counts it.
    r = run({"RESMON_EXIT_CODE": "23", "RESMON_REPORT_AT_EXIT": "1"}, args=["ignore"])
    check(r.returncode == 0, "ignored resources do not fail the exit check", r)
    check("ignored: yes, unknown: no" in r.stdout, "ignore() finds the held resources and no other", r)
    check("3 resources (112 B) ignored by the program (resmon::ignore)" in r.stderr, "the report counts them", r)
    check(at("keep_cache") not in r.stderr and at("lose_entry") not in r.stderr, "and does not list them", r)

    r = run(args=["api"])
    check(r.returncode == 7 and "resmon report at exit: 3 resources held" in r.stdout,
          "resmon::report_at_exit(stdout, 7): the report on stdout, status 7", r)

if failures:
    print("\n\n".join(failures))
    sys.exit(1)
print("ok")
