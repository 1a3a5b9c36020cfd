"""The scripts' command-line behaviour that needs no cluster: usage text, usage errors, missing tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOSTS_SYNC = REPO / "scripts" / "hosts-sync.sh"
CREATE_CLUSTER = REPO / "scripts" / "create-cluster.sh"
BASH = "/bin/bash"


def run(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(script), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("script", [HOSTS_SYNC, CREATE_CLUSTER], ids=lambda p: p.name)
def test_help(script: Path):
    result = run(script, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage:")


def test_hosts_sync_usage_errors():
    assert run(HOSTS_SYNC).returncode == 2
    bad = run(HOSTS_SYNC, "frobnicate")
    assert bad.returncode == 2 and "unknown verb 'frobnicate'" in bad.stderr
    mode = run(HOSTS_SYNC, "status", env={"HOSTS_SYNC_MODE": "kubelet"})
    assert mode.returncode == 2 and "HOSTS_SYNC_MODE must be host or cluster" in mode.stderr


def test_hosts_sync_start_needs_namespaces(tmp_path: Path):
    result = run(HOSTS_SYNC, "start", env={"HOSTS_SYNC_NAMESPACES": "", "HOSTS_SYNC_PID_FILE": str(tmp_path / "p")})
    assert result.returncode == 2
    assert "HOSTS_SYNC_NAMESPACES" in result.stderr


def test_hosts_sync_missing_controller_is_explained(tmp_path: Path):
    result = run(HOSTS_SYNC, "start", env={
        "HOSTS_SYNC_NAMESPACES": "a", "HOSTS_SYNC_BIN": "no-such-k8s-hosts-controller",
        "HOSTS_SYNC_PID_FILE": str(tmp_path / "p"), "HOSTS_SYNC_LOG_FILE": str(tmp_path / "l"),
    })
    assert result.returncode == 1
    assert "not found" in result.stderr and "pip install" in result.stderr


def test_hosts_sync_status_not_running(tmp_path: Path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    result = run(HOSTS_SYNC, "status", env={"HOSTS_SYNC_PID_FILE": str(tmp_path / "none.pid"),
                                            "HOSTS_SYNC_HOSTS_FILE": str(hosts)})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "not running" in result.stdout


def test_create_cluster_names_every_missing_tool(tmp_path: Path):
    # A PATH with nothing but what the script needs before checking its tools.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):
        os.symlink(subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True,
                                  check=True).stdout.strip(), bin_dir / tool)
    result = run(CREATE_CLUSTER, env={"PATH": str(bin_dir)})
    assert result.returncode == 1
    for hint in ("docker: install Docker", "kind: go install sigs.k8s.io/kind@",
                 "kubectl: see https://kubernetes.io/docs/tasks/tools/", "helm: see https://helm.sh/docs/intro/install/",
                 "cloud-provider-kind: go install sigs.k8s.io/cloud-provider-kind@"):
        assert hint in result.stderr, result.stderr


def test_create_cluster_without_loadbalancer_does_not_need_cloud_provider_kind(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(subprocess.run(["bash", "-c", "command -v dirname"], capture_output=True, text=True,
                              check=True).stdout.strip(), bin_dir / "dirname")
    result = run(CREATE_CLUSTER, env={"PATH": str(bin_dir), "NGINX_SVC_TYPE": "NodePort"})
    assert result.returncode == 1
    assert "cloud-provider-kind" not in result.stderr


def test_create_cluster_rejects_unknown_service_type():
    result = run(CREATE_CLUSTER, env={"NGINX_SVC_TYPE": "Ingress"})
    assert result.returncode == 1
    assert "NGINX_SVC_TYPE must be" in result.stderr
