"""helm lint --strict and helm template over the values matrix; assertions on the rendered objects."""

from __future__ import annotations

import re

import pytest
import yaml

from controller import __version__
from tests.chart.conftest import (
    CASES,
    CHART,
    LEAST_RULES,
    container,
    is_helm_test,
    kinds,
    lint,
    only,
    render,
    template,
)

NAMESPACED_COMMON = ["DaemonSet", "ServiceAccount"]
OWNER_RBAC = ["Role", "RoleBinding"]  # get on the release's own DaemonSet (--owner-daemonset)
OWNER = "hosts/hosts-sync-k8s-hosts-controller"  # the DaemonSet, as render() names it


@pytest.mark.parametrize("case", CASES)
def test_helm_lint_strict(case, tmp_path):
    proc = lint(tmp_path, CASES[case])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "k8s-hosts-controller"
    assert chart["kubeVersion"] == ">=1.25.0-0"
    assert chart["appVersion"] == __version__, (
        "appVersion (the default image tag) follows controller.__version__"
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # One Role + RoleBinding per watched namespace, and the owner's pair in the release namespace.
        ("defaults", ["DaemonSet", "Pod", *OWNER_RBAC, "Role", "RoleBinding", "Service", "ServiceAccount"]),
        (
            "all-namespaces",
            [
                "ClusterRole",
                "ClusterRoleBinding",
                "DaemonSet",
                "Pod",
                *OWNER_RBAC,
                "Service",
                "ServiceAccount",
            ],
        ),
        (
            "listed-namespaces",
            ["DaemonSet", "Pod"] + ["Role"] * 4 + ["RoleBinding"] * 4 + ["Service", "ServiceAccount"],
        ),
        ("metrics-off", ["DaemonSet", *OWNER_RBAC, "Role", "RoleBinding", "ServiceAccount"]),
        (
            "servicemonitor-on",
            [
                "DaemonSet",
                "Pod",
                *OWNER_RBAC,
                "Role",
                "RoleBinding",
                "Service",
                "ServiceAccount",
                "ServiceMonitor",
            ],
        ),
    ],
)
def test_kinds_per_case(case, expected, tmp_path):
    docs = render(tmp_path, CASES[case])
    assert kinds(docs) == sorted(expected)
    pods = [doc for doc in docs if doc["kind"] == "Pod"]
    assert all(is_helm_test(pod) for pod in pods), "the only Pod is the helm test hook"


def test_helm_test_pod_outlives_success_for_its_logs(tmp_path):
    # `helm test --logs` reads the pod after it succeeded: deleting it on success broke that (seen on kind).
    (pod,) = [doc for doc in render(tmp_path, {}) if doc["kind"] == "Pod"]
    policy = pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"].split(",")
    assert policy == ["before-hook-creation"]


@pytest.mark.parametrize(
    ("values", "account"),
    [
        ({}, "hosts-sync-k8s-hosts-controller"),
        ({"serviceAccount": {"create": False, "name": "mine"}}, "mine"),
    ],
)
def test_helm_test_pod_runs_as_the_releases_serviceaccount_without_a_token(values, account, tmp_path):
    # Not the namespace's "default" account: right after `helm install --create-namespace` it may not exist.
    docs = render(tmp_path, values)
    pod, daemonset = only(docs, "Pod"), only(docs, "DaemonSet")
    assert pod["spec"]["serviceAccountName"] == account
    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == account
    assert pod["spec"]["automountServiceAccountToken"] is False


BASE_ARGS = [
    "--source=ingress",
    "--hosts-file=/host/etc/hosts",
    "--marker=TYK-K8S-HOSTS",
    "--write-mode=inplace",
    "--sync-delay=0.1",
    "--sync-max-delay=1",
    "--log-format=text",
]
OWNER_ARG = f"--owner-daemonset={OWNER}"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("defaults", ["--namespaces=default", *BASE_ARGS, "--metrics-bind-address=:8080", OWNER_ARG]),
        ("all-namespaces", ["--all-namespaces", *BASE_ARGS, "--metrics-bind-address=:8080", OWNER_ARG]),
        (
            "listed-namespaces",
            ["--namespaces=tyk,tyk-dp-1,tyk-dp-2", *BASE_ARGS, "--metrics-bind-address=:8080", OWNER_ARG],
        ),
        ("metrics-off", ["--namespaces=default", *BASE_ARGS, "--metrics-bind-address=0", OWNER_ARG]),
    ],
)
def test_args(case, expected, tmp_path):
    assert container(render(tmp_path, CASES[case]))["args"] == expected


