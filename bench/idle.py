"""Idle: after the first complete sync, no changes for --idle-seconds -> CPU seconds and file writes."""

from __future__ import annotations

import argparse
import time

from bench import output, targets, under_test, workload
from testkit.api import Api
from testkit.filewatch import FileWatcher

NS = "bench-idle"


def run(args) -> dict:
    impls = targets.implementations(args)
    results = under_test.new_results(seconds=args.idle_seconds, objects=args.objects)
    with workload.control_plane(args.keep) as (cp, workdir):
        api = Api(cp)
        api.namespace(NS)
        expected = workload.create_many(api, NS, args.objects)["expected"]
        for impl in impls:
            print(
                f"[idle] {impl.label}: {args.idle_seconds:.0f} s idle, {args.objects} Ingresses", flush=True
            )
            results["impls"][impl.label] = measure(cp, workdir, impl, expected, args)
    report(results)
    return results


def measure(cp, workdir, impl: targets.Impl, expected: set, args) -> dict:
    hosts = workload.prepare_hosts(workdir, f"idle-{impl.label}")
    watcher = FileWatcher(hosts)
    ctl = under_test.Controller(
        impl, kubeconfig=cp.kubeconfig, hosts_file=hosts, namespaces=NS, log=workdir / "idle.log"
    ).start()
    samples = []
    try:
        if watcher.wait_for(lambda c: expected <= workload.pairs(c), 120) is None:
            raise RuntimeError(f"{impl.label}: block incomplete:\n{ctl.tail()}")
        time.sleep(2)  # let the start-up settle
        watcher.reset_counts()
        cpu0 = ctl.cpu_seconds()
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < args.idle_seconds:
            samples.append((elapsed, ctl.cpu_seconds() - cpu0))
            time.sleep(min(1.0, args.idle_seconds - elapsed))
        cpu = ctl.cpu_seconds() - cpu0
        samples.append((time.monotonic() - t0, cpu))
        rss, _ = ctl.rss_kb()
        writes = watcher.writes  # before SIGTERM's cleanup
    finally:
        ctl.stop()
        watcher.close()
    return {
        "cpu_s": cpu,
        "cpu_percent": 100 * cpu / args.idle_seconds,
        "writes": writes,
        "rss_mb": rss / 1024,
        "samples": samples,
    }


def report(results: dict) -> None:
    rows = [
        [
            label,
            results["seconds"],
            r["cpu_s"],
            r["cpu_percent"],
            r["writes"],
            r["rss_mb"],
            r["rss_mb"] - results["floor_mb"],
        ]
        for label, r in results["impls"].items()
    ]
    headers = ["impl", "idle s", "CPU s", "CPU %", "file writes", "RSS MB", "above floor MB"]
    under_test.report("idle", results, headers, rows)
    plt = output.plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, r in results["impls"].items():
        ax.plot([s for s, _ in r["samples"]], [c for _, c in r["samples"]], label=label)
    ax.set_xlabel("s idle")
    ax.set_ylabel("cumulative CPU s")
    ax.set_title(f"Idle ({results['objects']} Ingresses, no changes)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    output.save_plot(fig, "idle")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--objects", type=int, default=100, help="Ingresses that exist during the idle period")
