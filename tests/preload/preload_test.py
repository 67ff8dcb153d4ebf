#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Whole-process mode end to end: runs tests/preload/leaky.cpp plain and
under libresmon_preload.so, and checks that the program's output and exit
status are unchanged, that resmon-view --format json reports exactly the
known leaks at the right functions and nothing the program released, that
the child of fork() wrote its own snapshot, that a library unloaded with
dlclose is still named, and that bad settings and damaged files give one
clear line.

usage: preload_test.py PRELOAD RESMON_VIEW RESMON_RUN LEAKY PLUGIN
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, failures  # noqa: E402

preload, view, run_tool, leaky, plugin = (os.path.abspath(a) for a in sys.argv[1:6])


def run(cmd, env=None, **kw):
    return harness.run(cmd, env, text=True, **kw)


def view_json(path):
    r = run([view, "--format", "json", path])
    if r.returncode != 0:
        raise SystemExit(f"resmon-view {path} failed: {r.stderr}")
    return json.loads(r.stdout)


def groups_at(doc, function, kind):
    """Groups of `kind` whose innermost frame is in `function`."""
    return [g for g in doc["groups"]
            if g["kind"] == kind and g["stack"] and g["stack"][0]["function"].startswith(function)]


def held(doc, kind):
    for k in doc["kinds"]:
        if k["kind"] == kind:
            return k["held"]["count"]
    return None


