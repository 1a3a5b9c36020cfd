"""`k8s-hosts-controller wait`: block until names are in (or out of) the managed block, for scripts and CI.

Replaces `sleep 5` after starting the controller: exit 0 when satisfied, 1 on timeout with the missing
names, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from controller.block import block_names, validate_marker
from controller.config import Config, env_name
from controller.entries import HostsFileError
from controller.hostsfile import HostsFile

PROG = "k8s-hosts-controller wait"
POLL_SECONDS = 0.1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"{PROG}: error: {message} (see {PROG} --help)", file=sys.stderr)
        sys.exit(2)


def parse_duration(text: str) -> float:
    """ "120", "120s", "2m", "1m30s", "500ms" -> seconds."""
    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)(s|ms)?)?\s*", text)
    if not match or not any(match.groups()[:2]):
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (use e.g. 120, 120s, 2m, 500ms)")
    minutes, amount, unit = match.groups()
    seconds = float(minutes or 0) * 60 + float(amount or 0) / (1000 if unit == "ms" else 1)
    return seconds


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = _Parser(prog=PROG, description="Wait until hostnames are in the managed block of the hosts file.")
    p.add_argument(
        "--host", action="append", default=[], help="hostname to wait for (repeatable, comma list)"
    )
    # The controller's defaults and environment names, so that both look at the same block.
    p.add_argument("--hosts-file", default=env(env_name("--hosts-file"), str(Config.hosts_file)))
    p.add_argument("--marker", default=env(env_name("--marker"), Config.marker))
    p.add_argument("--ready-url", help="also wait for HTTP 200 here, e.g. http://127.0.0.1:8080/readyz")
    p.add_argument("--timeout", type=parse_duration, default=parse_duration("120s"), help="e.g. 120s, 2m")
    p.add_argument("--absent", action="store_true", help="wait until the hosts are NOT in the block")
    return p


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    hosts = [h.strip().lower() for value in args.host for h in value.split(",") if h.strip()]
    if not hosts and not args.ready_url:
        print(
            f"{PROG}: error: nothing to wait for (give --host NAME and/or --ready-url URL)", file=sys.stderr
        )
        return 2
    try:
        hosts_file = HostsFile(args.hosts_file, validate_marker(args.marker))
    except HostsFileError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.timeout
    while True:
        problems = []
        if args.ready_url and not _ready(args.ready_url):
            problems.append(f"{args.ready_url} not ready")
        if hosts:
            try:
                managed = block_names(hosts_file.read(), hosts_file.marker)
            except HostsFileError as err:
                print(f"{PROG}: error: {err}", file=sys.stderr)
                return 2
            if args.absent:
                problems += [f"{h} still present" for h in hosts if h in managed]
            else:
                problems += [f"{h} missing" for h in hosts if h not in managed]
        if not problems:
            what = ", ".join(hosts) or args.ready_url
            print(f"{PROG}: {'gone' if args.absent else 'ready'}: {what}")
            return 0
        if time.monotonic() >= deadline:
            print(
                f"{PROG}: timed out after {args.timeout:g}s in {args.hosts_file}: {'; '.join(problems)}",
                file=sys.stderr,
            )
            return 1
        time.sleep(POLL_SECONDS)
