"""End to end on a real kind cluster: the user's Ingresses, the chart's DaemonSet writing the host's hosts
file through kind's extraMounts, and host mode with scripts/hosts-sync.sh, all checked from the host side."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from testkit.samples import TYK_INGRESSES
from tests.e2e.conftest import (
    HOST_FILE_CONTENT,
    REPO_ROOT,
    HostsSync,
    Tools,
    chart_image_args,
    curl_by_name,
    show_file,
    step,
)
from tests.helpers import block_lines as block
from tests.helpers import eventually

# A kind cluster, image loads and two controller deployments: minutes, not the unit tests' 300 s.
pytestmark = pytest.mark.timeout(1500)

TYK = TYK_INGRESSES  # the user's five Ingresses (namespace, name, host)
NAMESPACES = "tyk,tyk-dp-1,tyk-dp-2"
RELEASE, RELEASE_NS = "hosts-sync", "hosts-sync"
DAEMONSET = f"daemonset/{RELEASE}-k8s-hosts-controller"
BACKEND_BODY = "hello from the e2e backend"
MOVED_IP = "198.51.100.7"  # TEST-NET-2: an address the load balancer "moves" to; no traffic is sent there


def cli(*args: str, timeout: float = 200) -> subprocess.CompletedProcess:
    """The controller's own CLI, as installed in the running environment."""
    return subprocess.run(
        [sys.executable, "-m", "controller", *args], capture_output=True, text=True, timeout=timeout
    )


def wait_hosts(host_file: Path, hosts: list[str], absent: bool = False, timeout: str = "180s") -> None:
    args = ["wait", "--hosts-file", str(host_file), "--host", ",".join(hosts), "--timeout", timeout]
    proc = cli(*args, *(["--absent"] if absent else []))
    assert proc.returncode == 0, f"k8s-hosts-controller {' '.join(args)}: {proc.stdout}{proc.stderr}"


def check_then_uninstall(cluster: Tools, host_file: Path, check: Callable[[], None]) -> None:
    """CHECK against the installed chart, then `helm uninstall`: the file must be byte-identical to before.
    The release is uninstalled when CHECK fails too, so that the next test starts without it."""
    try:
        check()
    except BaseException:
        # Leave the next test a clean file: the release goes, and its preStop takes the block with it.
        cluster.helm_("uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait", timeout=240, check=False)
        with contextlib.suppress(AssertionError):
            eventually(lambda: host_file.read_bytes() == HOST_FILE_CONTENT, 90, what="the file as before")
        raise
    step("helm uninstall: the file is byte-identical to before")
    cluster.helm_("uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait", "--timeout", "3m", timeout=240)
    eventually(lambda: host_file.read_bytes() == HOST_FILE_CONTENT, 90, what="the file to be as before")
    print("byte-identical to the file before helm install")


def helm_test(cluster: Tools) -> None:
    """`helm test`, then the test pod's log. Not `helm test --logs`: when the pod cannot be created, that
    prints "pods ... not found" instead of the reason; events and the pod's state say what went wrong."""
    pod = f"{RELEASE}-k8s-hosts-controller-test-metrics"
    tested = cluster.helm_("test", RELEASE, "--namespace", RELEASE_NS, timeout=300, check=False)
    print(tested.stdout, tested.stderr)
    print(cluster.kubectl_("-n", RELEASE_NS, "logs", pod, check=False).stdout)
    if tested.returncode != 0:
        print(cluster.kubectl_("-n", RELEASE_NS, "describe", "pod", pod, check=False).stdout)
        events = cluster.kubectl_("-n", RELEASE_NS, "get", "events", "--sort-by=.lastTimestamp", check=False)
        print(events.stdout)
    assert tested.returncode == 0, f"helm test failed: {tested.stderr.strip()}"


def apply(cluster: Tools, docs: list[dict]) -> None:
    cluster.kubectl_("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def set_lb_ip(cluster: Tools, namespace: str, name: str, ip: str) -> None:
    patch = json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})
    cluster.kubectl_(
        "-n", namespace, "patch", "ingress", name, "--subresource=status", "--type=merge", "-p", patch
    )