with tempfile.TemporaryDirectory() as tmp:
    plain = run([leaky, plugin])
    check(plain.returncode == 3, f"plain run exits 3 (got {plain.returncode}: {plain.stderr})")

    out = os.path.join(tmp, "leaky.%p.resmon")
    traced = run([leaky, plugin], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out})
    check(traced.returncode == plain.returncode, f"exit status unchanged ({traced.returncode})")
    check(traced.stdout == plain.stdout, f"stdout unchanged: {traced.stdout!r} vs {plain.stdout!r}")
    check(traced.stderr == plain.stderr, f"stderr unchanged: {traced.stderr!r}")

    files = sorted(glob.glob(os.path.join(tmp, "leaky.*.resmon")))
    check(len(files) == 2, f"two snapshots, the program's and its child's (got {files})")
    docs = [view_json(f) for f in files]
    parent = [d for d in docs if not d["child"]]
    child = [d for d in docs if d["child"]]
    check(len(parent) == 1 and groups_at(parent[0], "leak_blocks", "memory"), "the program's snapshot")
    # The child holds what it inherited and its own leak; the program does not hold the child's.
    check(len(child) == 1 and child[0]["pid"] != (parent[0]["pid"] if parent else 0) and
          groups_at(child[0], "child_leak", "memory"), "the child of fork() wrote its own snapshot, with its own pid")
    check(not parent or not groups_at(parent[0], "child_leak", "memory"), "the child's leak is not the program's")
    if parent:
        doc = parent[0]
        check(doc["schema"] == "resmon.view" and doc["version"] == 1, "schema resmon.view, version 1")
        check(os.path.basename(doc["program"]) == os.path.basename(leaky), f"program named: {doc['program']}")

        def expect(function, kind, count, size=None):
            # A compiler may unroll the loop: one group per call site, all in `function`.
            g = groups_at(doc, function, kind)
            got = [(x["count"], x["bytes"]) for x in g]
            ok = (g and sum(x["count"] for x in g) == count and
                  (size is None or sum(x["bytes"] for x in g) == size))
            check(ok, f"{kind} at {function}: expected {count}"
                      f"{'' if size is None else f' ({size} bytes)'}, got {got}")
            return g[0] if g else None

        expect("leak_blocks", "memory", 7, 7 * 48)
        expect("leak_objects", "memory", 3, 3 * 64)
        expect("open_descriptors", "fd", 3)
        expect("open_log", "file", 1)
        expect("start_worker", "thread", 1)
        g = expect("plugin_leak", "memory", 1, 40)
        if g:
            check("plugin" in os.path.basename(g["stack"][0]["module"]),
                  f"the unloaded library is named: {g['stack'][0]['module']}")
        # Stacks reach main through code without frame pointers.
        g = groups_at(doc, "leak_blocks", "memory")
        if g:
            names = [f["function"] for f in g[0]["stack"]]
            check(any(n == "main" for n in names), f"the stack of leak_blocks reaches main: {names}")
            check(g[0]["stack"][0]["file"].endswith("leaky.cpp") and g[0]["stack"][0]["line"] > 0,
                  f"file:line of leak_blocks: {g[0]['stack'][0]}")
        check(doc["misuse"] == 0, f"no misuse reported for a correct program (got {doc['misuse']}; RESMON_LOG=stderr lists them)")
        # Every free found its record, the block a failed realloc left in place too.
        check(doc["unknown_releases"] == 0, f"releases without a record: {doc['unknown_releases']}")
        check(held(doc, "fd") == 3, f"3 descriptors held (got {held(doc, 'fd')})")
        check(held(doc, "file") == 1, f"1 FILE* held (got {held(doc, 'file')})")
        check(held(doc, "thread") == 1, f"1 thread held (got {held(doc, 'thread')})")
        for kind in ("dir", "socket", "mmap"):
            check(held(doc, kind) == 0, f"no {kind} held (got {held(doc, kind)})")
        # (glibc keeps the thread-local storage of a thread that ended for the
        # next one: held by the C library, not by the program.)
        released = [g for g in doc["groups"]
                    if any(f["function"].startswith(("churn_", "on_signal", "plugin_churn"))
                           for f in g["stack"][:6])
                    and not any(f["function"] == "_dl_allocate_tls" for f in g["stack"])]
        check(not released, "nothing the program released is reported: " +
              "; ".join(f"{g['kind']} x{g['count']} at {g['stack'][0]['function']}" for g in released[:5]))
        text = run([view, files[docs.index(doc)], "--callstack"])
        check(text.returncode == 0 and "leak_blocks" in text.stdout, "text output names leak_blocks")

    # RESMON_EXIT_CODE: the status a CI job fails on.
    r = run([leaky, plugin], {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(tmp, "code.%p"),
                              "RESMON_EXIT_CODE": "23"})
    check(r.returncode == 23, f"RESMON_EXIT_CODE=23 gives 23 (got {r.returncode})")
    # (The child leaks too: it exits 23 as well, which the program prints.)
    check("leaky: done, child exited 23" in r.stdout, f"RESMON_EXIT_CODE keeps the program's output: {r.stdout!r}")

    # A malformed setting stops the program before main: one line, status 2.
    for name, value in (("RESMON_STACK_DEPTH", "deep"), ("RESMON_FLUSH_INTERVAL", "2 s"),
                        ("RESMON_MAX_SIZE", "lots"), ("RESMON_KINDS", "memory,handles"),
                        ("RESMON_EXIT_CODE", "256"), ("RESMON_OUTPUT", "/nonexistent/dir/x.resmon")):
        r = run([leaky, plugin], {"LD_PRELOAD": preload, name: value})
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and f"{name}='{value}' is not valid: expected" in lines[0]
              and r.stdout == "", f"{name}={value!r}: one line and status 2 (got {r.returncode}: {r.stderr!r})")

    # resmon-run, the front door; RESMON_KINDS limits the kinds.
    out = os.path.join(tmp, "front.resmon")
    r = run([run_tool, "-o", out, "--kinds", "fd,thread", "--", leaky, plugin])
    check(r.returncode == 3 and r.stdout == plain.stdout, f"resmon-run keeps status and output ({r.returncode})")
    if os.path.exists(out):
        doc = view_json(out)
        check(sorted(k["kind"] for k in doc["kinds"]) == ["fd", "thread"], f"--kinds fd,thread: {doc['kinds']}")
        check(held(doc, "fd") == 3 and not [g for g in doc["groups"] if g["kind"] == "memory"],
              "only descriptors and threads recorded")
    else:
        check(False, "resmon-run -o wrote the snapshot")
    r = run([run_tool, "--depth", "99", "--", leaky, plugin])
    check(r.returncode == 2 and "--depth" in r.stderr, f"resmon-run --depth 99: status 2 ({r.returncode} {r.stderr!r})")

    # RESMON_MAX_SIZE: past the cap resources are counted, not recorded, and the snapshot says so.
    out = os.path.join(tmp, "capped.resmon")
    r = run([sys.executable, "-c", "x = [bytearray(40) for _ in range(200000)]; print(len(x))"],
            {"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_MAX_SIZE": "1MiB", "PYTHONMALLOC": "malloc"})
    check(r.returncode == 0 and r.stdout == "200000\n", f"capped run unchanged ({r.returncode} {r.stderr[-300:]!r})")
    doc = view_json(out)
    memory = [k for k in doc["kinds"] if k["kind"] == "memory"][0]
    check(doc["dropped"] > 0 and memory["dropped"] > 0 and memory["peak"]["count"] <= (1 << 20) // 40,
          f"RESMON_MAX_SIZE=1MiB: dropped {doc['dropped']}, peak {memory['peak']['count']}")
    text = run([view, out]).stdout
    check("not recorded" in text, f"the text output says what was not recorded: {text[:300]!r}")

    # RESMON_FLUSH_INTERVAL: a snapshot appears while the program runs.
    out = os.path.join(tmp, "flush.resmon")
    e = dict(os.environ, LD_PRELOAD=preload, RESMON_OUTPUT=out, RESMON_FLUSH_INTERVAL="200ms")
    e.pop("RESMON_ROOT_PID", None)
    p = subprocess.Popen([sys.executable, "-c", "import time; x = [bytearray(40) for _ in range(1000)]; "
                          "time.sleep(3); print('done')"], env=e, stdout=subprocess.PIPE, text=True)
    periodic = None
    for _ in range(100):
        time.sleep(0.05)
        if os.path.exists(out):
            periodic = view_json(out)
            break
    p.wait(timeout=60)
    check(periodic is not None and periodic["final"] is False and p.returncode == 0,
          f"a periodic snapshot while the program runs ({periodic and periodic['final']}, {p.returncode})")
    check(view_json(out)["final"] is True, "the snapshot at exit replaces it")

    # _exit skips destructors (dash exits that way, so does os._exit): the snapshot is written first.
    out = os.path.join(tmp, "underscore-exit.resmon")
    r = run([sys.executable, "-c", "import os; print('bye', flush=True); os._exit(5)"],
            {"LD_PRELOAD": preload, "RESMON_OUTPUT": out})
    check(r.returncode == 5 and r.stdout == "bye\n" and os.path.exists(out) and view_json(out)["final"],
          f"os._exit(5): status 5 and a final snapshot ({r.returncode}, {os.path.exists(out)})")
    out = os.path.join(tmp, "dash.resmon")
    r = run(["/bin/sh", "-c", "exit 4"], {"LD_PRELOAD": preload, "RESMON_OUTPUT": out})
    check(r.returncode == 4 and os.path.exists(out), f"/bin/sh -c 'exit 4': status 4 and a snapshot ({r.returncode})")

    # fork() while the flush thread writes a snapshot: the child must not wait for the parent's writer.
    forks = os.path.join(tmp, "forks")
    os.makedirs(forks)
    r = run([sys.executable, "-c", "import os, sys, time\n"
             "for i in range(100):\n"
             "    pid = os.fork()\n"
             "    if pid == 0:\n"
             "        sys.exit(0)\n"
             "    os.waitpid(pid, 0)\n"
             "    time.sleep(0.003)\n"
             "print('forked')"],
            {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(forks, "f.%p.resmon"), "RESMON_FLUSH_INTERVAL": "1ms"},
            timeout=120)
    check(r.returncode == 0 and r.stdout == "forked\n" and len(os.listdir(forks)) == 101,
          f"100 forks during periodic snapshots: all finish, each writes its file ({r.returncode}, {len(os.listdir(forks))})")

    # %e is the program's name; without %p, the child of fork() appends ".<its pid>".
    named = os.path.join(tmp, "named")
    os.makedirs(named)
    r = run([leaky, plugin], {"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(named, "run-%e.resmon")})
    base = "run-" + os.path.basename(leaky) + ".resmon"
    names = sorted(os.listdir(named))
    suffixed = [n for n in names if n.startswith(base + ".")]
    check(r.returncode == plain.returncode and base in names and len(suffixed) == 1 and len(names) == 2,
          f"%e expands to the program's name; the child appends .<pid> ({names})")
    if base in names and len(suffixed) == 1:
        parent_doc = view_json(os.path.join(named, base))
        child_doc = view_json(os.path.join(named, suffixed[0]))
        check(not parent_doc["child"] and child_doc["child"] and
              suffixed[0] == base + "." + str(child_doc["pid"]) and child_doc["pid"] != parent_doc["pid"],
              f"the suffix is the child's pid ({suffixed[0]}, child pid {child_doc['pid']})")

    # Damaged files: one line naming the file, status 1, never a crash.
    good = open(files[0], "rb").read()
    cases = {"truncated": good[: len(good) // 2], "corrupted": good[:100] + bytes([good[100] ^ 0xff]) + good[101:],
             "foreign": b"\x7fELF" + good[4:], "empty": b""}
    for name, data in cases.items():
        path = os.path.join(tmp, name + ".resmon")
        open(path, "wb").write(data)
        r = run([view, path])
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 1 and path in lines[0] and r.stdout == "",
              f"{name} file: one line, status 1 (got {r.returncode}: {r.stderr!r})")
    r = run([view, "--format", "yaml", files[0]])
    check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, f"bad --format: status 2 ({r.stderr!r})")

print(f"preload_test: {len(failures)} failures")
sys.exit(1 if failures else 0)
