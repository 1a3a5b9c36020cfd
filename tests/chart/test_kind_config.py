"""kind-config.yaml gives the node the host's /etc/hosts at exactly the chart's default hostPath."""

from __future__ import annotations

import yaml

from testkit.controlplane import REPO_ROOT
from tests.chart.conftest import CHART


def test_kind_mount_path_is_the_charts_default_node_path():
    kind = yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert kind["kind"] == "Cluster" and kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [node["role"] for node in kind["nodes"]] == ["control-plane"], "one control-plane node by default"
    mounts = kind["nodes"][0]["extraMounts"]
    hosts = [m for m in mounts if m["hostPath"] == "/etc/hosts"]
    assert len(hosts) == 1
    assert hosts[0]["containerPath"] == values["hostsFile"]["nodePath"]
    assert hosts[0].get("readOnly", False) is False, "the controller writes through this mount"


def test_kind_config_explains_the_single_file_bind_mount():
    text = (REPO_ROOT / "kind-config.yaml").read_text()
    assert "# - role: worker" in text, "a commented worker example"
    for phrase in ("in place", "rename", "inode", "re-create the cluster"):
        assert phrase in text


def test_chart_runs_where_the_kind_config_mounts_the_file():
    # kind labels and taints its control-plane node; the chart's defaults select and tolerate exactly that.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in values["tolerations"]
