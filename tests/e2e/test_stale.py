"""A deleted cluster leaves no stale names: each test makes a small throw-away kind cluster of its own (one
node, only the controller's image loaded; the session cluster is not used), installs the chart through
scripts/hosts-sync.sh (which records the cluster in the block), and deletes the cluster:

- with a bare `kind delete cluster` (no preStop, no SIGTERM: the block stays), `status` on the host reports
  the block stale, `wait` refuses its names, `--cleanup` removes it: the file is byte-identical again;
- with `scripts/create-cluster.sh delete`, which uninstalls first and waits for the block to go: the file
  is byte-identical when the cluster is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.e2e.conftest import (
    HOST_FILE_CONTENT,
    REPO_ROOT,
    Tools,
    env_or_fail,
    local,
    overlay_config,
    show_file,
    step,
    tools_path,
)

NAME = "app.stale.local"
ADDRESS = "10.99.0.7"
CLI = shutil.which("k8s-hosts-controller", path=str(Path(sys.executable).parent)) or "k8s-hosts-controller"

INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "app", "namespace": "default"},
    "spec": {
        "rules": [
            {
                "host": NAME,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "app", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ]
    },
}


@contextlib.contextmanager
def throwaway_cluster(name: str, host_file: Path, work: Path, images: dict[str, str]) -> Iterator[Tools]:
    """A one-node kind cluster mounting ``host_file`` like the user's kind-config.yaml mounts /etc/hosts;
    deleted at the end whatever happens (a second `kind delete` of a deleted cluster is a no-op)."""
    tools = Tools(
        kind=env_or_fail("E2E_KIND"),
        kubectl=env_or_fail("E2E_KUBECTL"),
        helm=env_or_fail("E2E_HELM"),
        kubeconfig=work / "kubeconfig",
    )
    config = work / "kind-config.yaml"
    config.write_text(yaml.safe_dump(overlay_config(host_file, local(images)), sort_keys=False))
    step(f"kind create cluster --name {name} (throw-away)")
    started = time.monotonic()
    tools.run(tools.kind, "delete", "cluster", "--name", name, check=False)
    try:
        tools.run(
            tools.kind, "create", "cluster", "--name", name, "--config", str(config),
            "--image", images["node"], "--kubeconfig", str(tools.kubeconfig), timeout=600,
        )  # fmt: skip
        tools.kubectl_("wait", "--for=condition=Ready", "node", "--all", "--timeout=240s", timeout=300)
        tools.run(tools.kind, "load", "docker-image", images["controller"], "--name", name, timeout=600)
        print(f"throw-away cluster {name} ready in {time.monotonic() - started:.0f}s", flush=True)
        yield tools
    finally:
        tools.run(tools.kind, "delete", "cluster", "--name", name, check=False)


def environment(tools: Tools, host_file: Path, work: Path, images: dict[str, str]) -> dict[str, str]:
    """What scripts/hosts-sync.sh (cluster mode) and scripts/create-cluster.sh need, tools on PATH."""
    return {
        **os.environ,
        "PATH": tools_path(tools),
        "KUBECONFIG": str(tools.kubeconfig),
        "HOSTS_SYNC_MODE": "cluster",
        "HOSTS_SYNC_KUBECONFIG": str(tools.kubeconfig),
        "HOSTS_SYNC_HOSTS_FILE": str(host_file),
        "HOSTS_SYNC_NAMESPACES": "default",
        "HOSTS_SYNC_IMAGE": images["controller"],
        "HOSTS_SYNC_BIN": CLI,
        "HOSTS_SYNC_TIMEOUT": "180s",
        "CLOUD_PROVIDER_KIND_PID_FILE": str(work / "cloud-provider-kind.pid"),
    }


def script(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    print(f"$ scripts/{name} {' '.join(args)}", flush=True)
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(proc.stdout + proc.stderr, flush=True)
    return proc


def cli(*args: str) -> subprocess.CompletedProcess:
    print(f"$ k8s-hosts-controller {' '.join(args)}", flush=True)
    proc = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120)
    print(proc.stdout + proc.stderr, flush=True)
    return proc


def install_with_a_name(tools: Tools, env: dict[str, str]) -> None:
    """An Ingress with a load-balancer address (set through its status, as an ingress controller would),
    then the chart through scripts/hosts-sync.sh start, which waits until the name is in the file."""
    manifest = tools.kubeconfig.parent / "ingress.yaml"
    manifest.write_text(yaml.safe_dump(INGRESS))
    tools.kubectl_("apply", "-f", str(manifest))
    status = {"status": {"loadBalancer": {"ingress": [{"ip": ADDRESS}]}}}
    tools.kubectl_("patch", "ingress", "app", "-n", "default", "--subresource=status", "--type=merge",
                   "-p", json.dumps(status))  # fmt: skip
    assert script("hosts-sync.sh", "start", NAME, env=env).returncode == 0


def fresh_host_file(work: Path) -> Path:
    path = work / "host-etc" / "hosts"
    path.parent.mkdir()
    path.write_bytes(HOST_FILE_CONTENT)
    path.chmod(0o644)
    path.parent.chmod(0o755)
    return path


def test_a_bare_kind_delete_leaves_a_block_reported_stale_and_cleaned(
    images: dict[str, str], tmp_path: Path
) -> None:
    host_file = fresh_host_file(tmp_path)
    name = "k8s-hosts-stale"
    with throwaway_cluster(name, host_file, tmp_path, images) as tools:
        env = environment(tools, host_file, tmp_path, images)
        install_with_a_name(tools, env)
        show_file(host_file, "with the chart installed")
        live = cli("status", "--hosts-file", str(host_file), "--json")
        doc = json.loads(live.stdout)
        server = tools.kubectl_("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
        assert live.returncode == 0 and doc["state"] == "live", live.stdout
        assert doc["cluster"] == {
            "name": f"kind-{name}",
            "server": server.stdout,
            "node": f"{name}-control-plane",
        }
        assert doc["names"] == [NAME]

        step("kind delete cluster, directly: the node container goes by force, no cleanup runs")
        tools.run(tools.kind, "delete", "cluster", "--name", name)
    show_file(host_file, "after kind delete cluster")
    assert NAME.encode() in host_file.read_bytes(), "no stale block to report: nothing was tested"
    stale = cli("status", "--hosts-file", str(host_file))
    assert stale.returncode == 3 and "STALE" in stale.stdout
    wait = cli("wait", "--hosts-file", str(host_file), "--host", NAME, "--timeout", "3s")
    assert wait.returncode == 1 and "stale" in wait.stderr
    assert cli("--cleanup", "--hosts-file", str(host_file), "--write-mode", "inplace").returncode == 0
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    assert cli("status", "--hosts-file", str(host_file)).returncode == 0


def test_create_cluster_delete_leaves_the_file_byte_identical(images: dict[str, str], tmp_path: Path) -> None:
    host_file = fresh_host_file(tmp_path)
    name = "k8s-hosts-delete"
    with throwaway_cluster(name, host_file, tmp_path, images) as tools:
        env = environment(tools, host_file, tmp_path, images)
        install_with_a_name(tools, env)
        show_file(host_file, "with the chart installed")
        assert NAME.encode() in host_file.read_bytes()
        step(
            "scripts/create-cluster.sh delete: uninstall, wait for the block to go, then kind delete cluster"
        )
        deleted = script("create-cluster.sh", "delete", env={**env, "CLUSTER_NAME": name})
        assert deleted.returncode == 0
        clusters = tools.run(tools.kind, "get", "clusters").stdout.split()
        assert name not in clusters
    show_file(host_file, "after create-cluster.sh delete")
    assert host_file.read_bytes() == HOST_FILE_CONTENT