@pytest.fixture(scope="module")
def tyk(cluster: Tools, node_ip: str, images: dict[str, str]) -> str:
    """The namespaces, a backend answering HTTP on the node's address, and the five Ingresses with the node's
    address as their load-balancer address (as cloud-provider-kind would publish one)."""
    step("namespaces, backend and the user's five Ingresses")
    docs: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES.split(",")
    ]
    docs.append(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "backend", "namespace": "tyk"},
            "spec": {
                "selector": {"matchLabels": {"app": "backend"}},
                "template": {
                    "metadata": {"labels": {"app": "backend"}},
                    "spec": {
                        # Port 80 of the node's address: what the Ingress address leads to in this e2e.
                        "hostNetwork": True,
                        "containers": [
                            {
                                "name": "http",
                                "image": images["python"],
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["sh", "-c"],
                                "args": [
                                    f"mkdir -p /srv && echo '{BACKEND_BODY}' > /srv/index.html && "
                                    "exec python3 -m http.server 80 --directory /srv"
                                ],
                                "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1},
                            }
                        ],
                    },
                },
            },
        }
    )
    for ns, name, host in TYK:
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"rules": [{"host": host}]},
            }
        )
    apply(cluster, docs)
    for ns, name, _ in TYK:
        set_lb_ip(cluster, ns, name, node_ip)
    cluster.kubectl_("-n", "tyk", "rollout", "status", "deployment/backend", "--timeout=180s", timeout=200)
    return node_ip


def controller_pod(cluster: Tools) -> dict:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    pods = cluster.kubectl_json("-n", RELEASE_NS, "get", "pods", "-l", selector)
    running = [p for p in pods["items"] if p["metadata"].get("deletionTimestamp") is None]
    assert len(running) == 1, f"one controller pod expected, found {[p['metadata']['name'] for p in running]}"
    return running[0]


def test_in_cluster(cluster: Tools, tyk: str, host_file: Path, images: dict[str, str]) -> None:
    node_ip = tyk
    hosts = [host for _, _, host in TYK]
    show_file(host_file, "before helm install")
    assert host_file.read_bytes() == HOST_FILE_CONTENT

    step("helm install hosts-sync ./chart (the chart's defaults apart from images and namespaces)")
    cluster.helm_(
        "install", RELEASE, str(REPO_ROOT / "chart"), "--namespace", RELEASE_NS, "--create-namespace",
        *chart_image_args(images), "--set", f"namespaces={{{NAMESPACES}}}",
        "--wait", "--timeout", "5m", timeout=360,
    )  # fmt: skip
    daemonset = f"daemonset/{RELEASE}-k8s-hosts-controller"

    def check() -> None:
        # helm --wait counts a DaemonSet done with maxUnavailable pods missing: on one node, none is needed.
        cluster.kubectl_("-n", RELEASE_NS, "rollout", "status", daemonset, "--timeout=180s", timeout=200)
        print(cluster.kubectl_("-n", RELEASE_NS, "get", "pods", "-o", "wide").stdout)
        pod = controller_pod(cluster)
        assert pod["status"]["phase"] == "Running"
        node = cluster.kubectl_json("get", "nodes")["items"][0]["metadata"]["name"]
        assert pod["spec"]["nodeName"] == node

        step("the five Ingresses appear in the host-side file (extraMounts + hostPath)")
        wait_hosts(host_file, hosts)
        show_file(host_file, "after the DaemonSet's first sync")
        expected = sorted(f"{node_ip} {host}  # {ns}/{name}" for ns, name, host in TYK)
        assert sorted(block(host_file)) == expected
        assert host_file.read_bytes().startswith(HOST_FILE_CONTENT), "the user's lines are untouched"

        step("a name is reachable BY NAME from the host")
        assert BACKEND_BODY in curl_by_name(host_file, "chart-dash.local")

        step("the load balancer moves tyk/dashboard-ingress; then tyk/mdcb-ingress is deleted")
        set_lb_ip(cluster, "tyk", "dashboard-ingress", MOVED_IP)
        moved = f"{MOVED_IP} chart-dash.local  # tyk/dashboard-ingress"
        eventually(lambda: moved in block(host_file), 60, what="the moved IP")
        set_lb_ip(cluster, "tyk", "dashboard-ingress", node_ip)
        cluster.kubectl_("-n", "tyk", "delete", "ingress", "mdcb-ingress")
        wait_hosts(host_file, ["chart-mdcb.local"], absent=True)
        back = f"{node_ip} chart-dash.local  # tyk/dashboard-ingress"
        eventually(lambda: back in block(host_file), 60, what="the IP back")
        show_file(host_file, "after the IP change and the delete")

        step("a refused name: a wildcard host gets a Warning Event on its Ingress")
        apply(
            cluster,
            [
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "metadata": {"name": "wildcard", "namespace": "tyk"},
                    "spec": {"rules": [{"host": "*.apps.local"}]},
                }
            ],
        )
        set_lb_ip(cluster, "tyk", "wildcard", node_ip)

        def described() -> str:
            out = cluster.kubectl_("-n", "tyk", "describe", "ingress", "wildcard", quiet=True).stdout
            return out if "HostRefused" in out else ""

        print(eventually(described, 60, what="a HostRefused Event on tyk/wildcard"))
        assert not any("*.apps.local" in line for line in block(host_file))

        step("kubectl logs: what changed and why")
        logs = cluster.kubectl_("-n", RELEASE_NS, "logs", daemonset)
        print(logs.stdout)
        for expected in (
            "added chart-dash.local",
            f"updated chart-dash.local -> {MOVED_IP}",
            "removed chart-mdcb.local",
            "refused",
        ):
            assert expected in logs.stdout, f"kubectl logs lacks {expected!r}"

        step("/metrics through the chart's Service (the API server's service proxy)")
        selector = f"app.kubernetes.io/instance={RELEASE}"
        svc = cluster.kubectl_json("-n", RELEASE_NS, "get", "svc", "-l", selector)
        service = svc["items"][0]
        port = service["spec"]["ports"][0]["port"]
        proxy = f"/api/v1/namespaces/{RELEASE_NS}/services/{service['metadata']['name']}:{port}/proxy/metrics"
        raw = cluster.kubectl_("get", "--raw", proxy).stdout
        families = text_string_to_metric_families(raw)
        samples = {s.name: s.value for f in families for s in f.samples if not s.labels}
        print({k: v for k, v in samples.items() if k.startswith("k8s_hosts_controller_")})
        assert samples["k8s_hosts_controller_managed_entries"] == 4
        assert samples["k8s_hosts_controller_ready"] == 1

        step("helm test (the chart's own test pod scrapes the metrics Service)")
        helm_test(cluster)

    check_then_uninstall(cluster, host_file, check)
    show_file(host_file, "after helm uninstall")