def test_every_value_maps_onto_a_flag(tmp_path):
    docs = render(
        tmp_path,
        {
            "namespaces": ["tyk"],
            "hostsFile": {"containerPath": "/data/hosts", "nodePath": "/srv/hosts"},
            "marker": "MY-BLOCK",
            "cleanupOnExit": False,
            "syncDelay": 0.5,
            "syncMaxDelay": 3,
            "domainFilter": ["local", "test"],
            "ingressClass": ["nginx"],
            "logFormat": "json",
            "verbose": True,
            "writeMode": "auto",
            "metrics": {"port": 9100},
            "extraArgs": ["--resolve-timeout=5"],
            "sources": ["ingress", "gateway-httproute"],
            "cluster": {"name": "kind-dev", "server": "https://127.0.0.1:40123"},
        },
    )
    ctr = container(docs)
    assert ctr["args"] == [
        "--namespaces=tyk",
        "--source=ingress,gateway-httproute",
        "--hosts-file=/data/hosts",
        "--marker=MY-BLOCK",
        "--write-mode=auto",
        "--sync-delay=0.5",
        "--sync-max-delay=3",
        "--log-format=json",
        "--cluster-name=kind-dev",
        "--cluster-server=https://127.0.0.1:40123",
        "--metrics-bind-address=:9100",
        "--no-cleanup-on-exit",
        "--domain-filter=local,test",
        "--ingress-class=nginx",
        "--verbose",
        "--resolve-timeout=5",
    ]
    assert "lifecycle" not in ctr, "cleanupOnExit false: no preStop cleanup either"
    assert ctr["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
    pod = only(docs, "DaemonSet")["spec"]["template"]["spec"]
    assert pod["volumes"][0]["hostPath"]["path"] == "/srv/hosts"
    assert ctr["volumeMounts"][0]["mountPath"] == "/data/hosts"


@pytest.mark.parametrize("case", ["defaults", "listed-namespaces"])
def test_rbac_is_a_role_per_listed_namespace_with_exactly_the_least_rules(case, tmp_path):
    docs = render(tmp_path, CASES[case], release="hosts-sync", namespace="hosts")
    watched = CASES[case].get("namespaces", ["default"])
    # The owner Role (its own DaemonSet, in the release namespace): test_the_pod_may_read_its_own_daemonset...
    roles = [doc for doc in docs if doc["kind"] == "Role" and not is_owner_rbac(doc)]
    bindings = [doc for doc in docs if doc["kind"] == "RoleBinding" and not is_owner_rbac(doc)]
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(watched)
    assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(watched)
    for role in roles:
        assert role["rules"] == LEAST_RULES
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "hosts-sync-k8s-hosts-controller",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "hosts-sync-k8s-hosts-controller", "namespace": "hosts"}
        ]
    assert not [doc for doc in docs if doc["kind"].startswith("Cluster")]


@pytest.mark.parametrize(
    "values",
    [{"allNamespaces": True}, {"namespaces": ["tyk"], "rbac": {"clusterWide": True}}],
    ids=["all-namespaces", "rbac.clusterWide"],
)
def test_rbac_cluster_wide_has_exactly_the_least_rules(values, tmp_path):
    docs = render(tmp_path, values)
    assert only(docs, "ClusterRole")["rules"] == LEAST_RULES
    binding = only(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "hosts-sync-k8s-hosts-controller", "namespace": "hosts"}
    ]
    roles = [doc for doc in docs if doc["kind"] in ("Role", "RoleBinding")]
    assert all(is_owner_rbac(doc) for doc in roles) and len(roles) == 2, "only the owner's Role and binding"


def is_owner_rbac(doc: dict) -> bool:
    return doc["metadata"]["name"] == "hosts-sync-k8s-hosts-controller-owner"


def test_rbac_and_serviceaccount_can_be_left_out(tmp_path):
    docs = render(tmp_path, {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "mine"}})
    assert kinds(docs) == ["DaemonSet", "Pod", "Service"]
    assert only(docs, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


@pytest.mark.parametrize("case", CASES)
def test_security_context(case, tmp_path):
    docs = render(tmp_path, CASES[case])
    pod = only(docs, "DaemonSet")["spec"]["template"]["spec"]
    ctr = container(docs)
    for key in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "initContainers"):
        assert key not in pod
    assert pod["securityContext"] == {
        "runAsUser": 0,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    sc = ctr["securityContext"]
    assert sc["privileged"] is False
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}, "all capabilities dropped, none added"
    assert sc["runAsUser"] == 0
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("case", CASES)
def test_only_the_hosts_file_is_mounted(case, tmp_path):
    docs = render(tmp_path, CASES[case])
    pod = only(docs, "DaemonSet")["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "hosts-file", "hostPath": {"path": "/mnt/host-etc-hosts/hosts", "type": "File"}}
    ]
    assert container(docs)["volumeMounts"] == [{"name": "hosts-file", "mountPath": "/host/etc/hosts"}]


