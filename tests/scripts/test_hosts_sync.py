"""scripts/hosts-sync.sh in host mode, against the real test control plane and a temporary hosts file.

The script starts the real controller CLI (this environment's k8s-hosts-controller) in the background;
Ingress addresses are set through the status subresource, as an ingress controller would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.ports import free_port
from testkit.tools import find_tool
from tests.helpers import eventually

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "hosts-sync.sh"
CONTROLLER = find_tool("k8s-hosts-controller")
BEGIN = b"#### BEGIN TYK-K8S-HOSTS ####"
ORIGINAL = b"# Existing entries...\n127.0.0.1 localhost\n::1 localhost\n192.168.1.10 nas.home  # my NAS\n"


class Sync:
    """Runs hosts-sync.sh with an environment pointing at the test cluster and files under tmp_path."""

    def __init__(
        self, env: dict[str, str], hosts_file: Path, pid_file: Path, log_file: Path, metrics_port: int
    ):
        self.env = env
        self.hosts_file = hosts_file
        self.pid_file = pid_file
        self.log_file = log_file
        self.metrics_port = metrics_port

    def __call__(self, *args: str, timeout: float = 150, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def explain(self, result: subprocess.CompletedProcess) -> str:
        log = self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else "(no log)"
        return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\nlog:\n{log}"


@pytest.fixture
def sync(tmp_path: Path, kubeconfig: Path, hosts_file: Path, namespace: str) -> Iterator[Sync]:
    if CONTROLLER is None:
        pytest.fail(
            "k8s-hosts-controller not found (environment scripts, PATH): pip install -e .", pytrace=False
        )
    port = free_port()
    pid_file, log_file = tmp_path / "run" / "controller.pid", tmp_path / "run" / "controller.log"
    env = {
        **os.environ,
        "HOSTS_SYNC_BIN": str(CONTROLLER),
        "HOSTS_SYNC_NAMESPACES": namespace,
        "HOSTS_SYNC_HOSTS_FILE": str(hosts_file),
        "HOSTS_SYNC_KUBECONFIG": str(kubeconfig),
        "HOSTS_SYNC_METRICS_ADDR": f"127.0.0.1:{port}",
        "HOSTS_SYNC_PID_FILE": str(pid_file),
        "HOSTS_SYNC_LOG_FILE": str(log_file),
        "HOSTS_SYNC_TIMEOUT": "60s",
        "HOSTS_SYNC_SUDO": "never",
    }
    env.pop("KUBECONFIG", None)
    s = Sync(env, hosts_file, pid_file, log_file, port)
    yield s
    # Never leave a controller behind, whatever the test did.
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


def pid_of(sync: Sync) -> int:
    """The PID on the PID file's first line (the lines after it describe the process)."""
    return int(sync.pid_file.read_text().splitlines()[0])


def make_ingress(api, namespace: str, name: str, hosts: list[str], ip: str) -> None:
    from kubernetes import client

    net = client.NetworkingV1Api(api)
    rules = [client.V1IngressRule(host=h) for h in hosts]
    net.create_namespaced_ingress(
        namespace,
        client.V1Ingress(metadata=client.V1ObjectMeta(name=name), spec=client.V1IngressSpec(rules=rules)),
    )
    net.patch_namespaced_ingress_status(
        name, namespace, {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}
    )


def block(path: Path) -> list[bytes]:
    lines = path.read_bytes().splitlines()
    if BEGIN not in lines:
        return []
    start = lines.index(BEGIN)
    end = lines.index(b"#### END TYK-K8S-HOSTS ####", start)
    return lines[start + 1 : end]


