"""Single-change latency: change one Ingress's LB address (status subresource) -> the line is in the file.

The floor: a bare watch client (raw HTTP watch in this process) records when the API server delivers the
same MODIFIED event. Both are measured from the moment just before the PATCH is sent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time

from bench import output, targets, under_test, workload
from testkit.api import Api, ip_for
from testkit.filewatch import FileWatcher

NS = "bench-latency"
NAME = "lat"
HOST = "lat.bench-latency.bench.test"


class BareWatch:
    """GET ...?watch=1 on one Ingress; records the first time each LB IP is delivered."""

    def __init__(self, cp, ns: str, name: str, resource_version: str) -> None:
        self.cp, self.ns, self.name = cp, ns, name
        self.rv = resource_version
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="bare watch")
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            conn = http.client.HTTPSConnection("127.0.0.1", self.cp.port, context=self.cp.ssl_context())
            path = (
                f"/apis/networking.k8s.io/v1/namespaces/{self.ns}/ingresses?watch=1"
                f"&fieldSelector=metadata.name%3D{self.name}&resourceVersion={self.rv}"
                "&allowWatchBookmarks=false&timeoutSeconds=600"
            )
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {self.cp.admin_token}"})
                resp = conn.getresponse()
                while not self.stop.is_set():
                    line = resp.readline()
                    if not line:
                        break
                    now = time.monotonic()
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    self.rv = (obj.get("metadata") or {}).get("resourceVersion", self.rv)
                    for lb in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
                        ip = lb.get("ip")
                        if ip:
                            with self.cond:
                                self.seen.setdefault(ip, now)
                                self.cond.notify_all()
            except (OSError, http.client.HTTPException, ValueError):
                time.sleep(0.1)
            finally:
                conn.close()

    def wait(self, ip: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while ip not in self.seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)
            return self.seen[ip]


def run(args) -> dict:
    impls = targets.implementations(args)
    results = under_test.new_results(changes=args.changes)
    with workload.control_plane(args.keep) as (cp, workdir):
        api = Api(cp)
        api.namespace(NS)
        api.create_ingress(NS, NAME, HOST)
        for impl in impls:
            api.set_ip(NS, NAME, "10.99.0.1")  # each implementation starts from the same first line
            print(f"[latency] {impl.label}: {args.changes} changes", flush=True)
            results["impls"][impl.label] = measure(cp, api, workdir, impl, args)
    report(results)
    return results


def measure(cp, api: Api, workdir, impl: targets.Impl, args) -> dict:
    hosts = workload.prepare_hosts(workdir, f"latency-{impl.label}")
    watcher = FileWatcher(hosts)
    ctl = under_test.Controller(
        impl, kubeconfig=cp.kubeconfig, hosts_file=hosts, namespaces=NS, log=workdir / f"{impl.label}.log"
    ).start()
    floor, ours, missed = [], [], 0
    try:
        if watcher.wait_for(lambda c: ("10.99.0.1", HOST) in workload.pairs(c), 60) is None:
            raise RuntimeError(f"{impl.label} never wrote the first line:\n{ctl.tail()}")
        rv = json.loads(api.call("GET", f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/{NAME}")[1])[
            "metadata"
        ]["resourceVersion"]
        bare = BareWatch(cp, NS, NAME, rv)
        time.sleep(0.5)
        rng = random.Random(7)
        salt = rng.randrange(1, 200)
        watcher.reset_counts()
        cpu0 = ctl.cpu_seconds()
        for i in range(args.changes):
            ip = ip_for(i + 1, salt)
            t0 = time.monotonic()
            api.set_ip(NS, NAME, ip)
            t_api = bare.wait(ip, 10)
            t_file = watcher.wait_for(lambda c, ip=ip: (ip, HOST) in workload.pairs(c), 10)
            if t_api is None or t_file is None:
                missed += 1
                continue
            floor.append(t_api - t0)
            ours.append(t_file - t0)
            time.sleep(rng.uniform(0.02, 0.08))  # not in lockstep with any timer
        bare.stop.set()
        cpu = ctl.cpu_seconds() - cpu0
        ctl.rss_kb()
        writes = watcher.writes
    finally:
        ctl.stop()
        watcher.close()
    q = {p: output.percentile(ours, p) for p in (0.5, 0.95, 0.99)}
    f = {p: output.percentile(floor, p) for p in (0.5, 0.95, 0.99)}
    return {
        "samples": len(ours),
        "missed": missed,
        "file": ours,
        "floor": floor,
        "p50": q[0.5],
        "p95": q[0.95],
        "p99": q[0.99],
        "floor_p50": f[0.5],
        "floor_p95": f[0.95],
        "floor_p99": f[0.99],
        "max": max(ours, default=float("nan")),
        "writes": writes,
        "cpu_s": cpu,
        "peak_rss_mb": ctl.peak_rss_kb / 1024,
    }


def report(results: dict) -> None:
    rows = []
    for label, r in results["impls"].items():
        rows.append(
            [
                label,
                f"{r['samples']} ({r['missed']} missed)",
                r["floor_p50"] * 1000,
                r["floor_p95"] * 1000,
                r["floor_p99"] * 1000,
                r["p50"] * 1000,
                r["p95"] * 1000,
                r["p99"] * 1000,
                (r["p99"] - r["floor_p99"]) * 1000,
                r["writes"],
                r["peak_rss_mb"],
            ]
        )
    under_test.report(
        "latency",
        results,
        [
            "impl",
            "changes",
            "floor p50 ms",
            "floor p95 ms",
            "floor p99 ms",
            "file p50 ms",
            "file p95 ms",
            "file p99 ms",
            "p99 - floor p99 ms",
            "file writes",
            "peak RSS MB",
        ],
        rows,
    )
    plot(results)


def plot(results: dict) -> None:
    plt = output.plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, r in results["impls"].items():
        for key, style in (("floor", "--"), ("file", "-")):
            data = sorted(v * 1000 for v in r[key])
            if not data:
                continue
            ys = [(i + 1) / len(data) for i in range(len(data))]
            name = "API watch delivery (floor)" if key == "floor" else "line in hosts file"
            ax.plot(data, ys, style, label=f"{label}: {name}")
    ax.set_xscale("log")
    ax.set_xlabel("ms after the status PATCH was sent")
    ax.set_ylabel("fraction of changes")
    ax.set_title(f"Single-change latency ({results['changes']} LB address changes)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    output.save_plot(fig, "latency")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--changes", type=int, default=200, help="number of LB address changes (>= 200 for p99)")
