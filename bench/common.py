"""Shared pieces of the benchmarks: the controller under test (a command template), the control plane, a
fast API writer, an inotify file watcher, /proc statistics, and tables.

Nothing here is specific to our controller: the template decides what runs, and the file watcher measures
what any implementation does to the file (writes, bytes, when a line appears).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import http.client
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.controlplane.cluster import ControlPlane, free_port  # noqa: E402

RESULTS = REPO / "bench" / "results"
USER_CONTENT = b"# Existing entries...\n127.0.0.1 localhost\n::1 localhost\n"
OURS_TEMPLATE = (
    f"{shlex.quote(sys.executable)} -m controller --namespaces {{namespaces}} --hosts-file {{hosts_file}} "
    "--kubeconfig {kubeconfig} --metrics-bind-address 127.0.0.1:{metrics_port}"
)
REFERENCE_MODULE = "github.com/TykTechnologies/k8s-hosts-controller"
REFERENCE_BIN_DIR = Path.home() / ".cache" / "k8s-hosts-controller" / "reference" / "bin"
REFERENCE_TEMPLATE = (
    f"{REFERENCE_BIN_DIR / 'k8s-hosts-controller'} --namespaces {{namespaces}} --hosts-file {{hosts_file}} "
    "--kubeconfig {kubeconfig}"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAIR = re.compile(rb"^[ \t]*([0-9A-Fa-f:.]+)[ \t]+([^#\r\n]*)", re.M)


# ------------------------------------------------------------------------------------------ implementations


@dataclass(frozen=True)
class Impl:
    label: str
    template: str
    env: dict[str, str] = field(default_factory=dict)


def build_reference() -> tuple[Impl | None, str]:
    """go install the public Go implementation into the cache; (impl, message) — impl None on failure."""
    binary = REFERENCE_BIN_DIR / "k8s-hosts-controller"
    if shutil.which("go") is None:
        return None, "go is not installed (needed for --reference)"
    REFERENCE_BIN_DIR.mkdir(parents=True, exist_ok=True)
    cmd = ["go", "install", f"{REFERENCE_MODULE}@latest"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "GOBIN": str(REFERENCE_BIN_DIR)}, cwd="/tmp"
    )
    if out.returncode != 0 or not binary.exists():
        text = (out.stderr or out.stdout).strip()
        return None, f"`GOBIN={REFERENCE_BIN_DIR} {' '.join(cmd)}` failed (exit {out.returncode}): {text}"
    return Impl("reference", REFERENCE_TEMPLATE), f"built {binary}"


def implementations(args) -> list[Impl]:
    impls = []
    if not args.no_ours:
        impls.append(Impl("ours", args.controller or OURS_TEMPLATE))
    for i, template in enumerate(args.extra or ()):
        impls.append(Impl(f"extra{i + 1}", template))
    if args.reference:
        impl, message = build_reference()
        print(f"[reference] {message}", flush=True)
        record_note("reference", message)
        if impl is not None:
            impls.append(impl)
    return impls


NOTES: dict[str, str] = {}


def record_note(key: str, text: str) -> None:
    NOTES[key] = text


# ------------------------------------------------------------------------------------------------ processes


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_LIVE: set[subprocess.Popen] = set()


def stop_all() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait(5)
        _LIVE.discard(proc)


class Controller:
    """One controller process started from a template; /proc figures; metrics when it serves them."""

    def __init__(self, impl: Impl, *, kubeconfig: Path, hosts_file: Path, namespaces: str, log: Path) -> None:
        self.impl = impl
        self.metrics_port = free_port()
        values = {
            "kubeconfig": str(kubeconfig),
            "hosts_file": str(hosts_file),
            "namespaces": namespaces,
            "metrics_port": str(self.metrics_port),
        }
        self.argv = [part.format(**values) for part in shlex.split(impl.template)]
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.peak_rss_kb = 0

    def start(self) -> Controller:
        env = {**os.environ, **self.impl.env}
        with open(self.log, "ab") as log:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.log.parent,  # not the checkout: PYTHONPATH in a template can pick another tree
                env=env,
                preexec_fn=_die_with_parent,
            )
        _LIVE.add(self.proc)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in kB; also remembers the peak."""
        rss = hwm = 0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        self.peak_rss_kb = max(self.peak_rss_kb, hwm)
        return rss, hwm

    def metrics(self) -> dict[str, float] | None:
        """Our /metrics as {name{labels}: value}; None when the implementation serves none."""
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read()
        except OSError:
            return None
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out

    def written(self) -> float | None:
        m = self.metrics()
        if m is None:
            return None
        return m.get('k8s_hosts_controller_writes_total{result="written"}')

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.rss_kb()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _LIVE.discard(self.proc)
        return self.proc.returncode

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


