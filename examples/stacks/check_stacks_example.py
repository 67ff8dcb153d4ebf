#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs examples/stacks with several RESMON_STACK_DEPTH / RESMON_STACK_METHOD
values: frames appear as deep as asked; bad values get one clear line on
stderr and the default is kept."""
import os
import subprocess
import sys

failures = []


def run(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESMON_STACK")}
    env.update(env_extra)
    p = subprocess.run([sys.argv[1]], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        failures.append(f"{env_extra}: exit status {p.returncode}\n{p.stderr}")
    return p.stdout, p.stderr


def check(cond, what, out, err):
    if not cond:
        failures.append(f"{what}\n--- stdout\n{out}\n--- stderr\n{err}")


# Default of the example: 8 frames, named, innermost first.
out, err = run({})
check("#0 (anonymous namespace)::load_texture(unsigned long)" in out, "frame #0 names the leaking function", out, err)
check("#1 (anonymous namespace)::open_level(int)" in out, "frame #1 names its caller", out, err)
check("#2 main" in out, "frame #2 names main", out, err)
check("top culprits by growth since the checkpoint" in out and "1. memory: +3 held, +9216 B (now 3 held, 9216 B)" in out,
      "growth since the checkpoint ranks the three new textures", out, err)
check(err == "", "no diagnostics", out, err)

# Depth from the environment.
out, err = run({"RESMON_STACK_DEPTH": "2"})
check("#1 (anonymous namespace)::open_level(int)" in out and "#2 " not in out, "RESMON_STACK_DEPTH=2 gives 2 frames",
      out, err)
out, err = run({"RESMON_STACK_DEPTH": "0"})
check("#0 " not in out and "load_texture" in out, "RESMON_STACK_DEPTH=0: no frames, the caller still named", out, err)

# Bad values: one line naming the variable and what was expected; the default (0) is kept.
for bad in ["abc", "99", "-1", ""]:
    out, err = run({"RESMON_STACK_DEPTH": bad})
    lines = err.splitlines()
    check(len(lines) == 1 and lines[0].startswith(f"resmon: RESMON_STACK_DEPTH='{bad}' is not valid: expected a "
                                                  "number of frames from 0 to 64; keeping 0"),
          f"RESMON_STACK_DEPTH={bad!r} is reported on one line", out, err)
    check("#0 " not in out, f"RESMON_STACK_DEPTH={bad!r} keeps the default depth 0", out, err)
out, err = run({"RESMON_STACK_METHOD": "fast"})
check(err.startswith("resmon: RESMON_STACK_METHOD='fast' is not valid: expected auto, fp or unwind; keeping auto")
      and len(err.splitlines()) == 1, "a bad RESMON_STACK_METHOD is reported on one line", out, err)
out, err = run({"RESMON_STACK_METHOD": "unwind", "RESMON_STACK_DEPTH": "4"})
check("#1 (anonymous namespace)::open_level(int)" in out and err == "", "RESMON_STACK_METHOD=unwind works", out, err)

if failures:
    print("\n\n".join(failures))
    sys.exit(1)
print("stacks example: all checks passed")
