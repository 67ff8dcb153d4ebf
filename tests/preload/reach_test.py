# SPDX-License-Identifier: MIT
"""Reachability at exit: resmon's classes against LeakSanitizer's on the
same program, block for block; RESMON_EXIT_ON; real programs that hold
memory on purpose exit 0 under RESMON_EXIT_CODE; resmon-view's --lost.

Usage: reach_test.py PRELOAD RESMON_VIEW REACH PEAK [REACH_LSAN]"""
import collections
import json
import os
import re
import shutil
import sys
import tempfile

from harness import check, failures, run

preload, view, reach, peak = sys.argv[1:5]
reach_lsan = sys.argv[5] if len(sys.argv) > 5 else None
work = tempfile.mkdtemp(prefix="resmon-reach-")


def traced(name, argv, extra=None):
    out = os.path.join(work, name + ".resmon")
    env = {"LD_PRELOAD": preload, "RESMON_OUTPUT": out}
    env.update(extra or {})
    return run(argv, env=env), out


def view_json(*args):
    r = run([view, "--format", "json", *args])
    check(r.returncode == 0, f"resmon-view {args}: status {r.returncode}: {r.stderr.decode()}")
    return json.loads(r.stdout) if r.returncode == 0 else {"groups": [], "reachability": None}


def by_function(doc, kind="memory"):
    """(function of the innermost frame, class) -> [count, bytes] for one kind."""
    out = collections.defaultdict(lambda: [0, 0])
    for g in doc["groups"]:
        if g["kind"] != kind or not g["stack"]:
            continue
        fn = g["stack"][0]["function"]
        key = (fn, g["lost"] or "reachable")
        out[key][0] += g["count"]
        out[key][1] += g["bytes"]
    return {k: tuple(v) for k, v in out.items()}


# 1. The classes of every block of the test program.
r, snap = traced("reach", [reach], {"RESMON_EXIT_CODE": "23"})
check(r.returncode == 23, f"reach: RESMON_EXIT_CODE=23 with definitely lost memory: status {r.returncode}")
doc = view_json(snap)
check(doc["reachability"] is not None, "reach: the snapshot carries reachability")
ours = by_function(doc)
print("resmon:", dict(sorted(ours.items())))
expected = {
    ("make_lost_block()", "definite"): (1, 100),
    ("make_lost_self()", "definite"): (1, 32),       # its pointer to itself does not count
    ("make_lost_list(int)", "definite"): (1, 48),
    ("make_lost_list(int)", "indirect"): (4, 192),
    ("make_reachable()", "reachable"): (4, 344),
    ("main", "reachable"): (1, 300),                  # only main's frame points to it
    ("hold_on_thread(void*)", "reachable"): (1, 333),  # only a blocked thread's stack points to it
}
for key, value in expected.items():
    check(ours.get(key) == value, f"reach: {key}: expected {value}, got {ours.get(key)}")
cycle = sum(v[0] for k, v in ours.items() if k == ("make_lost_cycle()", "indirect"))
check(cycle == 2, f"reach: a lost cycle is two indirectly lost blocks (as LeakSanitizer says), got {cycle}")
files = by_function(doc, "file")
check(files.get(("make_streams()", "definite"), (0,))[0] == 3 and files.get(("make_streams()", "reachable"), (0,))[0] == 1,
      f"reach: three FILE* lost, one reachable from a global: {files}")
r = run([view, snap])
check(re.search(rb"definitely lost 3 \(180 B\)", r.stdout) is not None,
      f"reach: text totals: {r.stdout.decode()[:600]}")
check(b"memory definitely lost 100 B in 1" in r.stdout, "reach: text names the class of a group")

# 2. LeakSanitizer on the same source: the same lost blocks, function by function.
if reach_lsan:
    r = run([reach_lsan], {"LSAN_OPTIONS": "exitcode=0:report_objects=0"})
    lsan = collections.defaultdict(lambda: [0, 0])
    text = r.stderr.decode()
    for m in re.finditer(r"(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\) allocated from:\n"
                         r"(?:\s+#\d+ .*(?:interceptor|operator new|malloc|calloc).*\n)*\s+#\d+ 0x[0-9a-f]+ in (.+?) \S+:\d+", text):
        key = (m.group(4), "definite" if m.group(1) == "Direct" else "indirect")
        lsan[key][0] += int(m.group(3))
        lsan[key][1] += int(m.group(2))
    lsan = {k: tuple(v) for k, v in lsan.items()}
    print("LeakSanitizer:", dict(sorted(lsan.items())))
    check(len(lsan) >= 3, f"LeakSanitizer's report was read: {text[:800]}")
    lost = {k: v for k, v in ours.items() if k[1] != "reachable"}
    check(lost == lsan, f"reach: resmon's lost blocks {lost} are LeakSanitizer's {lsan}")

