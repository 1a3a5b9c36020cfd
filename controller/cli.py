"""Command line: parse the flags (built from controller/config.py's settings) and dispatch.

`k8s-hosts-controller wait ...` goes to controller/wait.py, `status ...` to controller/status.py,
`--cleanup` removes the block here (with --owner-daemonset only when that DaemonSet is going:
controller/cluster/owner.py), anything else starts the controller (controller/runner.py). Usage errors exit 2
with one line naming the problem and the fix, before anything is watched or written; a failure that the same
command survives later (a full or read-only file system, the file's lock held by another process) exits 1
(README, exit codes).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence

from controller import __version__
from controller.config import (
    ENV_PREFIX,
    GROUPS,
    PROG,
    Config,
    UsageError,
    env_label,
    resolve,
    settings,
)
from controller.durations import EXAMPLES, parse_duration
from controller.engine.errors import HostsFileError, LockTimeout
from controller.engine.record import ClusterRecord, make_record
from controller.serve.logs import setup_logging
from controller.sync import dryrun

log = logging.getLogger(__name__)

# The file system failing, not the command line naming the wrong thing: the same command works once space is
# freed or the file system is writable again. Everything else the hosts file refuses (a directory, a FIFO, a
# missing directory, no permission, a planted symlink) is for the command line to fix: exit 2.
RUNTIME_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.ESTALE, errno.ENOMEM}
    | {errno.ENFILE, errno.EMFILE, errno.ETIMEDOUT}
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UsageError(f"{message} (see {PROG} --help)")


def duration(text: str) -> float:
    """A duration flag's value: seconds, or 500ms, 90s, 2m, 1h30m (controller/durations.py)."""
    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    """One argument per setting (dest: its path in Config). Every default is None: "not given", so the
    environment can fill it; --help shows the group field's default."""
    p = _Parser(
        prog=PROG,
        description="Keep Ingress (Gateway API route, Service) hostnames in a marked block of a hosts file. "
        f"Every flag falls back to the environment variable {ENV_PREFIX}<FLAG>, e.g. {ENV_PREFIX}NAMESPACES. "
        f"A DURATION is seconds, or e.g. {EXAMPLES}.",
        epilog=f"Subcommands: {PROG} wait --host NAME [--timeout 120s] waits until names are in the block; "
        f"{PROG} status [--json] tells whether there is a block, which cluster wrote it and whether that "
        "cluster is gone (stale).",
    )
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    for field, spec in settings():
        how: dict = {"dest": spec.path, "default": None, "help": spec.help_text(field.default)}
        if spec.kind == "switch":
            how["action"] = "store_true"
        elif spec.kind == "list":
            how["action"] = "append"
        elif spec.kind == "seconds":
            how["type"], how["metavar"] = duration, "DURATION"
        elif spec.kind == "choice":
            how["choices"] = spec.choices
        if spec.metavar:
            how["metavar"] = spec.metavar
        groups[spec.group].add_argument(spec.flag, **how)
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return p


def parse_args(argv: Sequence[str]) -> Config:
    return resolve(vars(build_parser().parse_args(argv)), os.environ)


def context_label(argv: Sequence[str]) -> str:
    """Where --context came from, for the messages: the flag, or its environment variable."""
    spec = next(spec for _, spec in settings() if spec.path == "cluster.context")
    return spec.flag if vars(build_parser().parse_args(argv))[spec.path] is not None else env_label(spec)


def cleanup(config: Config) -> int:
    cluster, file = config.cluster, config.file
    # A preStop hook: only when the release is going (controller/cluster/owner.py).
    if cluster.owner_daemonset:
        from controller.cluster.owner import at_shutdown

        decision = at_shutdown(cluster.owner_daemonset, cluster.kubeconfig, cluster.context)
        log.info("%s", decision.reason)
        if not decision.remove:
            return 0
    result = file.open().cleanup()
    if result.changed:
        log.info("removed the %s block from %s", file.marker, file.path)
    else:
        log.info("no %s block in %s: nothing to clean up", file.marker, file.path)
    return 0


def exit_code(err: HostsFileError) -> int:
    """1 for a failure at run time (README, exit codes), 2 for a hosts file the command line must change."""
    # The engine raises its one-line error inside the `except OSError` that caused it: the OSError is its
    # __context__ (also with `from None`, which only hides it from tracebacks).
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError):
            return 1 if cause.errno in RUNTIME_ERRNOS else 2
        cause = cause.__cause__ or cause.__context__
    return 2


def cluster_record(config: Config, kubeconfig_server: str) -> ClusterRecord | None:
    """What the block records about the cluster: the flags' values; in host mode, the kubeconfig context's
    name and server by default (in-cluster, the pod's API address is not one the host can reach)."""
    from controller.cluster import kube

    cluster = config.cluster
    name, server = cluster.name, cluster.server
    context = kube.context_name(cluster.kubeconfig, cluster.context)
    if context is not None:
        name, server = name or context, server or kubeconfig_server
    return make_record(name, server, cluster.node_name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["wait"]:
        from controller.wait import main as wait_main

        return wait_main(argv[1:])
    if argv[:1] == ["status"]:
        from controller.status import main as status_main

        return status_main(argv[1:])
    try:
        config = parse_args(argv)
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    setup_logging(config.log.format, config.log.verbose)
    try:
        if config.mode.cleanup:
            return cleanup(config)
        if not config.mode.dry_run:
            config.file.open().check_writable()
    except LockTimeout as err:  # not bad input: the same command works once the lock is released (exit 1)
        print(f"{PROG}: error: {err}; the block is left in the file: try again later", file=sys.stderr)
        return 1
    except HostsFileError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return exit_code(err)
    from controller.cluster import kube  # the client library is not needed for --cleanup (a preStop hook)

    try:
        configuration = kube.load(config.cluster.kubeconfig, config.cluster.context, context_label(argv))
    except kube.KubeconfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    from controller.runner import run_controller  # kopf is not needed for --cleanup either

    code = run_controller(config, configuration, cluster_record(config, configuration.host))
    if config.mode.dry_run and dryrun.output_closed():  # `--dry-run | head`: quiet, like any tool in a pipe
        return dryrun.EXIT_OUTPUT_CLOSED
    return code


def run() -> None:
    sys.exit(main())