def install(cluster: Tools, images: dict[str, str]) -> None:
    cluster.helm_(
        "install", RELEASE, str(REPO_ROOT / "chart"), "--namespace", RELEASE_NS, "--create-namespace",
        *chart_image_args(images), "--set", f"namespaces={{{NAMESPACES}}}",
        "--wait", "--timeout", "5m", timeout=360,
    )  # fmt: skip
    cluster.kubectl_("-n", RELEASE_NS, "rollout", "status", DAEMONSET, "--timeout=180s", timeout=200)


def synced_hosts(cluster: Tools, host_file: Path) -> list[str]:
    """The user's Ingress hosts that exist now (test_in_cluster deletes one), once they are in the file."""
    ingresses = cluster.kubectl_json("get", "ingress", "--all-namespaces")["items"]
    present = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in ingresses}
    hosts = [host for ns, name, host in TYK if (ns, name) in present]
    wait_hosts(host_file, hosts)
    return hosts


class Poller:
    """Reads the host-side file every 20 ms in a thread, as a resolver would, counting the reads that lack
    any of HOSTS in the block (a read that caught a write half-done counts as missing too)."""

    def __init__(self, host_file: Path, hosts: list[str]) -> None:
        self.host_file, self.hosts = host_file, hosts
        self.polls = self.missing = 0
        self.first_missing: float | None = None  # monotonic times: how long the names were missing
        self.last_missing: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                names = {line.split()[1] for line in block(self.host_file)}
            except Exception:  # a file that does not parse lacks the names too
                names = set()
            self.polls += 1
            if not all(host in names for host in self.hosts):
                self.missing += 1
                self.last_missing = time.monotonic()
                self.first_missing = self.first_missing or self.last_missing
            self._stop.wait(0.02)

    def gap(self) -> float:
        """Seconds from the first read without a name to the last one (0 when none)."""
        return (self.last_missing or 0) - (self.first_missing or 0)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join(5)


def replace_pod(cluster: Tools, how: str, run: int) -> None:
    """Replace the controller's pod HOW; return once the old pod is gone and the next one is ready."""
    old = controller_pod(cluster)["metadata"]["name"]
    if how == "rollout restart":
        cluster.kubectl_("-n", RELEASE_NS, "rollout", "restart", DAEMONSET)
    elif how == "helm upgrade":  # a changed pod template: a rollout
        cluster.helm_(
            "upgrade", RELEASE, str(REPO_ROOT / "chart"), "--namespace", RELEASE_NS, "--reuse-values",
            "--set", f"podAnnotations.e2e-run=run-{run}", timeout=200,
        )  # fmt: skip
    else:
        cluster.kubectl_("-n", RELEASE_NS, "delete", "pod", old, "--wait=false")

    def old_gone() -> bool:
        got = cluster.kubectl_(
            "-n", RELEASE_NS, "get", "pod", old, "--ignore-not-found", "-o", "name", quiet=True
        )
        return not got.stdout.strip()

    eventually(old_gone, 180, 0.5, f"the old pod {old} to be gone")
    cluster.kubectl_("-n", RELEASE_NS, "rollout", "status", DAEMONSET, "--timeout=180s", timeout=200)
    assert controller_pod(cluster)["metadata"]["name"] != old


