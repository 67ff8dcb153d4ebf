# SPDX-License-Identifier: MIT
"""What the whole-process test scripts share: failures that do not stop the
script, running a program with a clean resmon environment, and reading a
snapshot as JSON."""
import json
import os
import subprocess

failures = []


def check(condition, what):
    """Records a failure (and prints it) without stopping the script."""
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def clean_env(extra=None):
    """The environment without LD_PRELOAD and RESMON_* (RESMON_ROOT_PID
    included: each program run here is the root of its own tree), plus extra."""
    e = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("RESMON_")}
    e.update(extra or {})
    return e


def run(cmd, env=None, timeout=300, **kw):
    return subprocess.run(cmd, env=clean_env(env), capture_output=True, timeout=timeout, **kw)


def view_json(view, path):
    """The snapshot at `path` as resmon-view --format json reads it."""
    return json.loads(subprocess.run([view, "--format", "json", path], capture_output=True, check=True).stdout)


def outcome(name, passed):
    """The exit status of test `name`: 1 and the count when checks failed,
    else 0 and what passed (`passed`)."""
    if failures:
        print(f"{name}: {len(failures)} failed")
        return 1
    print(f"{name}: {passed}")
    return 0