# 3. --lost
d = view_json(snap, "--lost")
check(d["groups"] and all(g["lost"] in ("definite", "indirect") for g in d["groups"]), "--lost: only lost groups")
d = view_json(snap, "--lost=indirect")
check(d["groups"] and all(g["lost"] == "indirect" for g in d["groups"]), "--lost=indirect")
d = view_json(snap, "--lost", "reachable", "--kind", "memory")
check(d["groups"] and all(g["lost"] is None for g in d["groups"]), "--lost reachable")
r = run([view, snap, "--lost=gone"])
check(r.returncode == 2 and b"--lost 'gone'" in r.stderr, f"--lost gone: one line, status 2: {r.stderr}")

# A CI gate with LeakSanitizer's suppressions: what is left fails it.
supp = os.path.join(work, "lsan.supp")
with open(supp, "w") as f:
    f.write("# known\nleak:make_lost_list\nleak:make_lost_cycle\n")
r = run([view, snap, "--lost", "--kind", "memory", "--suppressions", supp, "--exit-code", "23"])
check(r.returncode == 23 and b"make_lost_block()" in r.stdout and b"make_lost_list" not in r.stdout.split(b"suppressed by")[0],
      f"--exit-code 23 with one unsuppressed lost block: {r.returncode} {r.stdout.decode()[:600]}")
with open(supp, "a") as f:
    f.write("leak:make_lost_block\nleak:make_lost_self\n")
r = run([view, snap, "--lost", "--kind", "memory", "--suppressions", supp, "--exit-code", "23"])
check(r.returncode == 0, f"--exit-code: every lost block suppressed, status 0: {r.returncode} {r.stdout.decode()[:600]}")

# pprof: the class is a sample label (go tool pprof -tagfocus lost=definite).
prof = os.path.join(work, "reach.pb.gz")
r = run([view, "--format", "pprof", "-o", prof, snap])
check(r.returncode == 0, "pprof written")
if shutil.which("go"):
    env = {"HOME": work, "GOCACHE": os.path.join(work, "gocache"), "GOPATH": os.path.join(work, "gopath")}
    r = run(["go", "tool", "pprof", "-top", "-unit=B", "-sample_index=inuse_space", "-tagfocus", "lost=definite", prof],
            env, text=True)
    check(r.returncode == 0 and "make_lost_block" in r.stdout and "make_reachable" not in r.stdout,
          f"go tool pprof -tagfocus lost=definite: {r.stdout[-800:]}{r.stderr[-300:]}")
# HTML: the totals per class are in the page's data.
r = run([view, "--format", "html", snap])
check(b'"reach":{"definite":[3,180],"indirect":[6,288]' in r.stdout, "html: totals per class")

# 4. RESMON_EXIT_ON
for exit_on, status in [("fd", 23), ("thread", 0), ("indirect", 23), ("file", 23), ("dir", 0), ("lost", 23)]:
    r, _ = traced("exit_on_" + exit_on, [reach], {"RESMON_EXIT_CODE": "23", "RESMON_EXIT_ON": exit_on})
    check(r.returncode == status, f"RESMON_EXIT_ON={exit_on}: expected status {status}, got {r.returncode}")
r, _ = traced("exit_on_bad", [reach], {"RESMON_EXIT_ON": "lost,gone"})
check(r.returncode == 2 and b"RESMON_EXIT_ON" in r.stderr and r.stderr.count(b"\n") == 1,
      f"RESMON_EXIT_ON=lost,gone: one line, status 2: {r.stderr}")

# Exit on an alternate signal stack: main's stack is a root all the same.
r, snap = traced("altstack", [reach, "altstack"])
d = by_function(view_json(snap))
check(r.returncode == 0 and d.get(("main", "reachable")) == (1, 300),
      f"altstack: the block only main's frame points to is reachable: {r.returncode} {d}")
# Mappings cut at their front or in their middle are still held, and read.
r, snap = traced("trimmed", [reach, "trimmed"], {"RESMON_EXIT_CODE": "23", "RESMON_EXIT_ON": "lost"})
doc = view_json(snap)
d, maps = by_function(doc), by_function(doc, "mmap")
page = os.sysconf("SC_PAGESIZE")
check(d.get(("make_in_trimmed_mappings()", "reachable")) == (20, 640),
      f"trimmed: blocks pointed to from cut mappings are reachable: {d}")
