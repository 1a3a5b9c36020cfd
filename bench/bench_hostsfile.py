"""Benchmark of the hosts file engine on a large, ad-block-style hosts file.

Prints, for 10 / 1,000 / 10,000 entries synced into a generated ~1 MB, ~35,000-line hosts file:
render+splice (in memory), a full sync that writes (lock, read, splice, write, fsync, verify) in rename and
in-place mode, a no-op sync, and parse() (which the writer uses for names defined outside the block).
Median of several runs. Draws bench/results/hostsfile.png.

    python -m bench.bench_hostsfile [--runs 15] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from controller.engine.block import DEFAULT_MARKER, parse, render_block, splice
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile

SIZES = (10, 1_000, 10_000)
TARGETS_MS = {"sync 1,000 (rename)": 20.0, "no-op sync": 5.0}
RESULTS = Path(__file__).resolve().parent / "results"


def adblock_hosts(target_bytes: int = 1_000_000) -> bytes:
    """A hosts file like the big ad-blocking lists: a header, then '0.0.0.0 some.tracker.domain' lines."""
    lines = [
        b"# Title: generated ad-block style hosts file for benchmarks",
        b"127.0.0.1 localhost",
        b"::1 localhost ip6-localhost ip6-loopback",
        b"",
    ]
    size = sum(len(line) + 1 for line in lines)
    i = 0
    while size < target_bytes:
        line = b"0.0.0.0 ads%d.track%d.net" % (i, i % 97)
        if i % 500 == 0:
            line = b"# section %d" % (i // 500)
        lines.append(line)
        size += len(line) + 1
        i += 1
    return b"\n".join(lines) + b"\n"


def entries(count: int, salt: int = 0) -> list[Entry]:
    return [
        Entry(f"svc-{i}-{salt}.apps.local", f"172.18.{i // 250 % 256}.{i % 250 + 1}", f"ns-{i % 7}/ing-{i}")
        for i in range(count)
    ]


def median_ms(func: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def measure(base: bytes, directory: Path, runs: int) -> dict[str, dict[int, float]]:
    table: dict[str, dict[int, float]] = {}
    for count in SIZES:
        sets = [entries(count, 0), entries(count, 1)]  # alternate, so that every sync really writes
        content = splice(base, sets[0], DEFAULT_MARKER)
        table.setdefault("render+splice", {})[count] = median_ms(
            lambda s=sets, c=content: splice(c, s[1], DEFAULT_MARKER), runs
        )
        table.setdefault("render only", {})[count] = median_ms(
            lambda s=sets: render_block(s[1], DEFAULT_MARKER), runs
        )
        for mode in ("rename", "inplace"):
            path = directory / f"hosts-{mode}-{count}"
            path.write_bytes(base)
            hosts = HostsFile(path, mode=mode)
            flip = iter(range(10**9))
            table.setdefault(f"sync (write, {mode})", {})[count] = median_ms(
                lambda h=hosts, f=flip, s=sets: h.sync(s[next(f) % 2]), runs
            )
            hosts.sync(sets[0])
            table.setdefault(f"no-op sync ({mode})", {})[count] = median_ms(
                lambda h=hosts, s=sets: h.sync(s[0]), runs
            )
        table.setdefault("parse (outside names)", {})[count] = median_ms(
            lambda c=content: parse(c, DEFAULT_MARKER), runs
        )
    return table


def print_table(table: dict[str, dict[int, float]], base: bytes) -> None:
    lines = base.count(b"\n")
    print(f"hosts file: {len(base):,} bytes, {lines:,} lines; median ms")
    print(f"{'operation':<26}" + "".join(f"{n:>12,}" for n in SIZES))
    for name, row in table.items():
        print(f"{name:<26}" + "".join(f"{row[n]:>12.2f}" for n in SIZES))
    checks = {
        "sync 1,000 (rename)": table["sync (write, rename)"][1_000],
        "no-op sync": max(table["no-op sync (rename)"][1_000], table["no-op sync (inplace)"][1_000]),
    }
    for name, value in checks.items():
        verdict = "ok" if value < TARGETS_MS[name] else "MISSED"
        print(f"target {name}: {value:.2f} ms (< {TARGETS_MS[name]:.0f} ms) {verdict}")


def plot(table: dict[str, dict[int, float]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, row in table.items():
        ax.plot(SIZES, [row[n] for n in SIZES], marker="o", label=name)
    ax.axhline(20, color="grey", linestyle="--", linewidth=0.8, label="sync target (20 ms)")
    ax.axhline(5, color="grey", linestyle=":", linewidth=0.8, label="no-op target (5 ms)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("entries in the block")
    ax.set_ylabel("median time (ms)")
    ax.set_title("hosts file engine, ~1 MB / ~35,000-line hosts file")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"plot: {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per figure (median is reported)")
    parser.add_argument("--dir", default=None, help="directory for the test files (default: a temp dir)")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    base = adblock_hosts()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        table = measure(base, Path(tmp), args.runs)
    print_table(table, base)
    if not args.no_plot:
        plot(table, RESULTS / "hostsfile.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
