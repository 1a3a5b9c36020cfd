"""`k8s-hosts-controller wait`: block until names are in (or out of) the managed block, for scripts and CI.

Replaces `sleep 5` after starting the controller: exit 0 when satisfied, 1 on timeout with the missing
names, 2 on usage errors (checked before anything is waited for). The whole command ends by its deadline:
every check runs with the time that is left, and a check that does not finish by then (a server that
answers one byte a second) is abandoned, not waited for. It reads the controller's settings and checks them
the same way (docs/architecture.md, decision 9). Names of a block whose recorded cluster is gone
(controller/liveness.py) are never reported ready: the cluster was deleted without its cleanup.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import TypeVar

from controller import durations
from controller.checks import check_value
from controller.config import UsageError, env_label, env_name, setting_at
from controller.engine.block import block_names, block_record
from controller.engine.errors import HostsFileError
from controller.engine.hostsfile import HostsFile
from controller.engine.printable import printable
from controller.engine.settings import FileSettings
from controller.engine.sizes import parse_size, size_flag
from controller.liveness import STALE, liveness

PROG = "k8s-hosts-controller wait"
POLL_SECONDS = 0.1
MAX_TIMEOUT = 86400.0  # one day: longer is a typo (hundreds of nines would mean forever), not a plan
PROBE_SECONDS = 2.0  # the longest one --ready-url request may take, so that a hung one is retried
MIN_CHECK = 0.1  # a check still gets this long when the deadline is (nearly) reached, e.g. --timeout 0

T = TypeVar("T")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"{PROG}: error: {message} (see {PROG} --help)", file=sys.stderr)
        sys.exit(2)


def parse_duration(text: str) -> float:
    """ "120", "120s", "2m", "1h30m", "500ms" (controller/durations.py) -> seconds; at most MAX_TIMEOUT."""
    try:
        seconds = durations.parse_duration(text)
    except ValueError:
        seconds = math.nan
    if math.isnan(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (use e.g. {durations.EXAMPLES})")
    if not seconds <= MAX_TIMEOUT:  # also inf
        shown = text.strip() if len(text.strip()) <= 30 else text.strip()[:30] + "..."
        raise argparse.ArgumentTypeError(
            f"duration {shown!r} is longer than a day (at most {MAX_TIMEOUT:.0f}s, e.g. 1440m)"
        )
    return seconds


def check_url(url: str) -> str:
    """The --ready-url: http(s)://HOST[:PORT]/PATH, checked before anything is waited for."""
    hint = "give e.g. http://127.0.0.1:8080/readyz"
    if not url.isprintable() or any(ch.isspace() for ch in url):
        raise UsageError(f"--ready-url {url!r} has spaces or control characters ({hint})")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number 0-65535
    except ValueError as err:
        raise UsageError(f"--ready-url {url!r} is not a valid URL: {err} ({hint})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--ready-url {url!r} is not an http:// or https:// URL with a host ({hint})")
    return url


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Wait until hostnames are in the managed block of the hosts file.")
    p.add_argument(
        "--host", action="append", default=[], help="hostname to wait for (repeatable, comma list)"
    )
    # The controller's defaults and environment names, so that both look at the same block.
    p.add_argument("--hosts-file", help=f"default: ${env_name('--hosts-file')}, else {FileSettings.path}")
    p.add_argument("--marker", help=f"default: ${env_name('--marker')}, else {FileSettings.marker}")
    p.add_argument(
        "--max-hosts-file-size",
        metavar="SIZE",
        help=f"default: ${env_name('--max-hosts-file-size')}, else {size_flag(FileSettings.max_size)}",
    )
    p.add_argument("--ready-url", help="also wait for HTTP 200 here, e.g. http://127.0.0.1:8080/readyz")
    p.add_argument(
        "--timeout",
        type=parse_duration,
        default=parse_duration("120s"),
        help=f"e.g. 90s, 2m, 1h30m, 500ms (default: 120s; at most {MAX_TIMEOUT:.0f}s); the whole command "
        "ends by then",
    )
    p.add_argument("--absent", action="store_true", help="wait until the hosts are NOT in the block")
    return p


