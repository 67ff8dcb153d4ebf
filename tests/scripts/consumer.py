#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves a separate project can use resmon: as a Meson subproject; through
pkg-config after `meson install --destdir`; through CMake's find_package."""
import os
import shutil
import subprocess
import sys
import tempfile


def built_objects(build, areas):
    """Returns: the object files and ELF binaries under `areas` of `build`."""
    found = []
    for area in areas:
        for root, _, names in os.walk(os.path.join(build, area)):
            for name in names:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                if name.endswith(".o"):
                    found.append(os.path.relpath(path, build))
                    continue
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        found.append(os.path.relpath(path, build))
    return found


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        print(f"FAILED: {' '.join(cmd)}\n{p.stdout}")
        sys.exit(1)
    return p.stdout


def check_output(out, how, tracked=True):
    if tracked and ("consumer: 1 held" not in out or "consumer: 0 held" not in out):
        print(f"FAILED: the consumer built {how} does not track\n{out}")
        sys.exit(1)
    if not tracked and ("consumer: 1 held" in out or out.count("consumer: 0 held") != 2):
        print(f"FAILED: the consumer built {how} tracks, or does not run\n{out}")
        sys.exit(1)


def check_strict(build, how):
    out = run([os.path.join(build, "strict")])
    if "strict: 0 held" not in out:
        print(f"FAILED: the strict consumer built {how}\n{out}")
        sys.exit(1)


def main():
    source = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        proj = os.path.join(tmp, "consumer")
        shutil.copytree(os.path.join(source, "examples", "consumer"), proj)
        os.makedirs(os.path.join(proj, "subprojects"))
        os.symlink(source, os.path.join(proj, "subprojects", "resmon"))

        # 1. Subproject.
        run(["meson", "setup", os.path.join(tmp, "b1"), proj])
        run(["ninja", "-C", os.path.join(tmp, "b1")])
        check_output(run([os.path.join(tmp, "b1", "consumer")]), "as a subproject")
        check_strict(os.path.join(tmp, "b1"), "as a subproject")

        # 2. Installed, found by pkg-config (and CMake) under a staging root.
        build = os.path.join(tmp, "resmon-build")
        dest = os.path.join(tmp, "stage")
        # With the tests, examples and benchmarks configured (the defaults):
        # a plain install builds only what it installs.
        run(["meson", "setup", build, source, "--prefix=/usr/local", "-Dtracking=enabled"])
        run(["meson", "install", "-C", build, "--destdir", dest])
        built = built_objects(build, ["examples", "tests", "bench", "kernel_compat"])
        if built:
            print(f"FAILED: meson install built {len(built)} files it does not install, e.g. {built[:3]}")
            sys.exit(1)
        pc_dir = os.path.join(dest, "usr", "local", "share", "pkgconfig")
        if not os.path.exists(os.path.join(pc_dir, "resmon.pc")):
            print("FAILED: resmon.pc is not installed under datadir/pkgconfig")
            sys.exit(1)
        # Whole-process mode, installed: resmon-run finds the preload library
        # under the installed libdir, and resmon-view reads what it wrote.
        bin_dir = os.path.join(dest, "usr", "local", "bin")
        snapshot = os.path.join(tmp, "installed.resmon")
        e = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("RESMON_")}
        traced = subprocess.run([os.path.join(bin_dir, "resmon-run"), "-o", snapshot, "--", "ls", source],
                                capture_output=True, text=True, env=e)
        if traced.returncode != 0 or "meson.build" not in traced.stdout or not os.path.exists(snapshot):
            print(f"FAILED: the installed resmon-run ({traced.returncode}): {traced.stderr}")
            sys.exit(1)
        viewed = run([os.path.join(bin_dir, "resmon-view"), snapshot])
        if "memory" not in viewed:
            print(f"FAILED: the installed resmon-view: {viewed}")
            sys.exit(1)

        # The installed package bakes no choice of this build in: resmon.pc
        # neither tracks nor needs libdw; resmon-tracking.pc and
        # resmon-libdw.pc add them.
        with open(os.path.join(pc_dir, "resmon.pc")) as f:
            pc = f.read()
        fields = [l for l in pc.splitlines() if l.startswith(("Cflags", "Requires", "Libs"))]
        if any("RESMON_ENABLE" in l or "libdw" in l or l.startswith("Requires") for l in fields):
            print(f"FAILED: resmon.pc chooses for its consumers\n{pc}")
            sys.exit(1)
        for name in ("resmon-tracking.pc", "resmon-libdw.pc"):
            if not os.path.exists(os.path.join(pc_dir, name)):
                print(f"FAILED: {name} is not installed")
                sys.exit(1)
        env = dict(os.environ, PKG_CONFIG_PATH=pc_dir, PKG_CONFIG_SYSROOT_DIR=dest)
        run(["meson", "setup", os.path.join(tmp, "b2"), proj, "-Dfrom=pkgconfig"], env=env)
        run(["ninja", "-C", os.path.join(tmp, "b2")])
        check_output(run([os.path.join(tmp, "b2", "consumer")]), "through pkg-config (resmon-tracking)")
        check_strict(os.path.join(tmp, "b2"), "through pkg-config")
        run(["meson", "setup", os.path.join(tmp, "b2u"), proj, "-Dfrom=pkgconfig", "-Dpc=resmon"], env=env)
        run(["ninja", "-C", os.path.join(tmp, "b2u")])
        check_output(run([os.path.join(tmp, "b2u", "consumer")]), "through pkg-config (resmon)", tracked=False)

        if shutil.which("cmake"):
            prefix = "-DCMAKE_PREFIX_PATH=" + os.path.join(dest, "usr", "local")
            for name, options, tracked in (("b3", [], True), ("b4", ["-DCMAKE_BUILD_TYPE=Release"], False),
                                           ("b5", ["-DCMAKE_BUILD_TYPE=Release", "-DRESMON_TRACKING=ON"], True),
                                           ("b6", ["-DCMAKE_BUILD_TYPE=Debug", "-DRESMON_TRACKING=OFF"], False)):
                run(["cmake", "-S", proj, "-B", os.path.join(tmp, name), prefix, *options])
                run(["cmake", "--build", os.path.join(tmp, name)])
                check_output(run([os.path.join(tmp, name, "consumer")]),
                             f"through CMake find_package {' '.join(options)}", tracked)
            check_strict(os.path.join(tmp, "b3"), "through CMake")
        else:
            print("cmake not found: the CMake package check is skipped")
    print("ok")


if __name__ == "__main__":
    main()