@pytest.mark.parametrize("case", CASES)
def test_prestop_runs_the_cleanup_on_the_same_file_and_marker(case, tmp_path):
    command = container(render(tmp_path, CASES[case]))["lifecycle"]["preStop"]["exec"]["command"]
    assert command == [
        "k8s-hosts-controller",
        "--cleanup",
        "--hosts-file",
        "/host/etc/hosts",
        "--marker",
        "TYK-K8S-HOSTS",
        "--owner-daemonset",
        OWNER,
    ]


@pytest.mark.parametrize("case", CASES)
def test_the_pod_may_read_its_own_daemonset_and_nothing_more(case, tmp_path):
    docs = render(tmp_path, CASES[case])
    daemonset = only(docs, "DaemonSet")["metadata"]
    owner_role = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-owner")]
    assert len(owner_role) == 1
    role = owner_role[0]
    assert role["metadata"]["namespace"] == daemonset["namespace"]
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["daemonsets"],
            "resourceNames": [daemonset["name"]],
            "verbs": ["get"],
        }
    ]
    (binding,) = [
        d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == role["metadata"]["name"]
    ]
    assert binding["metadata"]["namespace"] == daemonset["namespace"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "hosts-sync-k8s-hosts-controller",
            "namespace": daemonset["namespace"],
        }
    ]


@pytest.mark.parametrize(
    "values", [{"cleanupOnExit": False}, {"rbac": {"create": False}}], ids=["no-cleanup", "no-rbac"]
)
def test_no_owner_role_without_cleanup_or_rbac(values, tmp_path):
    docs = render(tmp_path, values)
    assert not [d for d in docs if d["metadata"]["name"].endswith("-owner")]
    has_owner_flag = any(a.startswith("--owner-daemonset") for a in container(docs)["args"])
    assert has_owner_flag == values.get("cleanupOnExit", True), (
        "the flag follows cleanupOnExit, not rbac.create"
    )