# ---------------------------------------------------------------------------------------------- API writer


class Api:
    """Raw HTTPS calls on keep-alive connections (one per thread): cheap enough for thousands of writes."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.ctx = cp.ssl_context()
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPSConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.cp.port, context=self.ctx, timeout=30)
            self.local.conn = conn
        return conn

    def call(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json"):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.cp.admin_token}"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(5):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                if resp.status == 429 or resp.status >= 500:
                    time.sleep(0.1 * (attempt + 1))
                    continue
                return resp.status, payload
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                time.sleep(0.1 * (attempt + 1))
        raise RuntimeError(f"{method} {path} failed 5 times")

    def namespace(self, name: str) -> None:
        status, body = self.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if status not in (201, 409):
            raise RuntimeError(f"namespace {name}: {status} {body[:200]!r}")

    def create_ingress(self, ns: str, name: str, host: str) -> None:
        status, body = self.call(
            "POST",
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
            {"metadata": {"name": name}, "spec": {"rules": [{"host": host}]}},
        )
        if status != 201:
            raise RuntimeError(f"create {ns}/{name}: {status} {body[:200]!r}")

    def set_ip(self, ns: str, name: str, ip: str | None) -> None:
        status_body = {"loadBalancer": {"ingress": [{"ip": ip}]}} if ip else {"loadBalancer": {}}
        status, body = self.call(
            "PATCH",
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}/status",
            {"status": status_body},
            content_type="application/merge-patch+json",
        )
        if status != 200:
            raise RuntimeError(f"status {ns}/{name}: {status} {body[:200]!r}")

    def set_host(self, ns: str, name: str, host: str) -> None:
        status, body = self.call(
            "PATCH",
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}",
            {"spec": {"rules": [{"host": host}]}},
            content_type="application/merge-patch+json",
        )
        if status != 200:
            raise RuntimeError(f"patch {ns}/{name}: {status} {body[:200]!r}")

    def delete_ingress(self, ns: str, name: str) -> None:
        status, body = self.call("DELETE", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}")
        if status not in (200, 202, 404):
            raise RuntimeError(f"delete {ns}/{name}: {status} {body[:200]!r}")

    def list_ingresses(self, ns: str) -> dict:
        status, body = self.call("GET", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses")
        if status != 200:
            raise RuntimeError(f"list {ns}: {status} {body[:200]!r}")
        return json.loads(body)


def ip_for(i: int, salt: int = 0) -> str:
    n = i + salt * 65536
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"


def create_many(api: Api, ns: str, count: int, *, threads: int = 16, prefix: str = "ing") -> dict:
    """count Ingresses with an address each (create, then status): expected pairs, time of last write."""
    expected = {}

    def one(i: int) -> float:
        name, host, ip = f"{prefix}-{i}", f"{prefix}-{i}.{ns}.bench.test", ip_for(i)
        api.create_ingress(ns, name, host)
        api.set_ip(ns, name, ip)
        return time.monotonic()

    for i in range(count):
        expected[(ip_for(i), f"{prefix}-{i}.{ns}.bench.test")] = None
    with ThreadPoolExecutor(threads) as pool:
        last = max(pool.map(one, range(count)), default=time.monotonic())
    return {"expected": set(expected), "last_write": last}


# ---------------------------------------------------------------------------------------------- the file


def pairs(content: bytes) -> set[tuple[str, str]]:
    """Every (address, hostname) the file maps, inside the block or not: implementation-neutral."""
    out = set()
    for m in _PAIR.finditer(content):
        ip = m[1].decode()
        for host in m[2].decode(errors="replace").split():
            out.add((ip, host.lower()))
    return out


_IN_MODIFY, _IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x8, 0x80, 0x100


class FileWatcher:
    """inotify on the file's directory (rename replaces the inode): counts writes and bytes, and tells
    waiters when the content changed. A write = a rename onto the name, or a close after modification."""

    def __init__(self, path: Path, on_content: Callable[[float, bytes], None] | None = None) -> None:
        self.path = path
        self.name = path.name.encode()
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if libc.inotify_add_watch(self.fd, str(path.parent).encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.on_content = on_content
        self.writes = 0
        self.bytes = 0
        self.events: list[tuple[float, int]] = []  # (time, size) per write
        self._modified = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.content = path.read_bytes() if path.exists() else b""
        self.version = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="file watcher")
        self._thread.start()

    def reset_counts(self) -> None:
        with self._lock:
            self.writes, self.bytes, self.events = 0, 0, []

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            now = time.monotonic()
            changed = False
            off = 0
            while off < len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, off)
                name = data[off + 16 : off + 16 + length].rstrip(b"\0")
                off += 16 + length
                if name != self.name:
                    continue
                if mask & _IN_MODIFY:
                    self._modified = True
                    changed = True
                if mask & _IN_MOVED_TO or (mask & _IN_CLOSE_WRITE and self._modified):
                    self._modified = False
                    changed = True
                    self._count(now)
            if changed:
                self._refresh(now)

    def _count(self, now: float) -> None:
        with contextlib.suppress(OSError):
            size = self.path.stat().st_size
            with self._lock:
                self.writes += 1
                self.bytes += size
                self.events.append((now, size))

    def _refresh(self, now: float) -> None:
        try:
            content = self.path.read_bytes()
        except OSError:
            return
        with self._cond:
            self.content = content
            self.version += 1
            self._cond.notify_all()
        if self.on_content:
            self.on_content(now, content)

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float) -> float | None:
        """Wait until predicate(content); the monotonic time it was first seen true, None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self.content):
                    return time.monotonic()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    # the last read may predate a write we have not been told about yet
                    self.content = self.path.read_bytes() if self.path.exists() else b""
                    return time.monotonic() if predicate(self.content) else None
                self._cond.wait(min(remaining, 0.05))
                if not self._thread.is_alive():
                    return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.fd)


