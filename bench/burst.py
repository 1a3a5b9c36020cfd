"""Burst: create N Ingresses with addresses at once (thread pool; status via the status subresource) ->
time from the last API write until the file holds all of them, file writes, bytes, CPU seconds, peak RSS."""

from __future__ import annotations

import argparse
import time

from bench import output, targets, under_test, workload
from testkit.api import Api
from testkit.filewatch import FileWatcher


def run(args) -> dict:
    impls = targets.implementations(args)
    results = under_test.new_results(sizes=args.sizes)
    with workload.control_plane(args.keep) as (cp, workdir):
        api = Api(cp)
        for impl in impls:
            results["impls"][impl.label] = rows = []
            for n in args.sizes:
                print(f"[burst] {impl.label}: N={n}", flush=True)
                rows.append(measure(cp, api, workdir, impl, n, args))
                last = rows[-1]
                print(f"  {last['complete_after_last_write_s']:.3f} s, {last['writes']} writes", flush=True)
    report(results)
    return results


def measure(cp, api: Api, workdir, impl: targets.Impl, n: int, args) -> dict:
    ns = f"burst-{impl.label}-{n}"
    api.namespace(ns)
    hosts = workload.prepare_hosts(workdir, ns)
    watcher = FileWatcher(hosts)
    ctl = under_test.Controller(
        impl, kubeconfig=cp.kubeconfig, hosts_file=hosts, namespaces=ns, log=workdir / f"{ns}.log"
    ).start()
    try:
        ctl.wait_ready(60, http_optional=True)
        time.sleep(0.5)
        watcher.reset_counts()
        written0 = ctl.written()
        cpu0 = ctl.cpu_seconds()
        first = time.monotonic()
        created = workload.create_many(api, ns, n, threads=args.threads)
        expected = created["expected"]
        done = watcher.wait_for(lambda c: expected <= workload.pairs(c), args.timeout)
        if done is None:
            missing = len(expected - workload.pairs(watcher.content))
            raise RuntimeError(f"{impl.label}: {missing} of {n} entries missing after {args.timeout}s")
        time.sleep(args.settle)  # writes that come after "complete" count too
        cpu = ctl.cpu_seconds() - cpu0
        ctl.rss_kb()
        written = ctl.written()
        writes, nbytes, content = watcher.writes, watcher.bytes, watcher.content  # before SIGTERM's cleanup
    finally:
        ctl.stop()
        watcher.close()
    return {
        "n": n,
        "api_writes_s": created["last_write"] - first,
        "complete_after_last_write_s": max(0.0, done - created["last_write"]),
        "complete_after_first_write_s": done - first,
        "writes": writes,
        "writes_metric": None if written is None or written0 is None else written - written0,
        "bytes_written": nbytes,
        "file_bytes": len(content),
        "cpu_s": cpu,
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
                    r["api_writes_s"],
                    r["complete_after_last_write_s"],
                    r["writes"],
                    r["writes_metric"],
                    r["bytes_written"],
                    r["cpu_s"],
                    r["peak_rss_mb"],
                    r["peak_rss_mb"] - results["floor_mb"],
                ]
            )
    under_test.report(
        "burst",
        results,
        [
            "impl",
            "N",
            "API writes s",
            "complete after last write s",
            "file writes",
            "writes (metric)",
            "bytes written",
            "CPU s",
            "peak RSS MB",
            "above floor MB",
        ],
        rows,
    )
    plot(results)


def plot(results: dict) -> None:
    output.bar_panels(
        results,
        "burst",
        [
            (
                "complete_after_last_write_s",
                "s from the last API write to the complete file",
                "Burst: completion",
            ),
            ("writes", "file writes during the burst", "Burst: file writes"),
        ],
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000, 5000])
    p.add_argument("--threads", type=int, default=16, help="API writer threads")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for the complete file")
    p.add_argument("--settle", type=float, default=2.0, help="seconds to keep counting writes after complete")
