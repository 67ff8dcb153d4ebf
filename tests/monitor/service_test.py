#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/service under its monitor, read back by the real consumers:
promtool checks the /metrics text and the example alerting rules, and a real
Prometheus scrapes the service every second. Asserts that the leaking site is
named (never the churn site), that the fd budget's receptor fires both ways,
that Prometheus holds the exact resmon_held_bytes{kind="memory"} the service
serves while it holds still, and that the leak shows as a positive deriv().

usage: service_test.py SERVICE ALERTS_YML
Exit 77 (skipped) only when promtool or prometheus is not installed.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, fn, seconds):
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.2)
    raise SystemExit(f"service_test: timed out waiting for {what} (last error: {last})")


def metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{" + labels + "}"):
            return float(line.rsplit(" ", 1)[1])
    return None


def query(prom, expr):
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    doc = json.loads(get(url))
    if doc.get("status") != "success":
        raise RuntimeError(f"query {expr}: {doc}")
    return doc["data"]["result"]


def main():
    service, alerts = sys.argv[1], sys.argv[2]
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    if not promtool or not prometheus:
        print("service_test: SKIP: promtool/prometheus not installed (Debian package prometheus)")
        return 77
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what)

    # The rules ship with the example: promtool must accept them.
    r = subprocess.run([promtool, "check", "rules", alerts], capture_output=True, text=True)
    check(r.returncode == 0, f"promtool check rules: {r.stdout}{r.stderr}")

    work = tempfile.mkdtemp(prefix="resmon-prom-")
    port, prom_port = free_port(), free_port()
    pause = os.path.join(work, "pause")
    err_path = os.path.join(work, "service.err")
    procs = []
    try:
        with open(err_path, "w") as err:
            svc = subprocess.Popen([service, "--interval-ms", "250", "--port", str(port), "--pause-file", pause],
                                   stdout=subprocess.PIPE, stderr=err, text=True)
        procs.append(svc)
        text = wait_for("the service's /metrics", lambda: get(f"http://127.0.0.1:{port}/metrics"), 20)

        # promtool reads the exposition and lints names, types and HELP.
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        check(r.returncode == 0, f"promtool check metrics: {r.stdout}{r.stderr}")
        # ...and is a real check: a counter without _total and a duplicate family fail it.
        bad = text + "# HELP resmon_held_bytes again\n# TYPE resmon_held_bytes counter\nresmon_held_bytes 1\n"
        r = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True, text=True)
        check(r.returncode != 0, "promtool accepted a broken exposition")

        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {os.path.abspath(alerts)}\n"
                    "scrape_configs:\n  - job_name: service\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{port}']\n")
        prom = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={work}/data",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "prom.err"), "w"))
        procs.append(prom)
        wait_for("Prometheus to scrape the service",
                 lambda: any(s["value"][1] == "1" for s in query(prom_port, 'up{job="service"}')), 30)

        # The leak grows for a few seconds: a positive deriv() and a suspect.
        growing = wait_for("a positive deriv() of the leaking site's bytes", lambda: [
            s for s in query(prom_port, 'deriv(resmon_site_held_bytes{function="cache_session"}[10s])')
            if float(s["value"][1]) > 0], 20)
        check(bool(growing), "no positive deriv() for cache_session")
        suspects = wait_for("the monitor's suspect in Prometheus",
                            lambda: query(prom_port, "resmon_leak_suspect_growth_bytes"), 20)
        named = {s["metric"].get("function") for s in suspects}
        check(named == {"cache_session"}, f"suspects in Prometheus: {named}, expected only cache_session")

        # Hold still, then compare the service's own figure with Prometheus's.
        open(pause, "w").close()
        time.sleep(1.0)
        direct = metric(get(f"http://127.0.0.1:{port}/metrics"), "resmon_held_bytes", 'kind="memory"')
        check(direct is not None and direct > 0, f"resmon_held_bytes memory from the service: {direct}")

        def scraped_equal():
            res = query(prom_port, 'resmon_held_bytes{kind="memory"}')
            return res and float(res[0]["value"][1]) == direct
        try:
            wait_for("Prometheus to hold the service's resmon_held_bytes", scraped_equal, 10)
        except SystemExit as e:
            check(False, str(e))
        print(f"service_test: resmon_held_bytes{{kind=\"memory\"}} = {direct:.0f} in the service and in Prometheus")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    out = svc.stdout.read()
    err = open(err_path).read()
    check(svc.returncode == 0, f"service exit status {svc.returncode}")
    # Its suspect events (stdout lists the suspects left at exit: none, once
    # the leak held still for a whole window).
    suspect_lines = [line for line in err.splitlines() if "resmon event=suspect" in line]
    check(any('function="cache_session"' in line for line in suspect_lines), f"no suspect event for cache_session")
    check("serve_request" not in out and not any("serve_request" in line for line in suspect_lines),
          "the churn site was named a suspect")
    check("resmon: limit exceeded: fd held 5, limit 4" in err and "in connection_burst" in err,
          "the fd budget's crossing was not received")
    check("resmon: limit kept again: fd held 4, limit 4" in err, "the fd budget's way back was not received")
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"service_test: {len(failures)} failed; service stderr:\n{err[-3000:]}")
        return 1
    print("service_test: promtool and Prometheus read the service's metrics; the leak is named, churn is not")
    return 0


if __name__ == "__main__":
    sys.exit(main())