def test_start_wait_status_stop(sync: Sync, api, namespace: str, hosts_file: Path):
    from kubernetes import client

    assert sync("status").returncode == 3

    started = sync("start")
    assert started.returncode == 0, sync.explain(started)
    assert "first sync complete" in started.stderr
    pid = pid_of(sync)
    assert os.path.exists(f"/proc/{pid}")
    # Starting again is a no-op that says so.
    again = sync("start")
    assert again.returncode == 0 and "already running" in again.stderr
    assert pid_of(sync) == pid

    status = sync("status")
    assert status.returncode == 0, sync.explain(status)
    assert "synced" in status.stdout

    host = f"app-{uuid.uuid4().hex[:6]}.example.test"
    make_ingress(api, namespace, "app", [host, f"www.{host}"], "10.11.12.13")
    waited = sync("wait", host, f"www.{host}")
    assert waited.returncode == 0, sync.explain(waited)
    entries = block(hosts_file)
    assert f"10.11.12.13 {host}  # {namespace}/app".encode() in [e.rstrip() for e in entries] or any(
        e.split()[:2] == [b"10.11.12.13", host.encode()] for e in entries
    ), entries
    assert hosts_file.read_bytes().startswith(ORIGINAL)

    # The metrics follow the rename a moment after `wait` sees the names: wait for them too.
    def entries_metric() -> subprocess.CompletedProcess | None:
        metrics = sync("metrics")
        assert metrics.returncode == 0, sync.explain(metrics)
        return metrics if "k8s_hosts_controller_managed_entries 2.0" in metrics.stdout else None

    eventually(entries_metric, 10, what="managed_entries 2.0 from `hosts-sync.sh metrics`")

    # --absent times out (exit non-zero, reported) while the entry is there ...
    early = sync("wait", "--absent", "--timeout", "1s", host)
    assert early.returncode != 0
    assert "error" in early.stderr
    # ... and succeeds once the Ingress is gone.
    client.NetworkingV1Api(api).delete_namespaced_ingress("app", namespace)
    gone = sync("wait", "--absent", host)
    assert gone.returncode == 0, sync.explain(gone)
    assert all(host.encode() not in e for e in block(hosts_file))

    make_ingress(api, namespace, "again", ["again.example.test"], "10.11.12.14")
    assert sync("wait", "again.example.test").returncode == 0

    stopped = sync("stop")
    assert stopped.returncode == 0, sync.explain(stopped)
    assert hosts_file.read_bytes() == ORIGINAL, "stop must remove the block and only the block"
    assert not sync.pid_file.exists()
    assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert sync("status").returncode == 3
    # stop is idempotent
    assert sync("stop").returncode == 0


def test_start_waits_for_named_hosts(sync: Sync, api, namespace: str, hosts_file: Path):
    make_ingress(api, namespace, "pre", ["pre.example.test"], "10.0.0.7")
    started = sync("start", "pre.example.test")
    assert started.returncode == 0, sync.explain(started)
    assert any(e.split()[:2] == [b"10.0.0.7", b"pre.example.test"] for e in block(hosts_file))
    assert sync("stop").returncode == 0
    assert hosts_file.read_bytes() == ORIGINAL


def test_cleanup_removes_a_stale_block(sync: Sync, hosts_file: Path):
    stale = (
        ORIGINAL + b"#### BEGIN TYK-K8S-HOSTS ####\n10.9.9.9 stale.example.test  # gone/gone\n"
        b"#### END TYK-K8S-HOSTS ####\n" + b"10.1.1.1 after.home\n"
    )
    hosts_file.write_bytes(stale)
    # A stale PID file too, as a crash leaves it.
    sync.pid_file.parent.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    sync.pid_file.write_text(f"{dead.pid}\n")
    status = sync("status")
    assert status.returncode == 1, sync.explain(status)
    assert "dead" in status.stdout

    result = sync("cleanup")
    assert result.returncode == 0, sync.explain(result)
    assert hosts_file.read_bytes() == ORIGINAL + b"10.1.1.1 after.home\n"
    assert not sync.pid_file.exists()
    assert sync("status").returncode == 3
    # Nothing to do the second time, still success.
    assert sync("cleanup").returncode == 0


def test_start_reports_a_controller_that_exits(sync: Sync, hosts_file: Path):
    result = sync("start", HOSTS_SYNC_EXTRA_ARGS="--no-such-flag", timeout=60)
    assert result.returncode == 1, sync.explain(result)
    assert "exited" in result.stderr
    assert "--no-such-flag" in result.stderr  # the log tail with the controller's own error line
    assert not sync.pid_file.exists()
    assert hosts_file.read_bytes() == ORIGINAL


