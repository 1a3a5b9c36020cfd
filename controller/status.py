"""`k8s-hosts-controller status`: is there a block, which cluster wrote it, and is that cluster gone?

A cluster deleted by force (`kind delete cluster`) never runs its cleanup, so its block stays, every name
pointing at an address that no longer exists. The block records which cluster wrote it
(controller/engine/record.py); this command reads that record and asks whether the cluster still answers
(controller/liveness.py says how).

Exit codes: 0 no block, or a block whose cluster answers; 3 stale block; 4 block whose cluster cannot be
checked; 1 the hosts file cannot be read; 2 usage errors. Standard library only, like `wait`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
from collections.abc import Sequence

from controller.config import UsageError, env_name
from controller.engine.block import block_names, block_record, parse
from controller.engine.errors import HostsFileError
from controller.engine.filelock import holder
from controller.engine.hostsfile import HostsFile
from controller.engine.settings import FileSettings
from controller.liveness import LIVE, STALE, Liveness, liveness
from controller.wait import _setting

PROG = "k8s-hosts-controller status"
UNCHECKED = "unchecked"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_STALE, EXIT_UNKNOWN = 0, 1, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"{PROG}: error: {message} (see {PROG} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Show the managed block: its names, the cluster that wrote it, the lock holder, and "
        "whether that cluster is gone (stale). Exit 0: no block, or its cluster answers; 3: stale block "
        "(remove it with sudo k8s-hosts-controller --cleanup); 4: its cluster cannot be checked; 1: the "
        "hosts file cannot be read; 2: usage error.",
    )
    p.add_argument("--hosts-file", help=f"default: ${env_name('--hosts-file')}, else {FileSettings.path}")
    p.add_argument("--marker", help=f"default: ${env_name('--marker')}, else {FileSettings.marker}")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="do not ask whether the block's cluster answers (state: unchecked, exit 0); for scripts that "
        "only need to know whether there is a block",
    )
    return p


def lock_holder(path: str) -> str | None:
    """Who holds the hosts file's lock now, or None when nobody does (a shared lock, taken and dropped at
    once, is the probe: a writer polls for its exclusive lock, so it is never held up by this)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        st = os.fstat(fd)
        return holder(st.st_dev, st.st_ino)
    finally:
        os.close(fd)  # releases the probe's lock too
    return None


def report(path: str, marker: str, check: bool = True) -> dict:
    """Everything `status` says, as a JSON-able dict."""
    content = HostsFile(path, marker).read()
    parsed = parse(content, marker)
    out: dict = {"hosts_file": path, "marker": marker, "block": parsed.has_block}
    if parsed.has_block:
        record = block_record(content, marker)
        alive = liveness(record) if check else Liveness(UNCHECKED, "not checked (--no-check)")
        names = sorted(block_names(content, marker))
        out.update(
            entries=len(parsed.managed),
            names=names,
            cluster={"name": record.name, "server": record.server, "node": record.node} if record else None,
            state=alive.state,
            reason=alive.reason,
        )
    out["lock"] = lock_holder(os.path.realpath(path))
    return out


def exit_code(out: dict) -> int:
    if not out["block"]:
        return EXIT_OK
    return {LIVE: EXIT_OK, UNCHECKED: EXIT_OK, STALE: EXIT_STALE}.get(out["state"], EXIT_UNKNOWN)


def text(out: dict) -> str:
    where = f"{out['hosts_file']} (marker {out['marker']})"
    lines = [f"block: {'present' if out['block'] else 'none'} in {where}"]
    if out["block"]:
        shown = ", ".join(out["names"][:20]) + (", ..." if len(out["names"]) > 20 else "")
        lines.append(f"entries: {out['entries']}" + (f" ({shown})" if shown else ""))
        cluster = out["cluster"]
        known = " ".join(f"{k}={v}" for k, v in cluster.items() if v) if cluster else "not recorded"
        lines.append(f"cluster: {known}")
        state = out["state"].upper() if out["state"] == STALE else out["state"]
        lines.append(f"state: {state}: {out['reason']}")
        if out["state"] == STALE:
            lines.append(
                f"the cluster is gone: remove the block with sudo k8s-hosts-controller --cleanup "
                f"--hosts-file {out['hosts_file']} --marker {out['marker']}"
            )
    lines.append(f"lock: {out['lock'] or 'free'}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = _setting("file.path", args.hosts_file)
        marker = _setting("file.marker", args.marker)
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        out = report(path, marker, check=not args.no_check)
    except HostsFileError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(out, sort_keys=True) if args.json else text(out))
    return exit_code(out)
