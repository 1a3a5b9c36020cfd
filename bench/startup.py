"""Start-up: N Ingresses exist; start the controller -> time to the complete block, CPU, peak RSS."""

from __future__ import annotations

import argparse
import time

from bench import output, targets, under_test, workload
from testkit.api import Api
from testkit.filewatch import FileWatcher


def run(args) -> dict:
    impls = targets.implementations(args)
    results = under_test.new_results(sizes=args.sizes)
    results["impls"] = {impl.label: [] for impl in impls}
    with workload.control_plane(args.keep) as (cp, workdir):
        api = Api(cp)
        for n in args.sizes:
            ns = f"startup-{n}"
            api.namespace(ns)
            print(f"[startup] creating {n} Ingresses in {ns}", flush=True)
            expected = workload.create_many(api, ns, n, threads=args.threads)["expected"]
            for impl in impls:
                print(f"[startup] {impl.label}: N={n}", flush=True)
                row = measure(cp, workdir, impl, ns, n, expected, args)
                results["impls"][impl.label].append(row)
                print(f"  {row['startup_s']:.3f} s, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    report(results)
    return results


def measure(cp, workdir, impl: targets.Impl, ns: str, n: int, expected: set, args) -> dict:
    hosts = workload.prepare_hosts(workdir, f"{ns}-{impl.label}")
    watcher = FileWatcher(hosts)
    ctl = under_test.Controller(
        impl, kubeconfig=cp.kubeconfig, hosts_file=hosts, namespaces=ns, log=workdir / f"{ns}{impl.label}.log"
    )
    try:
        ctl.start()
        done = watcher.wait_for(lambda c: expected <= workload.pairs(c), args.timeout)
        if done is None:
            raise RuntimeError(f"{impl.label}: block incomplete after {args.timeout}s:\n{ctl.tail()}")
        startup = done - ctl.started
        cpu_at_complete = ctl.cpu_seconds()
        time.sleep(args.settle)
        ctl.rss_kb()
        rss_after, _ = ctl.rss_kb()
        cpu = ctl.cpu_seconds()
        writes = watcher.writes  # before SIGTERM's cleanup
    finally:
        ctl.stop()
        watcher.close()
    return {
        "n": n,
        "startup_s": startup,
        "cpu_s_to_complete": cpu_at_complete,
        "cpu_s": cpu,
        "writes": writes,
        "rss_mb_after": rss_after / 1024,
        "peak_rss_mb": ctl.peak_rss_kb / 1024,
    }


def report(results: dict) -> None:
    rows = []
    for label, runs in results["impls"].items():
        for r in runs:
            rows.append(
                [
                    label,
                    r["n"],
                    r["startup_s"],
                    r["cpu_s_to_complete"],
                    r["writes"],
                    r["rss_mb_after"],
                    r["peak_rss_mb"],
                    r["peak_rss_mb"] - results["floor_mb"],
                ]
            )
    under_test.report(
        "startup",
        results,
        [
            "impl",
            "N",
            "start to complete block s",
            "CPU s",
            "file writes",
            "RSS MB after",
            "peak RSS MB",
            "above floor MB",
        ],
        rows,
    )
    plot(results)


def plot(results: dict) -> None:
    output.bar_panels(
        results,
        "startup",
        [
            ("startup_s", "s from process start to the complete block", "Start-up with N existing Ingresses"),
            ("peak_rss_mb", "peak RSS (VmHWM) MB", "Peak memory"),
        ],
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000])
    p.add_argument("--threads", type=int, default=16, help="API writer threads")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for the complete block")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to run after complete (RSS, writes)")
