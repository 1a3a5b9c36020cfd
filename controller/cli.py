"""Command line: flags with K8S_HOSTS_CONTROLLER_* environment fallbacks, validation, main(argv).

Usage errors exit 2 with one line naming the problem and the fix, before anything is watched or written.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller import __version__
from controller.hostsfile import DEFAULT_MARKER, HostsFile, HostsFileError, WriteMode, validate_marker
from controller.logs import setup_logging
from controller.sources import SOURCES

PROG = "k8s-hosts-controller"
ENV_PREFIX = "K8S_HOSTS_CONTROLLER_"
log = logging.getLogger(PROG)


class UsageError(Exception):
    """str(e) is the whole message: what is wrong and how to fix it."""


@dataclass(frozen=True)
class Config:
    namespaces: tuple[str, ...]
    all_namespaces: bool
    hosts_file: Path
    marker: str
    cleanup: bool
    kubeconfig: str | None
    context: str | None
    verbose: bool
    metrics_bind_address: str
    cleanup_on_exit: bool
    sync_delay: float
    sync_max_delay: float
    resync_interval: float
    domain_filters: tuple[str, ...]
    ingress_classes: tuple[str, ...]
    write_mode: str
    resolve_timeout: float
    sources: tuple[str, ...]
    post_write_command: str | None
    post_write_timeout: float
    once: bool
    dry_run: bool
    log_format: str

    @property
    def scope(self) -> str:
        return "all namespaces" if self.all_namespaces else ",".join(self.namespaces)


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


def _env_bool(flag: str) -> bool:
    raw = os.environ.get(env_name(flag), "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise UsageError(f"{env_name(flag)}={raw!r} is not a boolean (use true or false)")


def _env(flag: str, default: str | None = None) -> str | None:
    return os.environ.get(env_name(flag), default)


def _env_seconds(flag: str, default: float) -> float:
    raw = os.environ.get(env_name(flag))
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"{env_name(flag)}={raw!r} is not a number of seconds (e.g. {default})") from None


def _env_choice(flag: str, default: str, choices: Sequence[str]) -> str:
    raw = os.environ.get(env_name(flag))
    if raw is None or not raw.strip():
        return default
    if raw not in choices:
        raise UsageError(f"{env_name(flag)}={raw!r} is not one of {', '.join(choices)}")
    return raw


def _split(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeatable flags that also take comma lists: --x a,b --x c -> (a, b, c)."""
    out: list[str] = []
    for value in values or ():
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(dict.fromkeys(out))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UsageError(f"{message} (see {PROG} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Keep Ingress (Gateway API route, Service) hostnames in a marked block of a hosts file. "
        f"Every flag falls back to the environment variable {ENV_PREFIX}<FLAG>, e.g. {ENV_PREFIX}NAMESPACES.",
        epilog=f"Subcommand: {PROG} wait --host NAME [--timeout 120s] waits until names are in the block.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    scope = p.add_argument_group("what to watch")
    scope.add_argument(
        "--namespaces",
        default=None,
        help="comma-separated namespaces to watch (or --all-namespaces)",
    )
    scope.add_argument("--all-namespaces", action="store_true", default=None, help="watch all namespaces")
    scope.add_argument(
        "--source",
        action="append",
        default=None,
        help=f"where names come from: {', '.join(SOURCES)} (repeatable, or a comma list; default: ingress)",
    )
    scope.add_argument(
        "--ingress-class",
        action="append",
        default=None,
        help="only Ingresses of this class (repeatable, or a comma list)",
    )
    scope.add_argument(
        "--domain-filter",
        action="append",
        default=None,
        help="only hostnames under this suffix (repeatable, or a comma list)",
    )
    scope.add_argument(
        "--kubeconfig",
        default=_env("--kubeconfig"),
        help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config, else in-cluster)",
    )
    scope.add_argument("--context", default=_env("--context"), help="kubeconfig context (default: current)")

    out = p.add_argument_group("the hosts file")
    out.add_argument("--hosts-file", default=_env("--hosts-file", "/etc/hosts"), help="file to manage")
    out.add_argument(
        "--marker",
        default=_env("--marker", DEFAULT_MARKER),
        help="block markers: #### BEGIN <marker> #### ... #### END <marker> ####",
    )
    out.add_argument(
        "--write-mode",
        choices=[m.value for m in WriteMode],
        default=_env_choice("--write-mode", WriteMode.AUTO.value, [m.value for m in WriteMode]),
        help="rename (atomic), inplace (bind-mounted files), auto: rename, in place when it fails",
    )
    out.add_argument(
        "--no-cleanup-on-exit",
        action="store_true",
        default=None,
        help="keep the block when stopped by SIGTERM/SIGINT",
    )
    out.add_argument(
        "--sync-delay",
        type=float,
        default=_env_seconds("--sync-delay", 0.1),
        help="seconds to wait for more changes before writing",
    )
    out.add_argument(
        "--sync-max-delay",
        type=float,
        default=_env_seconds("--sync-max-delay", 1.0),
        help="longest a stream of changes may postpone a write (seconds)",
    )
    out.add_argument(
        "--resync-interval",
        type=float,
        default=_env_seconds("--resync-interval", 60),
        help="re-read the file and re-resolve LB hostnames this often (seconds, 0 disables)",
    )
    out.add_argument(
        "--resolve-timeout",
        type=float,
        default=_env_seconds("--resolve-timeout", 2.0),
        help="seconds to resolve a load-balancer hostname (e.g. localhost, cloud LB names)",
    )

    out.add_argument(
        "--post-write-command",
        default=_env("--post-write-command"),
        help="shell command run after each write, e.g. a DNS cache flush on macOS",
    )
    out.add_argument(
        "--post-write-timeout",
        type=float,
        default=_env_seconds("--post-write-timeout", 10),
        help="seconds before the post-write command is killed",
    )

    mode = p.add_argument_group("modes")
    mode.add_argument("--cleanup", action="store_true", default=None, help="remove the block and exit")
    mode.add_argument(
        "--once",
        action="store_true",
        default=None,
        help="sync once after the first complete listing and exit (block kept)",
    )
    mode.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="print the block and a diff of the file, change nothing",
    )

    ops = p.add_argument_group("operations")
    ops.add_argument(
        "--metrics-bind-address",
        default=_env("--metrics-bind-address", ":8080"),
        help="serve /metrics, /healthz, /readyz here; 0 disables",
    )
    ops.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=_env_choice("--log-format", "text", ["text", "json"]),
    )
    ops.add_argument("--verbose", action="store_true", default=None, help="debug logging")
    ops.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return p


