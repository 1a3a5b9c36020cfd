"""The resilience test's client (tests/e2e/test_resilience.py): GET URL continuously, one request at a time,
at most one every --interval seconds, each on a new connection (so every request resolves the name again, as
a test suite's HTTP client does across its tests), until SIGTERM. One JSON line per request on stdout:
{"t": start (epoch s), "dt": seconds, "status": HTTP status or null, "pod": X-Gateway-Pod, "error": text}.

Standard library only: it runs as `python -m tests.e2e.resilience_client URL`, through conftest.by_name for
the names path (names resolved in the managed file) or as it is for the port-forward path."""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import threading
import time
from urllib.parse import urlsplit


def request(url: str, timeout: float) -> dict:
    parts = urlsplit(url)
    start = time.time()
    record: dict = {"t": start, "status": None, "pod": None, "error": None}
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        record["status"] = resp.status
        record["pod"] = resp.getheader("X-Gateway-Pod")
        if resp.status != 200:
            record["error"] = body.decode(errors="replace").strip()[:200]
    except (OSError, http.client.HTTPException) as err:
        record["error"] = f"{type(err).__name__}: {err}"[:200]
    finally:
        conn.close()
    record["dt"] = round(time.time() - start, 4)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        record = request(args.url, args.timeout)
        print(json.dumps(record), flush=True)
        stop.wait(max(0.0, record["t"] + args.interval - time.time()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
