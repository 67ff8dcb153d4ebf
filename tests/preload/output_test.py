#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where a snapshot goes, and what it leaves:
- A program killed (SIGKILL) while resmon writes one of its periodic
  snapshots leaves no partial file beside it: the snapshot is written to an
  unnamed file and named once complete, and whatever snapshot is there reads
  back whole. While the program runs, no partial file is ever seen beside
  the snapshot either (before, a `.tmp.<pid>` file was there a third of the
  time).
- RESMON_OUTPUT naming a directory, a FIFO, a device or a symbolic link
  stops the program at start with one line: before, the snapshot replaced
  it (as root, RESMON_OUTPUT=/dev/null replaced the system's /dev/null).
- A name longer than a file name may be is refused at start; a long program
  name in the default name is cut, so the snapshot is still written.
- A snapshot that cannot be written at exit says so on stderr.

usage: output_test.py PRELOAD VIEW
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, clean_env, outcome, run, view_json  # noqa: E402

# Holds 300,000 blocks, so that writing a snapshot takes a while, then waits.
HOLDER = "import time\nheld = [bytearray(24) for _ in range(300000)]\nprint('ready', flush=True)\ntime.sleep(60)\n"


def refused_targets(preload, work):
    """Names that are not regular files are refused at start, and left alone."""
    true = shutil.which("true")
    targets = {"a directory": os.path.join(work, "dir"), "a FIFO": os.path.join(work, "fifo"),
               "a symbolic link": os.path.join(work, "link")}
    os.mkdir(targets["a directory"])
    os.mkfifo(targets["a FIFO"])
    with open(os.path.join(work, "real"), "w") as f:
        f.write("mine\n")
    os.symlink("real", targets["a symbolic link"])
    if os.geteuid() == 0:  # a device node of its own (the null device's numbers), never /dev/null itself
        targets["a device"] = os.path.join(work, "null")
        os.mknod(targets["a device"], 0o666 | 0o020000, os.makedev(1, 3))
    for what, target in targets.items():
        before = os.lstat(target)
        r = run([true], {"LD_PRELOAD": preload, "RESMON_OUTPUT": target}, timeout=60, text=True)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and "RESMON_OUTPUT=" in lines[0] and "not valid" in lines[0],
              f"{what}: refused at start with one line ({r.returncode}: {r.stderr!r})")
        after = os.lstat(target)
        check((after.st_mode, after.st_ino) == (before.st_mode, before.st_ino), f"{what}: left as it was")
    with open(os.path.join(work, "real")) as f:
        check(f.read() == "mine\n", "the file a symbolic link names is left as it was")
    long = os.path.join(work, "x" * 256)
    r = run([true], {"LD_PRELOAD": preload, "RESMON_OUTPUT": long}, timeout=60, text=True)
    check(r.returncode == 2 and "at most 255 bytes" in r.stderr, f"a 256-byte name is refused ({r.stderr!r})")


def long_program_name(preload, view, work):
    """The default name cuts a long program name: the snapshot is written."""
    program = os.path.join(work, "p" * 250)
    shutil.copy(shutil.which("true"), program)
    r = run([program], {"LD_PRELOAD": preload}, timeout=60, text=True, cwd=work)
    written = [f for f in os.listdir(work) if f.startswith("resmon.p") and f.endswith(".resmon")]
    check(r.returncode == 0 and r.stderr == "" and len(written) == 1,
          f"a 250-byte program name: snapshot written ({r.returncode} {r.stderr!r} {written})")
    if written:
        check(view_json(view, os.path.join(work, written[0]))["program"] == program, "it names the program")


def unwritable_at_exit(preload, work):
    """The snapshot's name turned into a directory while the program ran: one
    line on stderr at exit, and the directory is left alone."""
    target = os.path.join(work, "became-dir")
    r = run(["sh", "-c", f"mkdir {target}"], {"LD_PRELOAD": preload, "RESMON_OUTPUT": target}, timeout=60, text=True)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 0 and os.path.isdir(target) and len(lines) == 1
          and lines[0] == f"resmon: the snapshot could not be written to {target}: it is a directory",
          f"a snapshot that cannot be written says so ({r.returncode}: {r.stderr!r})")


def stderr_reused(preload, work):
    """A program that closed stderr, whose next file got descriptor 2: the
    line about a snapshot that cannot be written does not go into that file."""
    target = os.path.join(work, "reused-dir")
    data = os.path.join(work, "data.txt")
    script = (f"import os\nos.close(2)\nfd = os.open({data!r}, os.O_WRONLY | os.O_CREAT, 0o644)\n"
              f"assert fd == 2\nos.write(fd, b'data')\nos.mkdir({target!r})\n")
    r = run([sys.executable, "-c", script], {"LD_PRELOAD": preload, "RESMON_OUTPUT": target}, timeout=60, text=True)
    written = open(data).read() if os.path.exists(data) else None
    check(r.returncode == 0 and os.path.isdir(target) and written == "data",
          f"descriptor 2 reused for a file: resmon writes nothing into it ({r.returncode}: {written!r})")


def main():
    preload, view = (os.path.abspath(a) for a in sys.argv[1:3])
    work = tempfile.mkdtemp(prefix="resmon-output-")
    refused_targets(preload, work)
    long_program_name(preload, view, work)
    unwritable_at_exit(preload, work)
    stderr_reused(preload, work)
    rounds = 6
    for i in range(rounds):
        out = os.path.join(work, f"k{i}.resmon")
        # Every object through malloc: 600,000 held blocks.
        env = clean_env({"LD_PRELOAD": preload, "RESMON_OUTPUT": out, "RESMON_FLUSH_INTERVAL": "1ms",
                         "PYTHONMALLOC": "malloc"})
        p = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE)
        check(p.stdout.readline() == b"ready\n", f"round {i}: the program started")
        deadline = time.monotonic() + 30
        while not os.path.exists(out) and time.monotonic() < deadline:
            time.sleep(0.01)
        check(os.path.exists(out), f"round {i}: a periodic snapshot appeared")
        # Snapshots follow each other, each written for a third of the time
        # or more: what is there beside the snapshot, looked at every 5 ms.
        # A complete one is named in two steps (a link to a hidden name, then
        # a rename: microseconds apart), so one look may see the hidden name.
        def beside():
            return [f for f in os.listdir(work) if f.lstrip(".").startswith(f"k{i}.") and f != f"k{i}.resmon"]
        seen, looks = set(), 0
        stop = time.monotonic() + 0.1 + 0.05 * i
        while time.monotonic() < stop:
            now = beside()
            looks += 1 if now else 0
            seen.update(now)
            time.sleep(0.005)
        check(looks <= 1, f"round {i}: no partial file appears beside the snapshot: {sorted(seen)} in {looks} looks")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        left = sorted(beside())
        check(not left, f"round {i}: nothing but the snapshot is left after SIGKILL: {left}")
        if os.path.exists(out):
            doc = view_json(view, out)
            memory = {k["kind"]: k for k in doc["kinds"]}.get("memory")
            check(memory is not None and memory["held"]["count"] >= 300000,
                  f"round {i}: the snapshot reads back whole: {memory and memory['held']}")
    return outcome("output_test", f"{rounds} programs killed while snapshots were written, no partial file left; "
                   "names that are not regular files refused; long names")


if __name__ == "__main__":
    sys.exit(main())