def _setting(name: str, given: str | None) -> str:
    """The controller's setting ``name``: the flag's value, else its environment variable's, else the
    default; each value given is checked as the controller checks it (controller/checks.py)."""
    spec = setting_at(name)
    field = spec.field
    from_env = os.environ.get(spec.env)
    for value, label in ((given, spec.flag), (from_env, env_label(spec))):
        if value is not None:
            check_value(name, spec.kind, value, label, field.default)
    if given is not None:
        return given
    return from_env if from_env is not None else str(field.default)


def _bounded(check: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
    """(True, result) if check() returns within `seconds`, else (False, None): the check is abandoned in its
    daemon thread (the process ends at the deadline; a socket timeout alone is per byte, not per request)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = check()
        except BaseException as err:  # handed to the caller
            box["error"] = err

    thread = threading.Thread(target=target, name="wait check", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return False, None
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return True, box.get("result")  # type: ignore[return-value]


def _probe(url: str, seconds: float) -> str | None:
    """None when the URL answers 200, else why not (one request, each socket wait bounded by `seconds`)."""
    try:
        with urllib.request.urlopen(url, timeout=seconds) as resp:
            return None if resp.status == 200 else f"answered {resp.status}"
    except urllib.error.HTTPError as err:
        err.close()
        return f"answered {err.code}"
    except urllib.error.URLError as err:
        return str(err.reason)
    except (OSError, http.client.HTTPException, ValueError) as err:
        return str(err) or type(err).__name__


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _wait(args)
    except (UsageError, HostsFileError) as err:  # a hosts file that cannot be read is no timeout
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2


def _wait(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    hosts = [h.strip().lower() for value in args.host for h in value.split(",") if h.strip()]
    path = _setting("file.path", args.hosts_file)
    marker = _setting("file.marker", args.marker)
    max_size = parse_size(_setting("file.max_size", args.max_hosts_file_size))
    url = check_url(args.ready_url) if args.ready_url is not None else None
    if not hosts and not url:
        raise UsageError("nothing to wait for (give --host NAME and/or --ready-url URL)")
    try:
        hosts_file = HostsFile(path, marker, max_size=max_size)
    except HostsFileError as err:
        raise UsageError(str(err)) from None
    answered: dict[str, list[str]] = {}  # the last completed check's findings, per kind
    while True:
        problems = []
        if url:
            finished, why = _bounded(
                lambda: _probe(url, min(PROBE_SECONDS, _left(deadline))), _left(deadline)
            )
            if not finished:
                # a check cut short by the deadline says less than the last one that completed
                problems += answered.get("url", [f"{url} not ready (no complete answer by the deadline)"])
            else:
                answered["url"] = [f"{url} not ready ({printable(why, 200)})"] if why is not None else []
                problems += answered["url"]  # the server's words
        if hosts:
            finished, found = _bounded(
                lambda: _names_and_stale(hosts_file, hosts, deadline, not args.absent), _left(deadline)
            )
            if not finished or found is None:
                problems += answered.get("hosts", [f"{path} not read by the deadline"])
            else:
                managed, stale = found
                if args.absent:
                    answered["hosts"] = [f"{h} still present" for h in hosts if h in managed]
                else:
                    answered["hosts"] = [f"{h} missing" for h in hosts if h not in managed] or stale
                problems += answered["hosts"]
        if not problems:
            what = ", ".join(hosts) or url
            print(f"{PROG}: {'gone' if args.absent else 'ready'}: {what}")
            return 0
        if time.monotonic() >= deadline:
            print(
                f"{PROG}: timed out after {args.timeout:g}s in {path}: {'; '.join(problems)}",
                file=sys.stderr,
            )
            return 1
        time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))


def _names_and_stale(
    hosts_file: HostsFile, hosts: list[str], deadline: float, check: bool
) -> tuple[frozenset[str], list[str]]:
    """The names in the block, and why they are stale when all ``hosts`` are there but the cluster that
    wrote the block is gone (controller/liveness.py): such names are never reported ready."""
    content = hosts_file.read()
    managed = block_names(content, hosts_file.marker)
    if not check or any(h not in managed for h in hosts):
        return managed, []
    alive = liveness(block_record(content, hosts_file.marker), min(PROBE_SECONDS, _left(deadline)))
    if alive.state != STALE:
        return managed, []
    return managed, [f"the block is stale: {alive.reason} (remove it with k8s-hosts-controller --cleanup)"]


def _left(deadline: float) -> float:
    """The time a check may take: what is left until the deadline, but at least MIN_CHECK."""
    return max(deadline - time.monotonic(), MIN_CHECK)
