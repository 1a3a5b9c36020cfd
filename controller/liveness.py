"""Is the cluster that wrote the block still there? For `status` and `wait` (controller/engine/record.py
says what a block records).

- a recorded API server is there when it gives any HTTP answer (401 and 403 too) to GET /livez, TLS not
  verified, within PROBE_SECONDS; a refused, unreachable or silent port means the cluster is gone: stale;
- with only a node name recorded, a Docker node container (kind) of that name that no longer exists is
  stale, when the docker CLI can tell;
- anything else is "unknown" (no record, a name that does not resolve, a TLS or protocol error): nothing is
  called stale on a guess.

Standard library only.
"""

from __future__ import annotations

import errno
import http.client
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

from controller.engine.printable import printable
from controller.engine.record import ClusterRecord

PROBE_SECONDS = 2.0
DOCKER_SECONDS = 5.0
LIVE, STALE, UNKNOWN = "live", "stale", "unknown"
_GONE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNRESET})


@dataclass(frozen=True)
class Liveness:
    state: str  # LIVE, STALE or UNKNOWN
    reason: str


def probe_server(url: str, seconds: float = PROBE_SECONDS) -> Liveness:
    """Does the API server at ``url`` answer at all? Any HTTP status counts; no TLS verification (a
    certificate says nothing about whether the cluster exists, and the host may not trust kind's CA)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Straight to the server: a proxy from the environment would answer for a cluster that is gone.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url.rstrip("/") + "/livez", timeout=seconds) as resp:
            return Liveness(LIVE, f"{url} answered {resp.status}")
    except urllib.error.HTTPError as err:
        err.close()
        return Liveness(LIVE, f"{url} answered {err.code}")
    except urllib.error.URLError as err:
        return _gone_or_unknown(url, err.reason)
    except (OSError, http.client.HTTPException, ValueError) as err:
        return _gone_or_unknown(url, err)


def _gone_or_unknown(url: str, err: object) -> Liveness:
    why = printable(str(err) or type(err).__name__, 200)
    if isinstance(err, TimeoutError | socket.timeout) or (
        isinstance(err, OSError) and err.errno in _GONE_ERRNOS
    ):
        return Liveness(STALE, f"{url} does not answer ({why})")
    return Liveness(UNKNOWN, f"cannot tell whether {url} is up ({why})")


def probe_node(node: str, seconds: float = DOCKER_SECONDS) -> Liveness:
    """Does the Docker container of this node (a kind node) still exist? Unknown without a usable docker."""
    docker = shutil.which("docker")
    if docker is None:
        return Liveness(UNKNOWN, f"node {node} recorded, no docker CLI to check it")
    try:
        done = subprocess.run(
            [docker, "container", "inspect", "--format", "{{.State.Running}}", node],
            capture_output=True,
            text=True,
            timeout=seconds,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return Liveness(UNKNOWN, f"docker could not check node {node} ({printable(str(err), 200)})")
    if done.returncode == 0:
        return Liveness(LIVE, f"node container {node} exists (running: {done.stdout.strip()})")
    if "no such" in done.stderr.lower():
        return Liveness(STALE, f"node container {node} no longer exists")
    return Liveness(UNKNOWN, f"docker could not check node {node} ({printable(done.stderr.strip(), 200)})")


def liveness(record: ClusterRecord | None, seconds: float = PROBE_SECONDS) -> Liveness:
    """Whether the cluster of a block's record is still there (the server decides when it is recorded)."""
    if not record:
        return Liveness(UNKNOWN, "the block does not record its cluster (written by an older version?)")
    if record.server:
        return probe_server(record.server, seconds)
    if record.node:
        return probe_node(record.node)
    return Liveness(UNKNOWN, f"only the cluster name {record.name} is recorded")