check(maps.get(("make_in_trimmed_mappings()", "reachable")) == (2, 11 * page),
      f"trimmed: the mapping cut at its front is held for its 7 pages left: {maps}")
# C functions named like mangled types ("d", "Ss") keep their names.
r, snap = traced("c_names", [reach, "c_names"])
d = by_function(view_json(snap))
check(d.get(("d", "reachable")) == (1, 70) and d.get(("Ss", "reachable")) == (1, 70),
      f"c_names: functions d and Ss are not demangled into types: {d}")
# A held mapping of a truncated file is not read (it would fault).
r, snap = traced("truncated", [reach, "truncated"])
check(r.returncode == 0 and view_json(snap)["reachability"] is not None, f"truncated mapping: status {r.returncode}")
# Short programs: the clock ticker (which blocks every signal) never stops the scan.
for i in range(5):
    r, snap = traced(f"short{i}", ["/bin/bash", "-c", "exit 0"], {"RESMON_EXIT_CODE": "23"})
    check(r.returncode == 0, f"bash -c 'exit 0' #{i}: status {r.returncode}")

# 5. A thread that blocks every signal cannot be stopped: nothing is
# classified, and held memory counts as lost (never a false "clean").
r, snap = traced("blocked", [reach, "blocked"], {"RESMON_EXIT_CODE": "23", "RESMON_LOG": "stderr"})
check(r.returncode == 23, f"blocked: status {r.returncode}")
check(b"reachability not computed" in r.stderr, f"blocked: the log says why: {r.stderr}")
doc = view_json(snap)
check(doc["reachability"] is None and doc.get("reachability_failed") is True,
      f"blocked: no classes in the snapshot, which says the scan failed: {doc.get('reachability_failed')}")
text = run([view, snap]).stdout.decode()
check("did not stop for the scan" in text, f"blocked: the report says why memory is not classified: {text[:400]}")
r, _ = traced("off", [reach], {"RESMON_REACHABILITY": "0", "RESMON_EXIT_CODE": "23", "RESMON_EXIT_ON": "thread"})
check(r.returncode == 0, f"RESMON_REACHABILITY=0: status {r.returncode}")

# 6. Snapshots at signals: a fatal one leaves the last snapshot and the
# process dies as it would have; RESMON_SNAPSHOT_SIGNAL writes one on demand.
for mode, sig in (("segv", 11), ("abort", 6)):
    r, snap = traced(mode, [reach, mode], {"RESMON_EXIT_CODE": "23"})
    check(r.returncode == -sig, f"{mode}: killed by signal {sig} as without resmon, got status {r.returncode}")
    t = run([view, snap]).stdout.decode()
    check(f"at signal {sig}" in t and "make_lost_block()" in t and "make_reachable()" in t,
          f"{mode}: the last snapshot names the leaks: {t[:500]}")
    g = run([view, "--lost", "--exit-code", "23", snap])
    check(g.returncode == 23 and f"at signal {sig} (SIG".encode() in g.stderr,
          f"{mode}: --lost counts its held blocks as lost and names the signal: {g.returncode} {g.stderr}")
r, snap = traced("usr1", [reach, "usr1"])
check(r.returncode == 0, f"usr1: status {r.returncode} {r.stderr}")
d = view_json(snap + ".usr1")
check(d.get("signal") == 10 and not d.get("final") and any(g["stack"] and g["stack"][0]["function"] == "make_lost_block()"
                                                         for g in d["groups"]), f"usr1: a snapshot on demand: {str(d)[:300]}")
r, _ = traced("usr1_off", [reach, "usr1"], {"RESMON_SNAPSHOT_SIGNAL": "0"})
check(r.returncode == -10, f"RESMON_SNAPSHOT_SIGNAL=0: SIGUSR1 keeps its default action, status {r.returncode}")
r, _ = traced("usr1_bad", [reach], {"RESMON_SNAPSHOT_SIGNAL": "SEGV"})
check(r.returncode == 2 and b"RESMON_SNAPSHOT_SIGNAL" in r.stderr, f"RESMON_SNAPSHOT_SIGNAL=SEGV refused: {r.stderr}")

