"""Start-up: N Ingresses exist; start the controller -> time to the complete block, CPU, peak RSS."""

from __future__ import annotations

import argparse
import time

from bench import common


def run(args) -> dict:
    impls = common.implementations(args)
    results: dict = {"sizes": args.sizes, "impls": {impl.label: [] for impl in impls}}
    with common.control_plane(args.keep) as (cp, workdir):
        api = common.Api(cp)
        for n in args.sizes:
            ns = f"startup-{n}"
            api.namespace(ns)
            print(f"[startup] creating {n} Ingresses in {ns}", flush=True)
            expected = common.create_many(api, ns, n, threads=args.threads)["expected"]
            for impl in impls:
                print(f"[startup] {impl.label}: N={n}", flush=True)
                row = measure(cp, workdir, impl, ns, n, expected, args)
                results["impls"][impl.label].append(row)
                print(f"  {row['startup_s']:.3f} s, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    report(results)
    return results


def measure(cp, workdir, impl: common.Impl, ns: str, n: int, expected: set, args) -> dict:
    hosts = common.prepare_hosts(workdir, f"{ns}-{impl.label}")
    watcher = common.FileWatcher(hosts)
    ctl = common.Controller(
        impl, kubeconfig=cp.kubeconfig, hosts_file=hosts, namespaces=ns, log=workdir / f"{ns}{impl.label}.log"
    )
    try:
        ctl.start()
        done = watcher.wait_for(lambda c: expected <= common.pairs(c), args.timeout)
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
                ]
            )
    print(
        common.table(
            ["impl", "N", "start to complete block s", "CPU s", "file writes", "RSS MB after", "peak RSS MB"],
            rows,
        )
    )
    common.save_json("startup", results)
    plot(results)


def plot(results: dict) -> None:
    plt = common.plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    labels = list(results["impls"])
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        runs = results["impls"][label]
        xs = [j + i * width for j in range(len(runs))]
        ax1.bar(xs, [r["startup_s"] for r in runs], width, label=label)
        ax2.bar(xs, [r["peak_rss_mb"] for r in runs], width, label=label)
        ticks = [j + (len(labels) - 1) * width / 2 for j in range(len(runs))]
        for ax in (ax1, ax2):
            ax.set_xticks(ticks, [f"N={r['n']}" for r in runs])
    ax1.set_ylabel("s from process start to the complete block")
    ax2.set_ylabel("peak RSS (VmHWM) MB")
    ax1.set_title("Start-up with N existing Ingresses")
    ax2.set_title("Peak memory")
    for ax in (ax1, ax2):
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend()
    out = common.RESULTS / "startup.png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000])
    p.add_argument("--threads", type=int, default=16, help="API writer threads")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for the complete block")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to run after complete (RSS, writes)")