# ----------------------------------------------------------------------------------------- environment


@contextlib.contextmanager
def control_plane(keep: bool = False) -> Iterator[tuple[ControlPlane, Path]]:
    workdir = Path(tempfile.mkdtemp(prefix="k8s-hosts-bench-"))
    cp = ControlPlane(workdir / "controlplane")
    try:
        cp.start()
        yield cp, workdir
    finally:
        stop_all()
        cp.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    try:
        import kopf

        kopf_version = getattr(kopf, "__version__", "") or _dist_version("kopf")
    except Exception:
        kopf_version = "?"
    return {
        "nproc": str(os.cpu_count()),
        "memory": mem,
        "cpu": model,
        "python": platform.python_version(),
        "kopf": kopf_version,
        "kernel": platform.release(),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def percentile(values: Iterable[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def save_json(name: str, data: object) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save_plot(fig, name: str) -> Path:
    out = RESULTS / f"{name}.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")
    return out


def bar_panels(results: dict, name: str, panels: list[tuple[str, str, str]]) -> Path:
    """Bars per size N, one group per implementation, one panel per (result key, y label, title)."""
    fig, axes = plt().subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5))
    labels = list(results["impls"])
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        runs = results["impls"][label]
        xs = [j + i * width for j in range(len(runs))]
        ticks = [j + (len(labels) - 1) * width / 2 for j in range(len(runs))]
        for ax, (key, _, _) in zip(axes, panels, strict=True):
            ax.bar(xs, [r[key] for r in runs], width, label=label)
            ax.set_xticks(ticks, [f"N={r['n']}" for r in runs])
    for ax, (_, ylabel, title) in zip(axes, panels, strict=True):
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend()
    return save_plot(fig, name)


def prepare_hosts(workdir: Path, label: str) -> Path:
    path = workdir / f"hosts-{label}"
    path.write_bytes(USER_CONTENT)
    path.chmod(0o644)
    return path


def wait_ready(ctl: Controller, timeout: float = 60) -> None:
    """Wait for /readyz when the implementation serves it; otherwise only check it did not die."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not ctl.alive():
            raise RuntimeError(f"{ctl.impl.label} exited with {ctl.proc.returncode}:\n{ctl.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ctl.metrics_port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError as err:
            refused = isinstance(err, ConnectionRefusedError) or "refused" in str(err)
            if refused and time.monotonic() - ctl.started > 10:
                return  # serves no HTTP: rely on the file checks
        time.sleep(0.05)
    raise RuntimeError(f"{ctl.impl.label} not ready after {timeout}s:\n{ctl.tail()}")