vdir = tempfile.mkdtemp(prefix="vfork-", dir=work)
r = run([reach, "vfork"], env={"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(vdir, "v.resmon")})
check(r.returncode == 0 and sorted(os.listdir(vdir)) == ["v.resmon"],
      f"vfork: the child writes no snapshot of its parent's: {r.returncode} {os.listdir(vdir)}")
sdir = tempfile.mkdtemp(prefix="spawn-", dir=work)
r = run([reach, "spawn"], env={"LD_PRELOAD": preload, "RESMON_OUTPUT": os.path.join(sdir, "s.resmon")})
m = re.search(rb"spawned (\d+)", r.stdout)
check(r.returncode == 0 and m is not None, f"spawn: status {r.returncode}, {r.stdout[-200:]}")
if m:
    child_file = f"s.resmon.{m.group(1).decode()}"
    check(sorted(os.listdir(sdir)) == sorted(["s.resmon", child_file]),
          f"posix_spawn: the program spawned writes its own snapshot beside the parent's: {os.listdir(sdir)}")
    if child_file in os.listdir(sdir):
        parent, child = view_json(os.path.join(sdir, "s.resmon")), view_json(os.path.join(sdir, child_file))
        check(parent.get("pid") != child.get("pid") and str(child.get("program", "")).endswith("true"),
              f"posix_spawn: each file is its own process's: {parent.get('pid')} {child.get('pid')} {child.get('program')}")

# 7. The high-water mark: a table of 8 MiB built and freed is what --at peak
# shows (a new peak passes the last by 1/64; a thread looks every 64 KiB);
# the exit holds only the leak.
r, snap = traced("peak", [peak], {"RESMON_PEAK": "1"})
check(r.returncode == 0, f"peak: status {r.returncode}")
d = view_json(snap, "--at", "peak")
table = [g for g in d["groups"] if g["stack"] and g["stack"][0]["function"] == "build_table(int)"]
rows = sum(g["count"] for g in table if g["bytes"] == 1024 * g["count"])
check(8192 * 63 // 64 - 64 <= rows <= 8192, f"--at peak: the table's 8192 rows (to within 1/64 and 64 KiB), got {rows}")
t = run([view, snap, "--at", "peak"]).stdout.decode()
first_group = t.split("\n\n", 1)[1].splitlines()[0] if "\n\n" in t else ""
check("at the peak of held memory" in t and "build_table(int)" in first_group, f"--at peak text: {t[:400]}")
d = view_json(snap)
check(not any(g["stack"] and g["stack"][0]["function"] == "build_table(int)" for g in d["groups"]) and
      any(g["stack"] and g["stack"][0]["function"] == "small_leak()" for g in d["groups"]), "--at exit: only the leak")
# Held memory over time: a climb to about 8 MiB and back, drawn in the HTML page.
series = d["series"]
check(len(series) >= 5 and 7 << 20 <= max(p[1] for p in series) <= 9 << 20 and series[-1][1] < 1 << 20,
      f"series: a climb to 8 MiB and back: {series[:40]}")
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if chromium:
    page = os.path.join(work, "peak.html")
    run([view, snap, "--format", "html", "-o", page])
    r = run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
             "file://" + page], text=True)
    check('id="peak"' in r.stdout and "data-error" not in r.stdout and re.search(r"highest [78]\.\d MiB", r.stdout),
          f"html: the series is drawn with its highest point: {r.stdout[:300]}")
r, snap = traced("peak_off", [peak])
r = run([view, snap, "--at", "peak"])
check(r.returncode == 2 and b"no high-water mark" in r.stderr, f"without RESMON_PEAK=1: no peak, one line: {r.stderr}")
r, _ = traced("peak_bad", [peak], {"RESMON_PEAK": "lots"})
check(r.returncode == 2 and b"RESMON_PEAK" in r.stderr, f"RESMON_PEAK=lots refused: {r.stderr}")

# 8. Real programs hold memory at exit on purpose; nothing of it is lost.
for argv in (["/usr/bin/python3", "-c", "print(1)"], ["/bin/bash", "-c", "x=$(echo hi); echo $x"]):
    if not os.path.exists(argv[0]):
        continue
    r, snap = traced(os.path.basename(argv[0]), argv, {"RESMON_EXIT_CODE": "23"})
    check(r.returncode == 0, f"{argv}: RESMON_EXIT_CODE=23 and nothing definitely lost: status {r.returncode} "
                             f"{run([view, snap, '--lost']).stdout.decode()[:1500]}")
    d = view_json(snap)
    check(d["reachability"] is not None and d["reachability"]["reachable"]["count"] > 0,
          f"{argv}: classified, with reachable memory: {d['reachability']}")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