@pytest.mark.parametrize("case", [c for c in CASES if c != "metrics-off"])
def test_probes_and_metrics_port(case, tmp_path):
    ctr = container(render(tmp_path, CASES[case]))
    assert ctr["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert ctr["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_metrics_off_has_no_port_probe_service_or_test(tmp_path):
    docs = render(tmp_path, CASES["metrics-off"])
    ctr = container(docs)
    assert "ports" not in ctr and "livenessProbe" not in ctr and "readinessProbe" not in ctr
    assert not [doc for doc in docs if doc["kind"] in ("Service", "ServiceMonitor", "Pod")]


def test_metrics_service_and_servicemonitor_select_the_pods(tmp_path):
    docs = render(tmp_path, CASES["servicemonitor-on"])
    selector = only(docs, "DaemonSet")["spec"]["selector"]["matchLabels"]
    pod_labels = only(docs, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    svc = only(docs, "Service")
    assert svc["spec"]["selector"] == selector
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    monitor = only(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["hosts"]}


def test_helm_test_pod_fetches_metrics_through_the_service(tmp_path):
    docs = render(tmp_path, {})
    pod = only(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "http://hosts-sync-k8s-hosts-controller-metrics.hosts.svc:8080/metrics" in script
    assert "k8s_hosts_controller_build_info" in script
    assert pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_scheduling_defaults(tmp_path):
    docs = render(tmp_path, {})
    ds = only(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in pod["tolerations"]
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert pod["terminationGracePeriodSeconds"] == 30
    # The next pod runs before the old one stops: names never go missing during a rollout (decision 13).
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    # The released image by default; a local image is passed explicitly (scripts/hosts-sync.sh, the e2e).
    assert container(docs)["image"] == f"ghcr.io/tyktechnologies/k8s-hosts-controller:{__version__}"
    assert container(docs)["imagePullPolicy"] == "IfNotPresent"


def test_scheduling_values_pass_through(tmp_path):
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
                ]
            }
        }
    }
    # Helm merges maps: a default key is removed with null, not with {}.
    docs = render(
        tmp_path,
        {
            "nodeSelector": {"node-role.kubernetes.io/control-plane": None},
            "tolerations": [],
            "affinity": affinity,
            "priorityClassName": "system-node-critical",
            "terminationGracePeriodSeconds": 60,
            "updateStrategy": {"type": "OnDelete"},
            "image": {"repository": "ghcr.io/x/y", "tag": "v9", "pullPolicy": "Always"},
        },
    )
    ds = only(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert pod["affinity"] == affinity
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["terminationGracePeriodSeconds"] == 60
    assert ds["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert container(docs)["image"] == "ghcr.io/x/y:v9"


@pytest.mark.parametrize("case", CASES)
def test_names_labels_and_namespaces(case, tmp_path):
    docs = render(tmp_path, CASES[case], release="hs", namespace="infra")
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "k8s-hosts-controller"
        assert labels["app.kubernetes.io/instance"] == "hs"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert re.fullmatch(r"k8s-hosts-controller-\d+\.\d+\.\d+", labels["helm.sh/chart"])
        assert doc["metadata"]["name"].startswith("hs-k8s-hosts-controller")
        if doc["kind"] in ("Role", "RoleBinding"):
            continue  # in the watched namespaces
        if doc["kind"].startswith("Cluster"):
            assert "namespace" not in doc["metadata"]
        else:
            assert doc["metadata"]["namespace"] == "infra"


READ = ["get", "list", "watch"]


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (["service"], [{"apiGroups": [""], "resources": ["services"], "verbs": READ}]),
        (
            ["gateway-httproute", "gateway-tlsroute"],
            [
                {
                    "apiGroups": ["gateway.networking.k8s.io"],
                    "resources": ["gateways", "httproutes", "listenersets", "tlsroutes"],
                    "verbs": READ,
                }
            ],
        ),
        (
            ["ingress", "service", "gateway-grpcroute"],
            [
                LEAST_RULES[0],
                {"apiGroups": [""], "resources": ["services"], "verbs": READ},
                {
                    "apiGroups": ["gateway.networking.k8s.io"],
                    "resources": ["gateways", "grpcroutes", "listenersets"],
                    "verbs": READ,
                },
            ],
        ),
    ],
    ids=["service", "two-route-kinds", "mixed"],
)
def test_rbac_follows_the_enabled_sources(sources, expected, tmp_path):
    docs = render(tmp_path, {"namespaces": ["tyk"], "sources": sources})
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == "tyk"]
    assert role["rules"] == [*expected, LEAST_RULES[1]]
    assert container(docs)["args"][1] == f"--source={','.join(sources)}"
    # Namespaces' labels (allowedRoutes selectors): list and watch, cluster-wide, with a Gateway source only.
    cluster_roles = [d for d in docs if d["kind"] == "ClusterRole"]
    if any(s.startswith("gateway-") for s in sources):
        (namespaces,) = cluster_roles
        assert namespaces["rules"] == [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}
        ]
        (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
        assert binding["roleRef"]["name"] == namespaces["metadata"]["name"]
    else:
        assert cluster_roles == []


def _pod_template(tmp_path, chart, values: dict) -> dict:
    from tests.chart.conftest import KUBE_VERSION, helm, values_file

    proc = helm(
        "template", "hs", str(chart), "--kube-version", KUBE_VERSION, "-f", str(values_file(tmp_path, values))
    )
    assert proc.returncode == 0, proc.stderr
    docs = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    return only(docs, "DaemonSet")["spec"]["template"]


def test_a_chart_upgrade_alone_does_not_change_the_pod_template(tmp_path):
    """A changed pod template restarts the pod for nothing: a new chart version with the same image and
    values must leave it as it was."""
    import shutil

    bumped = tmp_path / "bumped"
    shutil.copytree(CHART, bumped)
    meta = yaml.safe_load((bumped / "Chart.yaml").read_text())
    meta["version"] = "99.0.0"
    (bumped / "Chart.yaml").write_text(yaml.safe_dump(meta))
    values = {"commonLabels": {"team": "platform"}}
    assert _pod_template(tmp_path, CHART, values) == _pod_template(tmp_path, bumped, values)


def test_pod_labels_are_the_selector_labels_and_pod_labels_only(tmp_path):
    docs = render(tmp_path, {"podLabels": {"tier": "infra"}, "commonLabels": {"team": "platform"}})
    ds = only(docs, "DaemonSet")
    selector = ds["spec"]["selector"]["matchLabels"]
    assert ds["spec"]["template"]["metadata"]["labels"] == {**selector, "tier": "infra"}
    assert ds["metadata"]["labels"]["team"] == "platform"  # the DaemonSet itself keeps the full set


def test_the_pod_records_its_node_and_keeps_the_extra_env(tmp_path):
    ctr = container(render(tmp_path, {"extraEnv": [{"name": "TZ", "value": "UTC"}]}))
    assert ctr["env"] == [
        {"name": "K8S_HOSTS_CONTROLLER_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "TZ", "value": "UTC"},
    ]


@pytest.mark.parametrize("server", ["127.0.0.1:6443", "https://a b", "https://x#y"])
def test_a_cluster_server_that_cannot_be_recorded_is_refused(server, tmp_path):
    proc = template(tmp_path, {"cluster": {"server": server}})
    assert proc.returncode != 0 and "cluster" in proc.stderr
