#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RESMON_SAMPLE: a Poisson sample of memory by bytes. The estimates of held
bytes per site are within 10 % of the truth on a known heap (tests/preload/
sampled.cpp), every output says they are estimates, descriptors stay exact,
and a bad value stops the program with one line.

usage: sample_test.py PRELOAD VIEW RUN SAMPLED
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, failures, run  # noqa: E402


def main():
    preload, view, resmon_run, sampled = sys.argv[1:5]
    work = tempfile.mkdtemp(prefix="resmon-sample-")
    out = os.path.join(work, "s.resmon")

    plain = run([sampled])
    r = run([sampled], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_SAMPLE": "16KiB"})
    check(r.returncode == 0 and r.stdout == plain.stdout and r.stderr == plain.stderr,
          f"the program's output changed under sampling: {r.returncode} {r.stdout!r} {r.stderr!r}")
    j = run([view, "--format", "json", out])
    check(j.returncode == 0, f"resmon-view: {j.stderr!r}")
    doc = json.loads(j.stdout)
    check(doc["sampling"] == {"bytes": 16384}, f"sampling: {doc['sampling']}")

    def site_bytes(function):
        return sum(g["bytes"] for g in doc["groups"]
                   if g["kind"] == "memory" and any(f.get("function", "").split("(")[0] == function for f in g["stack"]))

    def site_count(function):
        return sum(g["count"] for g in doc["groups"]
                   if g["kind"] == "memory" and any(f.get("function", "").split("(")[0] == function for f in g["stack"]))

    truth = {"keep_big": (40000, 40000 * 1024), "keep_small": (10000, 10000 * 100)}
    for function, (count, nbytes) in truth.items():
        est_b, est_c = site_bytes(function), site_count(function)
        err = abs(est_b - nbytes) / nbytes
        print(f"sample_test: {function}: held {nbytes} bytes, estimated {est_b} ({100 * err:.1f} % off); "
              f"count {count}, estimated {est_c}")
        # The top site (about 2,500 samples) within 10 %, over 5 standard
        # errors; a site 40x smaller (about 60 samples) within 50 %, about 4.
        limit = 0.10 if function == "keep_big" else 0.50
        check(err <= limit, f"{function}: estimated {est_b} bytes, truth {nbytes} ({100 * err:.1f} % off)")
        check(abs(est_c - count) / count <= limit * 1.5, f"{function}: estimated {est_c} blocks, truth {count}")
    check(doc["misuse"] == 0, f"sampled frees reported as misuse: {doc['misuse']}")
    check(site_bytes("churn") < 100000, f"the churn site holds nothing at exit: {site_bytes('churn')}")
    memory = [k for k in doc["kinds"] if k["kind"] == "memory"][0]
    total_truth = 40000 + 20000 + 2 * 400000
    check(abs(memory["total"]["count"] - total_truth) / total_truth < 0.15,
          f"estimated acquisitions {memory['total']['count']}, truth about {total_truth}")
    # The peak (about 60,000 blocks: the small ones before half were freed)
    # is an estimate too, scaled as a count: above what is held at exit.
    peak, held = memory["peak"]["count"], memory["held"]["count"]
    check(held < peak <= 1.5 * 60000, f"estimated peak {peak} blocks, held {held}, truth about 60000")
    t = run([view, out])
    check("memory is a sample (RESMON_SAMPLE: one block per 16.0 KiB on average): its figures are estimates"
          in t.stdout.decode(), f"text output: {t.stdout[:300]!r}")
    # Exit status: sampled memory has no reachability, so it never fails the lost gate.
    r = run([sampled], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_SAMPLE": "16KiB", "RESMON_EXIT_CODE": "23"})
    check(r.returncode == 0, f"RESMON_EXIT_CODE fired on sampled memory: {r.returncode}")
    # resmon-run --sample sets it.
    r = run([resmon_run, "--sample", "64KiB", "-o", out, "--", sampled])
    check(r.returncode == 0 and json.loads(run([view, "--format", "json", out]).stdout)["sampling"] == {"bytes": 65536},
          "resmon-run --sample")
    # A bad value: one line naming it, status 2, the program does not start.
    r = run([sampled], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_SAMPLE": "lots"})
    err = r.stderr.decode()
    check(r.returncode == 2 and err.count("\n") == 1 and "RESMON_SAMPLE='lots' is not valid" in err and
          r.stdout == b"", f"bad RESMON_SAMPLE: {r.returncode} {err!r}")
    if failures:
        print(f"sample_test: {len(failures)} failed")
        return 1
    print("sample_test: estimates within bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
