#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The folders of include/resmon are layers, and every #include "..." goes
down: core/ (and resmon.h, a leaf C header) <- platform/ <- the tracking API
(config.hpp, tracking.hpp, stack_capture.hpp, macros.hpp, detail/) <-
handles/, alloc/, report/ <- monitor/ <- testing/ and the umbrellas
(resmon.hpp, handles.hpp, resmon_impl.hpp), with the forwarding headers of
the flat layout. A header may include its own folder, never a sibling of the
same layer (alloc/ never includes report/).

usage: layers.py INCLUDE_DIR
"""
import os
import re
import sys

LAYERS = {
    "core": 0, "resmon.h": 0,
    "platform": 1,
    "config.hpp": 2, "tracking.hpp": 2, "stack_capture.hpp": 2, "macros.hpp": 2, "detail": 2,
    "handles": 3, "alloc": 3, "report": 3,
    "monitor": 4,
    "testing": 5,  # the test integrations bring the whole API (resmon.hpp)
}
UMBRELLA = 5


def unit(rel):
    """The layer's name of a header: its folder, or its own name at the top."""
    return rel.split("/", 1)[0]


def forwarder(text):
    return "keeps working for one release" in text and len(re.findall(r"^#include", text, re.M)) == 1


def main():
    root = os.path.join(sys.argv[1], "resmon")
    failures, checked = [], 0
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            text = open(path, encoding="utf-8").read()
            mine = UMBRELLA if forwarder(text) else LAYERS.get(unit(rel), UMBRELLA)
            for m in re.finditer(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
                target = os.path.normpath(os.path.join(os.path.dirname(rel), m.group(1))).replace(os.sep, "/")
                if target.startswith(".."):
                    failures.append(f"{rel}: includes {m.group(1)}, outside include/resmon")
                    continue
                if not os.path.exists(os.path.join(root, target)):
                    failures.append(f"{rel}: includes {m.group(1)}, which does not exist")
                    continue
                theirs = LAYERS.get(unit(target), UMBRELLA)
                checked += 1
                if theirs > mine or (theirs == mine and mine != UMBRELLA and unit(target) != unit(rel) and
                                     "/" in rel and "/" in target):
                    failures.append(f"{rel} (layer {mine}) includes {target} (layer {theirs}): "
                                    "a header includes only lower layers and its own folder")
    for f in failures:
        print("FAIL:", f)
    print(f"layers: {checked} includes checked, {len(failures)} going up or sideways")
    return 1 if failures or checked < 50 else 0


if __name__ == "__main__":
    sys.exit(main())
