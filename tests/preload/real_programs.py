#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real Debian programs run unchanged under libresmon_preload.so: the same
stdout and exit status as without it, and snapshots that resmon-view reads
back (json.loads) with the kinds and figures a snapshot must have.

usage: real_programs.py PRELOAD RESMON_VIEW
"""
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

preload, view = (os.path.abspath(a) for a in sys.argv[1:3])
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def env_for(extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("RESMON_") and k != "LD_PRELOAD"}
    e.update({"LC_ALL": "C", "GIT_AUTHOR_NAME": "resmon", "GIT_AUTHOR_EMAIL": "resmon@example.org",
              "GIT_COMMITTER_NAME": "resmon", "GIT_COMMITTER_EMAIL": "resmon@example.org",
              "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
              "HOME": os.environ.get("HOME", "/tmp"), "GIT_CONFIG_NOSYSTEM": "1"})
    e.update(extra)
    return e


def tool(name):
    for d in ("/usr/bin", "/bin"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return shutil.which(name)


def compare(name, argv, cwd, prepare=None, binary=False):
    """Runs argv plain and preloaded (each after prepare(dir)); returns the snapshots."""
    results = []
    for preloaded in (False, True):
        work = os.path.join(cwd, f"{name}-{'preload' if preloaded else 'plain'}")
        os.makedirs(work)
        if prepare:
            prepare(work)
        snap = os.path.join(cwd, f"{name}.%p.resmon")
        extra = {"LD_PRELOAD": preload, "RESMON_OUTPUT": snap} if preloaded else {}
        start = time.monotonic()
        r = subprocess.run(argv, cwd=work, env=env_for(extra), capture_output=True, timeout=600, text=not binary)
        results.append((r, time.monotonic() - start))
    (plain, t_plain), (traced, t_traced) = results
    print(f"{name}: plain {t_plain:.2f} s, preloaded {t_traced:.2f} s")
    check(plain.returncode == traced.returncode, f"{name}: exit status {traced.returncode}, plain {plain.returncode}")
    check(plain.stdout == traced.stdout, f"{name}: stdout differs under the preload")
    check(plain.stderr == traced.stderr, f"{name}: stderr differs: {traced.stderr[:300]!r} vs {plain.stderr[:300]!r}")
    files = sorted(glob.glob(os.path.join(cwd, f"{name}.*.resmon")))
    check(files, f"{name}: a snapshot was written")
    docs = []
    for f in files:
        r = subprocess.run([view, "--format", "json", f], capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, f"{name}: resmon-view {os.path.basename(f)}: {r.stderr.strip()}")
        if r.returncode == 0:
            doc = json.loads(r.stdout)
            kinds = {k["kind"]: k for k in doc["kinds"]}
            check(doc["schema"] == "resmon.view" and "memory" in kinds and kinds["memory"]["total"]["count"] > 0,
                  f"{name}: {os.path.basename(f)} has memory figures")
            check(all(k["held"]["count"] <= k["peak"]["count"] <= k["total"]["count"] for k in doc["kinds"]),
                  f"{name}: held <= peak <= total in every kind")
            check(sum(g["count"] for g in doc["groups"]) == sum(k["held"]["count"] for k in doc["kinds"]),
                  f"{name}: the groups hold what the kinds hold")
            docs.append(doc)
    return docs


def main():
    with tempfile.TemporaryDirectory() as tmp:
        py = tool("python3")
        docs = compare("python3", [py, "-c", "import threading, json\n"
                                   "data = [dict(a=i, b=str(i) * 10) for i in range(20000)]\n"
                                   "t = threading.Thread(target=lambda: json.dumps(data)); t.start(); t.join()\n"
                                   "print(len(json.dumps(data)))"], tmp)
        check(any(k["kind"] == "thread" and k["total"]["count"] >= 1 for d in docs for k in d["kinds"]),
              "python3: its thread was recorded")

        sqlite = tool("sqlite3")
        if sqlite:
            compare("sqlite3", [sqlite, "test.db",
                                "create table t(a integer, b text); "
                                "with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000) "
                                "insert into t select i, hex(randomblob(16)) from n; "
                                "create index ib on t(b); select count(*), sum(a) from t;"], tmp)
        else:
            check(False, "sqlite3 is installed (Debian package sqlite3)")

        git = tool("git")

        def make_repo(work):
            for i in range(50):
                with open(os.path.join(work, f"f{i}.txt"), "w") as f:
                    f.write(f"file {i}\n" * (i + 1))
        docs = compare("git", ["sh", "-c", f"{git} init -q . && {git} add . && {git} commit -qm first && "
                                           f"{git} log --stat --format=%H%n%s | head -20 && {git} gc -q && "
                                           f"{git} count-objects -v | grep -v size"], tmp, make_repo)
        check(len(docs) >= 3, f"git: its subprocesses wrote snapshots of their own ({len(docs)})")

        rng = random.Random(7)

        def make_lines(work):
            with open(os.path.join(work, "in.txt"), "w") as f:
                for _ in range(300000):
                    f.write(f"{rng.randrange(10**9):09d} {rng.choice(['alpha', 'beta', 'gamma'])}\n")
        rng.seed(7)
        compare("sort", [tool("sort"), "--parallel=2", "-S", "8M", "-k2,2", "-k1,1n", "in.txt"], tmp,
                lambda w: (rng.seed(7), make_lines(w)))

        def make_blob(work):
            r = random.Random(3)
            with open(os.path.join(work, "blob"), "wb") as f:
                words = [bytes(r.randrange(97, 123) for _ in range(r.randrange(3, 9))) for _ in range(2000)]
                f.write(b" ".join(r.choice(words) for _ in range(600000)))
        compare("xz", ["sh", "-c", f"{tool('xz')} -T2 --block-size=1MiB -6 -c blob | {tool('xz')} -dc | md5sum"],
                tmp, make_blob)
    print(f"real_programs: {len(failures)} failures")
    return 1 if failures else 0


sys.exit(main())