def parse_args(argv: Sequence[str]) -> Config:
    ns = build_parser().parse_args(argv)

    def flag(name: str) -> bool:
        value = getattr(ns, name.lstrip("-").replace("-", "_"))
        return bool(value) if value is not None else _env_bool(name)

    cleanup = flag("--cleanup")
    # The command line wins as a whole: --namespaces on it overrides an environment --all-namespaces.
    raw_namespaces = ns.namespaces
    all_namespaces = _env_bool("--all-namespaces")  # validated even when the command line overrides it
    if raw_namespaces is None and not ns.all_namespaces:
        raw_namespaces = _env("--namespaces")
    else:
        all_namespaces = bool(ns.all_namespaces)
    namespaces = _split([raw_namespaces] if raw_namespaces is not None else None)
    if not cleanup:
        if all_namespaces and namespaces:
            raise UsageError("--namespaces and --all-namespaces are mutually exclusive (use one of them)")
        if raw_namespaces is not None and not namespaces and not all_namespaces:
            raise UsageError(
                "--namespaces is empty (give a comma-separated list, e.g. --namespaces tyk,tyk-dp-1)"
            )
        if not all_namespaces and not namespaces:
            raise UsageError(
                "one of --namespaces or --all-namespaces is required (e.g. --namespaces tyk,tyk-dp-1)"
            )
    try:
        marker = validate_marker(ns.marker)
    except HostsFileError as err:
        raise UsageError(f"--marker: {err}") from None
    for name, value in (
        ("--sync-delay", ns.sync_delay),
        ("--sync-max-delay", ns.sync_max_delay),
        ("--resync-interval", ns.resync_interval),
    ):
        if value < 0:
            raise UsageError(f"{name} must be >= 0 seconds, got {value}")
    if ns.resolve_timeout <= 0:
        raise UsageError(f"--resolve-timeout must be > 0 seconds, got {ns.resolve_timeout}")
    sources = _split(ns.source or ([_env("--source")] if _env("--source") else None)) or ("ingress",)
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise UsageError(f"--source {','.join(unknown)} is not known (choose from {', '.join(SOURCES)})")
    if ns.post_write_timeout <= 0:
        raise UsageError(f"--post-write-timeout must be > 0 seconds, got {ns.post_write_timeout}")
    once, dry_run = flag("--once"), flag("--dry-run")
    if sum((cleanup, once, dry_run)) > 1:
        raise UsageError("--cleanup, --once and --dry-run are mutually exclusive (pick one)")
    from controller.metrics import parse_bind_address

    try:
        parse_bind_address(ns.metrics_bind_address)
    except ValueError as err:
        raise UsageError(f"--metrics-bind-address: {err}") from None
    return Config(
        namespaces=namespaces,
        all_namespaces=all_namespaces,
        hosts_file=Path(ns.hosts_file),
        marker=marker,
        cleanup=cleanup,
        kubeconfig=ns.kubeconfig,
        context=ns.context,
        verbose=flag("--verbose"),
        metrics_bind_address=ns.metrics_bind_address,
        cleanup_on_exit=not flag("--no-cleanup-on-exit"),
        sync_delay=ns.sync_delay,
        sync_max_delay=max(ns.sync_max_delay, ns.sync_delay),
        resync_interval=ns.resync_interval,
        domain_filters=_split(
            ns.domain_filter or ([_env("--domain-filter")] if _env("--domain-filter") else None)
        ),
        ingress_classes=_split(
            ns.ingress_class or ([_env("--ingress-class")] if _env("--ingress-class") else None)
        ),
        write_mode=ns.write_mode,
        resolve_timeout=ns.resolve_timeout,
        sources=sources,
        post_write_command=ns.post_write_command or None,
        post_write_timeout=ns.post_write_timeout,
        once=once,
        dry_run=dry_run,
        log_format=ns.log_format,
    )


def cleanup(config: Config) -> int:
    result = HostsFile(config.hosts_file, config.marker, config.write_mode).cleanup()
    if result.changed:
        log.info("removed the %s block from %s", config.marker, config.hosts_file)
    else:
        log.info("no %s block in %s: nothing to clean up", config.marker, config.hosts_file)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["wait"]:
        from controller.wait import main as wait_main

        return wait_main(argv[1:])
    try:
        config = parse_args(argv)
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    setup_logging(config.log_format, config.verbose)
    try:
        if config.cleanup:
            return cleanup(config)
        if not config.dry_run:
            HostsFile(config.hosts_file, config.marker, config.write_mode).check_writable()
    except HostsFileError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    from controller import kube  # the client library is not needed for --cleanup (a preStop hook)

    try:
        configuration = kube.load(config.kubeconfig, config.context)
    except kube.KubeconfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    from controller.runner import run_controller

    return run_controller(config, configuration)


def run() -> None:
    sys.exit(main())
