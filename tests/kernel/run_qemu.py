#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Builds the example driver as a Linux module (kbuild + the resmon core as a
# prebuilt freestanding C++ object), boots Debian's kernel under qemu with a
# busybox initramfs that does insmod -> work -> rmmod -> dmesg, and checks
# the unload report in the kernel log: the leaked event (the glue's own record
# of it), driver.c's leak line, its kind, and a return address in driver_work.
# Exits 77 (skipped) with one line when the kernel packages are missing.
# Usage: run_qemu.py <source-root> <work-dir> <c++ compiler>
import glob
import os
import re
import shutil
import subprocess
import sys
import time

root, work, cxx = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
kc = os.path.join(root, "kernel_compat")
example = os.path.join(root, "examples", "kernel_driver")
here = os.path.dirname(os.path.abspath(__file__))


def skip(why):
    print("SKIP: %s (install with: scripts/deps %s)" % (why, open(os.path.join(here, "packages.txt")).read().split("\n")[-2]))
    sys.exit(77)


versions = [os.path.basename(os.path.dirname(os.path.dirname(b))) for b in glob.glob("/lib/modules/*/build/Makefile")]
versions = [v for v in sorted(versions) if os.path.exists("/boot/vmlinuz-" + v)]
if not versions:
    skip("no kernel with headers: expected /lib/modules/<version>/build and /boot/vmlinuz-<version>")
for tool in ("qemu-system-x86_64", "cpio", "make"):
    if shutil.which(tool) is None:
        skip("%s not found" % tool)
busybox = shutil.which("busybox")
if busybox is None:
    skip("busybox not found")
if b"/lib64/ld-linux" in open(busybox, "rb").read(4096):  # a dynamic busybox cannot run alone in the initramfs
    skip("%s is not busybox-static" % busybox)
version = versions[-1]
print("kernel", version)

# 1. The module's sources and the prebuilt C++ object.
mod = os.path.join(work, "module")
shutil.rmtree(mod, ignore_errors=True)
os.makedirs(os.path.join(mod, "include", "resmon", "platform"))
for src in ("linux/Kbuild", "linux/resmon_example_glue.c", "driver.c", "driver_os.h"):
    shutil.copy(os.path.join(example, src), mod)
for header in ("resmon.h", "platform/kernel_hooks.h"):
    shutil.copy(os.path.join(root, "include", "resmon", header), os.path.join(mod, "include", "resmon", header))
obj = os.path.join(mod, "resmon_kc_core.o")
cmd = [cxx, "-std=c++20", "-ffreestanding", "-fno-exceptions", "-fno-rtti", "-fno-asynchronous-unwind-tables",
       "-fno-threadsafe-statics", "-mno-red-zone", "-nostdinc++", "-mcmodel=kernel", "-fno-pic",
       "-fno-stack-protector", "-mgeneral-regs-only", "-fno-jump-tables", "-fno-gnu-unique",
       # The kernel is built with retpolines and return thunks; indirect branches go through its thunks.
       "-mindirect-branch=thunk-extern", "-mindirect-branch-register", "-mfunction-return=thunk-extern",
       "-O2", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(root, "include"),
       "-c", os.path.join(kc, "resmon_kc.cpp"), "-o", obj]
t0 = time.time()
subprocess.run(cmd, check=True)
# kbuild takes a prebuilt object once it has a .cmd file (modpost reads them).
with open(os.path.join(mod, ".resmon_kc_core.o.cmd"), "w") as f:
    f.write("cmd_%s := %s\n" % (obj, " ".join(cmd)))
r = subprocess.run(["make", "-s", "-C", "/lib/modules/%s/build" % version, "M=" + mod, "modules"],
                   capture_output=True, text=True)
print(r.stdout, r.stderr)
if r.returncode != 0:
    sys.exit("kbuild failed")
ko = os.path.join(mod, "resmon_example.ko")
print("module built in %.1f s" % (time.time() - t0))

# 2. The initramfs: busybox and an init script.
rootfs = os.path.join(work, "rootfs")
shutil.rmtree(rootfs, ignore_errors=True)
os.makedirs(os.path.join(rootfs, "bin"))
shutil.copy(busybox, os.path.join(rootfs, "bin", "busybox"))
shutil.copy(ko, rootfs)
with open(os.path.join(rootfs, "init"), "w") as f:
    f.write("""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys
/bin/busybox mount -t proc proc /proc
/bin/busybox insmod /resmon_example.ko || echo "INSMOD FAILED"
/bin/busybox grep -w driver_work /proc/kallsyms | /bin/busybox sed 's/^/kallsyms: /'
/bin/busybox sleep 1
/bin/busybox rmmod resmon_example || echo "RMMOD FAILED"
echo "=== dmesg"
/bin/busybox dmesg
echo "=== end"
/bin/busybox poweroff -f
""")
os.chmod(os.path.join(rootfs, "init"), 0o755)
initrd = os.path.join(work, "initramfs.cpio")
files = subprocess.run(["find", "."], cwd=rootfs, capture_output=True, text=True, check=True).stdout
subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-F", initrd], cwd=rootfs, input=files, text=True, check=True)

# 3. Boot.
t0 = time.time()
qemu = ["qemu-system-x86_64", "-nographic", "-no-reboot", "-m", "512", "-smp", "2",
        "-kernel", "/boot/vmlinuz-" + version, "-initrd", initrd,
        "-append", "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic"]
# Software emulation (TCG) only: KVM is not available on every CI machine, and a boot takes seconds anyway.
r = subprocess.run(qemu, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
out = r.stdout.replace("\r", "")
print(out[-6000:], r.stderr[-2000:])
print("qemu ran %.1f s" % (time.time() - t0))

# 4. Checks.
assert "=== dmesg" in out, "the init script did not finish"
assert "INSMOD FAILED" not in out and "RMMOD FAILED" not in out
dmesg = out[out.index("=== dmesg"):]
assert "resmon_example: loaded, worked" in dmesg
assert re.search(r"resmon: still held at uninstall: 1 resource held in 1 kind", dmesg), "no unload report"
open_events = re.findall(r"resmon_example: glue: event still open: (0x[0-9a-f]+)", dmesg)
assert len(open_events) == 1, open_events
held = re.findall(r"held: (\w+) (0x[0-9a-f]+), acquired at (\S+):(\d+) in driver_work, age .*, return address (0x[0-9a-f]+)", dmesg)
assert len(held) == 1, held
kind, key, file, line, ret = held[0]
leak_line = next(i for i, l in enumerate(open(os.path.join(example, "driver.c")), 1) if "resmon-leak-site" in l)
assert kind == "event", kind
assert key == open_events[0], (key, open_events)
assert file.endswith("driver.c") and int(line) == leak_line, (file, line, leak_line)
sym = re.search(r"kallsyms: ([0-9a-f]+) t driver_work", out, re.I)
assert sym, "driver_work not in /proc/kallsyms"
nm = subprocess.run(["nm", "-S", ko], capture_output=True, text=True, check=True).stdout
size = int(re.search(r"^[0-9a-f]+ ([0-9a-f]+) T driver_work$", nm, re.M).group(1), 16)
start, ret = int(sym.group(1), 16), int(ret, 16)
assert start <= ret < start + size, (hex(start), hex(ret), size)
print("ok: kernel %s: the unload report names event %s at driver.c:%d, return address %s in driver_work"
      % (version, key, leak_line, hex(ret)))