def follow_logs(cluster: Tools, path: Path) -> subprocess.Popen:
    """`kubectl logs -f` of the controller's pod into PATH, until the pod's container ends: what its SIGTERM
    path decided (the preStop hook's own output goes to no log)."""
    pod = controller_pod(cluster)["metadata"]["name"]
    with open(path, "wb") as out:
        return subprocess.Popen(
            [cluster.kubectl, "--kubeconfig", str(cluster.kubeconfig), "-n", RELEASE_NS, "logs", "-f", pod],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def print_decision(follower: subprocess.Popen, path: Path) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        follower.wait(timeout=60)
    follower.kill()
    lines = [line for line in path.read_text(errors="replace").splitlines() if "DaemonSet" in line]
    print("the stopping pod's decision:", *lines or ["(none logged)"], sep="\n  ")


def test_replacing_the_pod_keeps_the_names(
    cluster: Tools, tyk: str, host_file: Path, images: dict[str, str], tmp_path: Path
) -> None:
    """Names follow the release, not the pod (docs/in-cluster.md, lifecycle): every replacement of the pod
    leaves the names in place (the old pod leaves the block to the next one, which runs before it stops:
    maxSurge 1); `helm uninstall` still removes the block, byte-identical."""
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    step("helm install; the names in the host-side file")
    install(cluster, images)

    def check() -> None:
        hosts = synced_hosts(cluster, host_file)
        print(f"polled names: {hosts}")
        figures = []
        for how in ("rollout restart", "helm upgrade", "kubectl delete pod"):
            for run in range(1, 4):
                step(f"{how} ({run}/3), polling the file every 20 ms")
                with Poller(host_file, hosts) as poller:
                    replace_pod(cluster, how, run)
                    time.sleep(0.5)  # a late removal by the old pod's process would show here
                figures.append((how, run, poller.polls, poller.missing, poller.gap()))
        step("polls without every name, of all polls (every 20 ms)")
        for how, run, polls, missing, gap in figures:
            print(f"{how:20} run {run}: {missing}/{polls} polls missing, over {gap:.2f} s")
        assert [missing for _, _, _, missing, _ in figures] == [0] * 9, figures
        assert host_file.read_bytes().startswith(HOST_FILE_CONTENT)
        followed.append(follow_logs(cluster, tmp_path / "last-pod.log"))

    followed: list[subprocess.Popen] = []
    check_then_uninstall(cluster, host_file, check)
    for follower in followed:
        print_decision(follower, tmp_path / "last-pod.log")


def test_kubectl_delete_daemonset_removes_the_block(
    cluster: Tools, tyk: str, host_file: Path, images: dict[str, str], tmp_path: Path
) -> None:
    """Deleting the release's DaemonSet takes the names with it, byte-identical, without `helm uninstall`."""
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    step("helm install; then kubectl delete daemonset")
    install(cluster, images)
    try:
        synced_hosts(cluster, host_file)
        follower = follow_logs(cluster, tmp_path / "pod.log")
        cluster.kubectl_("-n", RELEASE_NS, "delete", DAEMONSET, "--wait=true", "--timeout=120s", timeout=200)
        eventually(lambda: host_file.read_bytes() == HOST_FILE_CONTENT, 90, what="the file as before")
        print("byte-identical to the file before helm install")
        print_decision(follower, tmp_path / "pod.log")
    finally:
        cluster.helm_("uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait", timeout=240, check=False)
    assert host_file.read_bytes() == HOST_FILE_CONTENT


def test_host_mode(cluster: Tools, tyk: str, host_file: Path, tmp_path: Path) -> None:
    """scripts/hosts-sync.sh start|wait|stop with the CLI on the host, against the same cluster and file."""
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    hosts_sync = HostsSync(cluster, host_file, NAMESPACES, tmp_path)

    step("host mode: scripts/hosts-sync.sh start")
    try:
        hosts_sync("start")
        hosts_sync("wait", "chart-dash.local", "chart-gw.local", "chart-gw-dp-1.local", "chart-gw-dp-2.local")
        show_file(host_file, "written by the controller on the host")
        assert f"{tyk} chart-gw-dp-1.local  # tyk-dp-1/gateway-ingress" in block(host_file)
        assert BACKEND_BODY in curl_by_name(host_file, "chart-gw.local")
    finally:
        hosts_sync("stop")
    print(hosts_sync.log())
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    show_file(host_file, "after hosts-sync.sh stop")
    print("byte-identical to the file before start")