def test_start_reports_a_missing_kubeconfig(sync: Sync, tmp_path: Path):
    result = sync("start", HOSTS_SYNC_KUBECONFIG=str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "kubeconfig" in result.stderr and "not found" in result.stderr


def test_tyk_start_hosts_sync_builds_the_namespace_list(sync: Sync, api, namespace: str, hosts_file: Path):
    """examples/tyk: startHostsSync as run-tyk-cp-dp.sh would call it (CP + NUM_DATA_PLANES namespaces)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    dps = [f"{namespace}-dp-{i}" for i in (1, 2)]
    for name in dps:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        make_ingress(api, dps[1], "gw", ["gw-dp-2.example.test"], "10.0.0.8")
        snippet = REPO / "examples" / "tyk" / "run-tyk-cp-dp.hosts-sync.sh"
        driver = (
            "set -euo pipefail\n"
            'log() { echo "[tyk] $*"; }\n'
            'dp_namespace() { echo "${CP_NAMESPACE}-dp-$1"; }\n'
            f"source {snippet}\n"
            "startHostsSync\n"
        )
        env = {
            **sync.env,
            "CP_NAMESPACE": namespace,
            "NUM_DATA_PLANES": "2",
            "HOSTS_SYNC_WAIT_FOR": "gw-dp-2.example.test",
        }
        env.pop("HOSTS_SYNC_NAMESPACES")
        result = subprocess.run(["bash", "-c", driver], env=env, capture_output=True, text=True, timeout=150)
        assert result.returncode == 0, sync.explain(result)
        assert f"namespaces: {namespace},{dps[0]},{dps[1]}" in result.stdout
        assert f"--namespaces {namespace},{dps[0]},{dps[1]}" in sync.log_file.read_text()
        assert any(e.split()[:2] == [b"10.0.0.8", b"gw-dp-2.example.test"] for e in block(hosts_file))

        cleanup = REPO / "examples" / "tyk" / "test-resilience-local.hosts-sync.sh"
        result = subprocess.run(
            ["bash", "-c", f"set -euo pipefail; source {cleanup}; hostsSyncCleanup"],
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert result.returncode == 0, sync.explain(result)
        assert hosts_file.read_bytes() == ORIGINAL
    finally:
        for name in dps:
            core.delete_namespace(name)


def test_stop_never_signals_a_pid_that_is_not_the_controller(sync: Sync, hosts_file: Path):
    """A PID file naming another process (PID reuse, or written by someone else): not signalled."""
    other = subprocess.Popen(["sleep", "300"])
    try:
        sync.pid_file.parent.mkdir(parents=True, exist_ok=True)
        sync.pid_file.write_text(f"{other.pid}\n")
        status = sync("status")
        assert status.returncode == 1 and "not the controller" in status.stdout, sync.explain(status)
        result = sync("stop")
        assert result.returncode == 0, sync.explain(result)
        assert "is not the controller" in result.stderr and "not signalling it" in result.stderr
        assert other.poll() is None, "the unrelated process was signalled"
        assert not sync.pid_file.exists()
        assert hosts_file.read_bytes() == ORIGINAL
        sync.pid_file.write_text(f"{other.pid}\n")
        result = sync("cleanup")
        assert result.returncode == 0 and other.poll() is None, sync.explain(result)
    finally:
        other.kill()
        other.wait()


def write_legacy_pid_file(sync: Sync, pid: int) -> None:
    """A PID file as earlier versions wrote it: the PID alone."""
    sync.pid_file.parent.mkdir(parents=True, exist_ok=True)
    sync.pid_file.write_text(f"{pid}\n")


def assert_not_signalled(sync: Sync, other: subprocess.Popen, hosts_file: Path, write_pid_file) -> None:
    """stop, status and cleanup leave `other` alone and say why; stop and cleanup succeed."""
    write_pid_file()
    result = sync("stop")
    assert other.poll() is None, "the unrelated process was signalled by stop"
    assert result.returncode == 0, sync.explain(result)
    assert "is not the controller" in result.stderr and "not signalling it" in result.stderr
    assert not sync.pid_file.exists()
    write_pid_file()
    status = sync("status")
    assert status.returncode == 1 and "not the controller" in status.stdout, sync.explain(status)
    result = sync("cleanup")
    assert other.poll() is None, "the unrelated process was signalled by cleanup"
    assert result.returncode == 0, sync.explain(result)
    assert hosts_file.read_bytes() == ORIGINAL


@pytest.mark.parametrize("target", ["the default log file's name", "the controller's path"])
def test_stop_never_signals_a_process_whose_command_line_merely_contains_the_name(
    sync: Sync, hosts_file: Path, tmp_path: Path, target: str
):
    """A `tail -f` of a file named after the program holds the name in its command line; before, a substring
    match of the name made stop SIGTERM it."""
    if target == "the controller's path":
        path = Path(str(CONTROLLER))
    else:
        path = tmp_path / "k8s-hosts-controller.log"
        path.write_text("a log\n")
    other = subprocess.Popen(["tail", "-f", str(path)], stdout=subprocess.DEVNULL)
    try:
        assert_not_signalled(sync, other, hosts_file, lambda: write_legacy_pid_file(sync, other.pid))
    finally:
        other.kill()
        other.wait()


def test_stop_never_signals_a_process_that_started_after_the_recorded_one(sync: Sync, hosts_file: Path):
    """The PID file records the start time: a process holding the PID now (the PID reused), even one running
    the very command start runs, started later and is not signalled."""
    signature = f"{CONTROLLER} --hosts-file {hosts_file} --marker TYK-K8S-HOSTS"
    # argv[0] of `bash -c` is free text: this process's command line contains the exact command.
    other = subprocess.Popen(["bash", "-c", "sleep 300", *signature.split(" ")])
    try:

        def write() -> None:
            sync.pid_file.parent.mkdir(parents=True, exist_ok=True)
            sync.pid_file.write_text(f"{other.pid}\nstarted=Thu Jan  1 00:00:00 1970\ncommand={signature}\n")

        assert_not_signalled(sync, other, hosts_file, write)
    finally:
        other.kill()
        other.wait()


def test_the_pid_file_names_the_real_controller_exactly(sync: Sync, hosts_file: Path):
    """start records the PID with its start time and command; stop signals that process, and refuses to
    when the start time no longer matches."""
    started = sync("start")
    assert started.returncode == 0, sync.explain(started)
    first, *fields = sync.pid_file.read_text().splitlines()
    pid = int(first)
    recorded = dict(field.split("=", 1) for field in fields)
    assert recorded["command"] == f"{CONTROLLER} --hosts-file {hosts_file} --marker TYK-K8S-HOSTS"
    assert recorded["started"]
    assert sync("status").returncode == 0

    # The same PID with another start time is another process as far as stop can tell: not signalled.
    original = sync.pid_file.read_text()
    sync.pid_file.write_text(original.replace(recorded["started"], "Thu Jan  1 00:00:00 1970"))
    refused = sync("stop")
    assert "not the controller" in refused.stderr and "PID was reused" in refused.stderr, sync.explain(
        refused
    )
    assert os.path.exists(f"/proc/{pid}") and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"

    sync.pid_file.write_text(original)
    stopped = sync("stop")
    assert stopped.returncode == 0, sync.explain(stopped)
    assert hosts_file.read_bytes() == ORIGINAL
    assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_pid_file_of_an_earlier_version_still_stops_the_controller(sync: Sync, hosts_file: Path):
    """Upgrading the script while the controller runs: the PID alone, the command still matches exactly."""
    started = sync("start")
    assert started.returncode == 0, sync.explain(started)
    pid = pid_of(sync)
    write_legacy_pid_file(sync, pid)
    stopped = sync("stop")
    assert stopped.returncode == 0, sync.explain(stopped)
    assert "not the controller" not in stopped.stderr
    assert hosts_file.read_bytes() == ORIGINAL
    assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
