#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""resmon-view on real snapshots: every format read back by its real
consumer (json.loads; `go tool pprof`; headless Chromium for the HTML; the
collapsed lines against the JSON groups), --diff naming exactly a growing
leak, LeakSanitizer-style suppressions, filters, and bad options.

usage: view_test.py PRELOAD RESMON_VIEW LEAKY PLUGIN GROW [QUICKSTART]
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, failures, run  # noqa: E402

preload, view, leaky, plugin, grow = (os.path.abspath(a) for a in sys.argv[1:6])
quickstart = os.path.abspath(sys.argv[6]) if len(sys.argv) > 6 else None


def traced(out, *argv):
    r = run(list(argv), {"LD_PRELOAD": preload, "RESMON_OUTPUT": out})
    assert os.path.exists(out), f"no snapshot from {argv}: {r.stderr}"
    return out


def view_json(*args):
    r = run([view, "--format", "json", *args], text=True)
    if r.returncode != 0:
        raise SystemExit(f"resmon-view {args} failed: {r.stderr}")
    return json.loads(r.stdout)


def top(group):
    return group["stack"][0]["function"] if group["stack"] else ""


with tempfile.TemporaryDirectory() as tmp:
    snap = traced(os.path.join(tmp, "leaky.resmon"), leaky, plugin)
    doc = view_json(snap)
    groups = doc["groups"]

    # collapsed: one line per JSON group, frames outermost first, value bytes (or count).
    r = run([view, "--format", "collapsed", "--full-names", snap], text=True)
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and len(lines) == len(groups), f"collapsed: {len(lines)} lines for {len(groups)} groups")
    for line, g in zip(lines, groups):
        frames, _, value = line.rpartition(" ")
        want = [g["kind"]] + [f["function"] or f["address"] for f in reversed(g["stack"])]
        check(frames.split(";") == [w.replace(";", ":") for w in want] and
              int(value) == (g["bytes"] or g["count"]), f"collapsed line {line!r} matches its group")

    # pprof, read back by go tool pprof.
    prof = os.path.join(tmp, "leaky.pb.gz")
    r = run([view, "--format", "pprof", "-o", prof, snap])
    check(r.returncode == 0 and gzip.open(prof).read(2), "pprof: a gzipped profile")
    if shutil.which("go"):
        env = {"GOCACHE": os.path.join(tmp, "gocache"), "HOME": tmp, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
        r = run(["go", "tool", "pprof", "-top", "-unit=B", "-sample_index=inuse_space", prof], env, text=True)
        m = re.search(r"^\s*(\d+)B .* leak_blocks\(\)$", r.stdout, re.M)
        check(r.returncode == 0 and m and int(m.group(1)) == 336,
              f"go tool pprof -top finds leak_blocks() with 336 B: {r.stdout[-800:]}{r.stderr[-300:]}")
        r = run(["go", "tool", "pprof", "-top", "-sample_index=fd_held", prof], env, text=True)
        check(r.returncode == 0 and re.search(r"^\s*3 .* open_descriptors\(\)$", r.stdout, re.M),
              f"go tool pprof -sample_index=fd_held finds the 3 descriptors: {r.stdout[-600:]}")
        r = run(["go", "tool", "pprof", "-traces", "-sample_index=inuse_space", prof], env, text=True)
        check("plugin_leak" in r.stdout and "use_plugin" in r.stdout, "pprof traces keep whole stacks")
    else:
        check(False, "go is installed (Debian golang-go) to read the pprof output")

    # HTML, in headless Chromium: loads without errors, shows the leak, zooms on a click.
    page = os.path.join(tmp, "leaky.html")
    r = run([view, "--format", "html", "-o", page, snap])
    html = open(page, encoding="utf-8").read()
    check(r.returncode == 0 and "leak_blocks()" in html and "http" not in html.split("<script", 1)[0],
          "html: one self-contained page naming the leak")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        r = run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                 "--virtual-time-budget=5000", "--dump-dom", "file://" + page + "#selftest=leak_blocks"], text=True)
        m = re.search(r'data-selftest="([^"]*)"', r.stdout)
        got = m.group(1) if m else None
        check(got and "zoomed=leak_blocks()" in got and "count=7" in got and "bytes=336" in got,
              f"html: a click on leak_blocks zooms to its 7 blocks: {got}")
        if got:
            fields = dict(x.split("=", 1) for x in got.split(";"))
            check(int(fields["nodes_after"]) < int(fields["nodes_before"]), "html: the zoom hides the other frames")
            check(int(fields["rows"]) == len(groups), f"html: the table has a row per group ({fields['rows']})")
        errors = re.findall(r"Uncaught.*", r.stderr)[:2]
        check("data-error" not in r.stdout and not errors, f"html: no script error: {errors}")
    else:
        check(False, "chromium is installed (Debian chromium) to render the HTML output")

    # --diff: exactly the growth of grow_leak, nothing else.
    old = traced(os.path.join(tmp, "grow10.resmon"), grow, "10")
    new = traced(os.path.join(tmp, "grow25.resmon"), grow, "25")
    d = view_json("--diff", old, new)
    check(d["diff"] is True and len(d["groups"]) == 1 and top(d["groups"][0]).startswith("grow_leak") and
          d["groups"][0]["count"] == 15 and d["groups"][0]["bytes"] == 1500,
          f"--diff names exactly +15 blocks, +1500 bytes at grow_leak: {[(top(g), g['count'], g['bytes']) for g in d['groups']]}")
    d = view_json("--diff", new, old)
    check(len(d["groups"]) == 1 and d["groups"][0]["count"] == -15 and d["groups"][0]["bytes"] == -1500,
          "--diff the other way round: the shrinkage, negative")
    r = run([view, "--diff", old, new], text=True)
    check("+1.5 KiB in +15" in r.stdout and "grow_leak" in r.stdout and r.stderr == "",
          f"--diff text: {r.stdout!r} {r.stderr!r}")
    r = run([view, "--diff", snap, new], text=True)
    check(r.returncode == 0 and "different programs" in r.stderr, f"--diff of two programs says so: {r.stderr!r}")

    if chromium:
        page = os.path.join(tmp, "diff.html")
        run([view, "--diff", old, new, "--format", "html", "-o", page])
        r = run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                 "--dump-dom", "file://" + page + "#selftest=grow_leak"], text=True)
        m = re.search(r'data-selftest="([^"]*)"', r.stdout)
        check(m and "count=15" in m.group(1) and "bytes=1500" in m.group(1) and "data-error" not in r.stdout,
              f"html --diff: the growth at grow_leak, +15 blocks: {m and m.group(1)}")

    # Binaries copied elsewhere: --debug-dir finds them by file name.
    moved = os.path.join(tmp, "elsewhere")
    os.makedirs(moved)
    shutil.copy(grow, os.path.join(moved, "grow-copy"))
    snap_moved = traced(os.path.join(tmp, "moved.resmon"), os.path.join(moved, "grow-copy"), "4")
    copies = os.path.join(tmp, "copies")
    os.makedirs(copies)
    shutil.move(os.path.join(moved, "grow-copy"), os.path.join(copies, "grow-copy"))
    lost = view_json("--kind", "memory", snap_moved)
    found = view_json("--kind", "memory", "--debug-dir", copies, snap_moved)
    check(not any(top(g).startswith("grow_leak") for g in lost["groups"]) and
          any(top(g).startswith("grow_leak") and g["stack"][0]["line"] > 0 for g in found["groups"]),
          "--debug-dir names the functions of a binary that moved")

    # Suppressions (LeakSanitizer's syntax).
    sup = os.path.join(tmp, "lsan.supp")
    open(sup, "w").write("# known\nleak:leak_blocks\nleak:^plugin_*\n")
    s = view_json("--suppressions", sup, snap)
    check(s["suppressed"] == {"count": 8, "bytes": 376}, f"suppressed leak_blocks (7, 336 B) and plugin_leak (1, 40 B): {s['suppressed']}")
    check(not [g for g in s["groups"] if top(g).startswith(("leak_blocks", "plugin_leak"))], "suppressed groups are gone")
    open(sup, "w").write("leak:ok\ninterceptor_via_fun:foo\n")
    r = run([view, "--suppressions", sup, snap], text=True)
    check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "lsan.supp:2" in r.stderr,
          f"a bad suppression line: one line naming file:line, status 2 ({r.stderr!r})")

    # An in-process report (resmon::report_json) reads as a snapshot does: a group per
    # site, named by the site, with the report's counts and bytes.
    if quickstart:
        report = os.path.join(tmp, "quickstart.json")
        with open(report, "w") as out:
            subprocess.run([quickstart, "--json"], stdout=out, check=True)
        rep = json.load(open(report))
        want = {}
        for k in rep["kinds"]:
            for site in k["sites"]:
                key = (k["kind"], site["function"])
                c, b = want.get(key, (0, 0))
                want[key] = (c + site["count"], b + site["bytes"])
        got = {}
        for g in view_json(report)["groups"]:
            key = (g["kind"], top(g))
            c, b = got.get(key, (0, 0))
            got[key] = (c + g["count"], b + g["bytes"])
        # The site names its function as __func__ does ("grow"); the stack, fully ("...buffer_pool::grow(...)").
        matched = {w: [g for g in got if g[0] == w[0] and w[1] in g[1]] for w in want}
        check(want and len(got) == len(want) and all(len(m) == 1 and got[m[0]] == want[w] for w, m in matched.items()),
              f"in-process report: the groups are the report's sites: {got} vs {want}")
        t = run([view, report], text=True).stdout
        check("buffer_pool::grow" in t and "main.cpp:25" in t, f"in-process report as text: {t[:400]!r}")
        open(os.path.join(tmp, "bad.json"), "w").write('{"schema": "resmon.report", "version": 1, "kinds": [{"id": "x"}]}')
        r = run([view, os.path.join(tmp, "bad.json")], text=True)
        check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "bad.json" in r.stderr,
              f"a malformed report: one line, status 1 ({r.stderr!r})")

    # Filters and folding.
    f = view_json("--kind", "fd,thread", snap)
    check(sorted({g["kind"] for g in f["groups"]}) == ["fd", "thread"], "--kind fd,thread")
    f = view_json("--by", "function", "--kind", "memory", snap)
    # One group per function and reachability class.
    check(all(len(g["stack"]) == 1 for g in f["groups"]) and
          sum(g["count"] for g in f["groups"] if top(g) == "leak_blocks()") == 7 and
          len({(top(g), g["lost"]) for g in f["groups"]}) == len(f["groups"]), "--by function folds to one frame")
    f = view_json("--min-size", "64", "--kind", "memory", snap)
    check(f["groups"] and all(g["bytes"] >= 64 * g["count"] for g in f["groups"]) and
          not [g for g in f["groups"] if top(g).startswith("leak_blocks")], "--min-size 64 drops the 48-byte blocks")
    f = view_json("--top", "1", "--sort", "count", snap)
    check(len(f["groups"]) == 1 and f["groups"][0]["count"] == max(g["count"] for g in groups), "--top 1 --sort count")
    f = view_json("--since", "2999-01-01T00:00:00Z", snap)
    check(f["groups"] == [], "--since in the future: nothing")
    f = view_json("--until", "2999-01-01T00:00:00Z", snap)  # past 2554: ns in 64 bits must not wrap
    check(len(f["groups"]) == len(groups), "--until far in the future: everything")
    r = run([view, "--since", "1969-12-31T23:59:59Z", snap], text=True)
    check(r.returncode == 2 and "from 1970 on" in r.stderr, f"--since before 1970: refused ({r.stderr!r})")
    f = view_json("--max-age", "1h", snap)
    check(len(f["groups"]) == len(groups), "--max-age 1h: everything")
    r = run([view, "--storage-info", snap], text=True)
    check(r.returncode == 0 and re.search(r"records\s+\d+", r.stdout), "--storage-info")
    info = os.path.join(tmp, "info.txt")
    r = run([view, "--storage-info", "-o", info, snap], text=True)
    check(r.returncode == 0 and r.stdout == "" and re.search(r"records\s+\d+", open(info).read()),
          "--storage-info -o FILE writes the file")

    # Inputs that are no regular file: one line and status 1, never a crash,
    # a hang or unbounded memory; a pipe or FIFO is read once.
    r = run([view, tmp], text=True)
    check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "is a directory" in r.stderr,
          f"a directory: one line, status 1 ({r.returncode}: {r.stderr!r})")
    r = run([view, "/dev/zero"], text=True, timeout=30)
    check(r.returncode == 1 and "not a resmon snapshot" in r.stderr, f"/dev/zero: refused at once ({r.stderr!r})")
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", 'cat "$1" > "$2"', "sh", snap, fifo])
    r = run([view, "--format", "json", fifo], text=True, timeout=60)
    writer.wait()
    check(r.returncode == 0 and len(json.loads(r.stdout)["groups"]) == len(groups),
          f"a FIFO is read once, as the file is ({r.returncode}: {r.stderr!r})")
    r = run([view, "--suppressions", tmp, snap], text=True)
    check(r.returncode == 2 and "Is a directory" in r.stderr, f"--suppressions DIR: refused ({r.stderr!r})")

    for count in ("10000000000", "-1"):  # made into records one by one: bounded first
        bad = os.path.join(tmp, "count.json")
        open(bad, "w").write('{"schema":"resmon.report","version":1,"kinds":[{"id":0,"kind":"memory","sites":'
                             '[{"function":"f","count":%s,"bytes":5}]}]}' % count)
        r = run([view, bad], text=True, timeout=60)
        check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and '"count"' in r.stderr,
              f"a report with count {count}: one line, status 1 ({r.returncode}: {r.stderr!r})")

    # A binary rebuilt since the run is not read for the old addresses: its
    # frames stay addresses, with one line; --debug-dir with the original names them.
    copy = os.path.join(tmp, "leaky_copy")
    shutil.copy(leaky, copy)
    moved = traced(os.path.join(tmp, "copy.resmon"), copy, plugin)
    shutil.copy(grow, copy)
    r = run([view, "--kind", "memory", moved], text=True)
    check(r.returncode == 0 and "build id differs" in r.stderr and "leak_blocks" not in r.stdout,
          f"a rebuilt binary: no wrong names, one line ({r.stderr!r})")
    load_address = re.search(r"(?<![+\w])0x[0-9a-f]{9,}", r.stdout)
    check(re.search(r"\bleaky_copy\+0x[0-9a-f]+", r.stdout) is not None and load_address is None,
          f"frames without names read module+offset, not load addresses ({r.stdout[:600]!r})")
    originals = os.path.join(tmp, "originals")
    os.mkdir(originals)
    shutil.copy(leaky, os.path.join(originals, "leaky_copy"))
    r = run([view, "--kind", "memory", "--debug-dir", originals, moved], text=True)
    check(r.returncode == 0 and "leak_blocks" in r.stdout and "build id" not in r.stderr,
          f"--debug-dir with the original binary names its frames ({r.stderr!r})")

    # The CI gate never passes on a snapshot without reachability classes:
    # --lost then counts every held block (here the high-water mark's).
    peak_snap = os.path.join(tmp, "peak.resmon")
    run([leaky, plugin], {"LD_PRELOAD": preload, "RESMON_OUTPUT": peak_snap, "RESMON_PEAK": "1"})
    r = run([view, "--at", "peak", "--lost", "--exit-code", "23", peak_snap], text=True)
    check(r.returncode == 23 and "counts every held memory block" in r.stderr,
          f"--lost on an unclassified snapshot: held blocks count as lost ({r.returncode}: {r.stderr!r})")
    for bad in (["--min-age", "soon", snap], ["--sort", "size", snap], ["--by", "line", snap],
                ["--kind", "widgets", snap], ["--since", "yesterday", snap], [snap, "--format", "yaml"],
                ["--top", "-3", snap], []):
        r = run([view, *bad], text=True)
        check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and r.stdout == "",
              f"bad option {bad}: one line, status 2 (got {r.returncode}: {r.stderr!r})")
    r = run([view, "--help"], text=True)
    check(r.returncode == 0 and all(o in r.stdout for o in ("--diff", "--suppressions", "--format", "--by")),
          "--help documents the options")

print(f"view_test: {len(failures)} failures")
sys.exit(1 if failures else 0)
