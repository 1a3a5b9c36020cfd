"""python -m bench [latency|burst|startup|idle|all] [options]"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from bench import burst, idle, latency, output, startup, targets
from testkit.process import stop_all

BENCHES = {"latency": latency, "burst": burst, "startup": startup, "idle": idle}


def _common_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to measure")
    g.add_argument(
        "--controller",
        metavar="TEMPLATE",
        help="command template of the controller under test, with {kubeconfig} {hosts_file} {namespaces} "
        f"{{metrics_port}} (default: {targets.OURS_TEMPLATE})",
    )
    g.add_argument(
        "--extra",
        action="append",
        metavar="TEMPLATE",
        help="another implementation to run through the same workload (repeatable)",
    )
    g.add_argument(
        "--reference",
        action="store_true",
        help=f"also go install {targets.REFERENCE_MODULE}@latest into {targets.REFERENCE_BIN_DIR} and run it",
    )
    g.add_argument(
        "--extra-name",
        action="append",
        metavar="NAME",
        help="label of the --extra of the same position in plots and tables (default: extra1, extra2, ...)",
    )
    g.add_argument("--no-ours", action="store_true", help="do not run our controller")
    g.add_argument(
        "--results",
        metavar="DIR",
        type=Path,
        help="where JSON, plots and figures.md go (default: bench/results; make bench: docs/benchmarks)",
    )
    g.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, hosts files)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks against a real kube-apiserver + etcd. Without a subcommand: all of them with "
        "modest defaults. Set BENCH_PROFILE=DIR to run our controller under cProfile (profiles in DIR).",
    )
    sub = p.add_subparsers(dest="bench")
    for name, module in BENCHES.items():
        sp = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sp)
        _common_arguments(sp)
    sp = sub.add_parser("all", help="every benchmark with modest defaults")
    _common_arguments(sp)
    sp.add_argument("--idle-seconds", type=float, default=60.0)
    return p


def _defaults(name: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    BENCHES[name].add_arguments(p)
    return p.parse_args([])


def _profile_hook() -> None:
    directory = os.environ.get("BENCH_PROFILE")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    stamp = time.strftime("%H%M%S")
    targets.OURS_TEMPLATE = (
        f"{shlex.quote(sys.executable)} -m cProfile "
        f"-o {shlex.quote(directory)}/ours-{stamp}-{{metrics_port}}.prof "
        "-m controller --namespaces {namespaces} --hosts-file {hosts_file} --kubeconfig {kubeconfig} "
        "--metrics-bind-address 127.0.0.1:{metrics_port}"
    )
    print(f"[profile] our controller runs under cProfile; profiles in {directory}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["all", *argv]
    args = build_parser().parse_args(argv)

    def on_term(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    _profile_hook()
    if args.results:
        output.set_results(args.results)
    machine = "machine: " + ", ".join(f"{k}={v}" for k, v in output.machine().items())
    print(machine, flush=True)
    try:
        if args.bench == "all":
            for name in BENCHES:
                sub = _defaults(name)
                for key in ("controller", "extra", "extra_name", "reference", "no_ours", "keep"):
                    setattr(sub, key, getattr(args, key))
                if name == "idle":
                    sub.idle_seconds = args.idle_seconds
                print(f"\n=== {name} ===", flush=True)
                BENCHES[name].run(sub)
        else:
            BENCHES[args.bench].run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything that was started", file=sys.stderr)
        return 130
    finally:
        stop_all()
    if targets.NOTES:
        for key, text in targets.NOTES.items():
            output.emit(f"note [{key}]: {text}")
    print(f"figures: {output.save_figures(f'`python -m bench {shlex.join(argv)}`; {machine}')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
