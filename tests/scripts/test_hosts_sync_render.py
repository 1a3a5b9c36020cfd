"""`scripts/hosts-sync.sh render` prints what `start` would run, installing nothing: the controller's command
line (host mode) or the chart rendered by the real helm with the values start passes (cluster mode). Values
with quotes, commas, `=`, backslashes or spaces reach the command and the manifests exactly as given."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from testkit.controlplane import BUILD_COMMAND, bin_dir
from testkit.tools import find_tool

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "hosts-sync.sh"
NODE_PATH = "/mnt/a\"b,c=d\\e'f"
CLUSTER_NAME = 'kind-"x",y=z\\w'
IMAGE_REPO = 'reg.local:5000/my "img",a=b\\c'


def render(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    helm_dir = bin_dir()
    if not (helm_dir / "helm").exists():
        pytest.fail(f"helm missing in {helm_dir}; build it with: {BUILD_COMMAND}", pytrace=False)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    full = {
        **os.environ,
        "PATH": f"{helm_dir}:{os.environ['PATH']}",
        "HOSTS_SYNC_HOSTS_FILE": str(hosts),
        "HOSTS_SYNC_KUBECONFIG": str(tmp_path / "no-kubeconfig"),  # render needs no cluster
        "HOSTS_SYNC_CLUSTER_SERVER": "https://127.0.0.1:6443",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT), "render"], env=full, capture_output=True, text=True, timeout=120
    )


def daemonset(manifests: str) -> dict:
    return next(d for d in yaml.safe_load_all(manifests) if d and d["kind"] == "DaemonSet")


def test_cluster_render_keeps_odd_values_exactly(tmp_path):
    result = render(
        tmp_path,
        HOSTS_SYNC_MODE="cluster",
        HOSTS_SYNC_NAMESPACES=" tyk , tyk-dp-1",
        HOSTS_SYNC_NODE_HOSTS_PATH=NODE_PATH,
        HOSTS_SYNC_CLUSTER_NAME=CLUSTER_NAME,
        HOSTS_SYNC_IMAGE=f"{IMAGE_REPO}:v1",
    )
    assert result.returncode == 0, result.stderr
    pod = daemonset(result.stdout)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"{IMAGE_REPO}:v1"
    assert f"--cluster-name={CLUSTER_NAME}" in container["args"]
    assert "--namespaces=tyk,tyk-dp-1" in container["args"]
    assert NODE_PATH in [v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v]


def test_cluster_render_names_a_marker_the_chart_refuses(tmp_path):
    """The chart's schema judges the marker it is given, instead of helm failing on broken JSON."""
    result = render(tmp_path, HOSTS_SYNC_MODE="cluster", HOSTS_SYNC_NAMESPACES="tyk", HOSTS_SYNC_MARKER='a"b')
    assert result.returncode == 1
    assert "/marker" in result.stderr and 'a"b' in result.stderr, result.stderr
    assert result.stdout == ""


def test_host_render_is_the_command_start_runs(tmp_path):
    controller = find_tool("k8s-hosts-controller")
    if controller is None:
        pytest.fail("k8s-hosts-controller not found: pip install -e .", pytrace=False)
    marker = 'MY\\tBLOCK "x",y=z'
    kubeconfig = tmp_path / "kube config"
    kubeconfig.write_text("{}\n")
    result = render(
        tmp_path,
        HOSTS_SYNC_BIN=controller,
        HOSTS_SYNC_NAMESPACES="tyk,tyk-dp-1",
        HOSTS_SYNC_MARKER=marker,
        HOSTS_SYNC_KUBECONFIG=str(kubeconfig),
        HOSTS_SYNC_EXTRA_ARGS="--verbose",
    )
    assert result.returncode == 0, result.stderr
    words = shlex.split(result.stdout)
    assert words[:3] == ["env", "HOSTS_SYNC=1", controller]
    assert words[words.index("--marker") + 1] == marker
    assert words[words.index("--hosts-file") + 1] == str(tmp_path / "hosts")
    assert words[words.index("--namespaces") + 1] == "tyk,tyk-dp-1"
    assert words[words.index("--kubeconfig") + 1] == str(kubeconfig)
    assert words[-1] == "--verbose"
