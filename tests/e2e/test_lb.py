"""End to end with a real load balancer and a real Ingress controller: MetalLB gives Traefik's LoadBalancer
Service an address from its pool, Traefik publishes it into the status of the Ingresses of its class, the
controller (the chart's DaemonSet, then host mode) writes the names, and `curl http://NAME/` from the host,
resolved through the managed file, goes LB address -> Traefik -> backend pod. Then the address changes on the
load balancer's side and the file follows, nothing restarted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e import lb
from tests.e2e.conftest import HOST_FILE_CONTENT, REPO_ROOT, HostsSync, Tools, show_file, step
from tests.e2e.test_kind import RELEASE, RELEASE_NS, check_then_uninstall
from tests.helpers import block_lines as block
from tests.helpers import eventually

# A kind cluster (or test_kind.py's), MetalLB, Traefik and two controller deployments: minutes.
pytestmark = pytest.mark.timeout(1500)

# The Ingresses of class traefik: (namespace, name, host). Each namespace has its own backend.
APPS = [
    ("tyk", "lb-dashboard", "lb-dash.local"),
    ("tyk-dp-1", "lb-gateway", "lb-gw-dp-1.local"),
]
NAMESPACES = ",".join(sorted({ns for ns, _, _ in APPS}))  # the chart wants them to exist: only this module's
BACKEND = "lb-backend"


@pytest.fixture(scope="module")
def pool(cluster: Tools, lb_pool: lb.Pool, images: dict[str, str]) -> Iterator[lb.Pool]:
    """A backend per namespace and the Ingresses of class traefik, on the session's MetalLB + Traefik; removed
    afterwards (the namespaces' other objects belong to test_kind.py and stay untouched). Yields the pool."""
    apps = app_docs(images["python"])
    try:
        step("backends and the Ingresses of class traefik in tyk, tyk-dp-1")
        lb.apply(cluster, apps)
        for ns, _, _ in APPS:
            cluster.kubectl_(
                "-n", ns, "rollout", "status", f"deployment/{BACKEND}", "--timeout=180s", timeout=200
            )
        yield lb_pool
    finally:
        step("remove the backends and the Ingresses of class traefik")
        workloads = [d for d in apps if d["kind"] != "Namespace"]
        cluster.kubectl_(
            "delete", "--ignore-not-found", "--wait=true", "-f", "-",
            input=yaml.safe_dump_all(workloads), check=False,
        )  # fmt: skip


def app_docs(python_image: str) -> list[dict]:
    docs: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in sorted({a[0] for a in APPS})
    ]
    for ns, name, host in APPS:
        docs += lb.backend_docs(ns, BACKEND, python_image)
        docs.append(lb.ingress_doc(ns, name, host, BACKEND))
    return docs


def expected_lines(ip: str) -> list[str]:
    return sorted(f"{ip} {host}  # {ns}/{name}" for ns, name, host in APPS)


def traefik_status_updates(cluster: Tools) -> list[str]:
    return lb.logs(cluster, lb.TRAEFIK_NS, "deployment/traefik", "Updated ingress status")


def check_traefik_wrote_status(cluster: Tools, ip: str, since: int = 0) -> None:
    """Every Ingress of class traefik carries IP, written by Traefik: its field manager on the status, and
    its own log line for each Ingress after the first SINCE such lines."""
    for ns, name, _ in APPS:
        eventually(
            lambda ns=ns, name=name: lb.ingress_ip(cluster, ns, name) == ip,
            120,
            what=f"{ns}/{name}: {ip}",
            interval=1,
        )
        writers = lb.status_writers(cluster, ns, name)
        print(f"{ns}/{name}: status.loadBalancer {ip}, written by {writers}")
        assert any(w.startswith("traefik") for w in writers), f"Traefik did not write {ns}/{name}'s status"

    def logged() -> list[str] | None:
        lines = traefik_status_updates(cluster)[since:]
        done = all(any(f"ingress={n} namespace={ns}" in line for line in lines) for ns, n, _ in APPS)
        return lines if done else None

    lines = eventually(logged, 30, 1, what="Traefik's 'Updated ingress status' line for each Ingress")
    print("Traefik's log:\n" + "\n".join(lines))


def check_curl_through_traefik(cluster: Tools, host_file: Path) -> None:
    """curl by name from the host answers with each namespace's own backend, through Traefik's Ingress
    router."""
    for ns, _, host in APPS:
        lb.curl_through_traefik(cluster, host_file, host, ns, BACKEND, router="@kubernetes")


def test_lb_in_cluster(cluster: Tools, pool: lb.Pool, host_file: Path, images: dict[str, str]) -> None:
    ip = lb.lb_address(cluster)
    step(f"Traefik published MetalLB's address {ip} (pool {pool.first}-{pool.last})")
    check_traefik_wrote_status(cluster, ip)

    assert host_file.read_bytes() == HOST_FILE_CONTENT
    step("helm install hosts-sync ./chart, for the Ingresses of class traefik (--set ingressClass={traefik})")
    repo, _, tag = images["controller"].rpartition(":")
    cluster.helm_(
        "install", RELEASE, str(REPO_ROOT / "chart"), "--namespace", RELEASE_NS, "--create-namespace",
        "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
        "--set", f"namespaces={{{NAMESPACES}}}", "--set", "ingressClass={traefik}",
        "--wait", "--timeout", "5m", timeout=360,
    )  # fmt: skip
    check_then_uninstall(cluster, host_file, lambda: check_in_cluster(cluster, pool, host_file, ip))


def check_in_cluster(cluster: Tools, pool: lb.Pool, host_file: Path, ip: str) -> None:
    eventually(lambda: sorted(block(host_file)) == expected_lines(ip), 120, 0.5, what="the names in the file")
    show_file(host_file, "written by the chart's DaemonSet from Traefik's status")
    assert host_file.read_bytes().startswith(HOST_FILE_CONTENT), "the user's lines are untouched"

    step("curl by name: LB address -> Traefik -> backend")
    check_curl_through_traefik(cluster, host_file)

    since = len(traefik_status_updates(cluster))
    ip = lb.move_lb(cluster, ip, pool)
    check_traefik_wrote_status(cluster, ip, since)
    eventually(
        lambda: sorted(block(host_file)) == expected_lines(ip), 120, 0.5, what="the moved address in the file"
    )
    show_file(host_file, "after the load balancer moved")
    check_curl_through_traefik(cluster, host_file)

    step("kubectl logs: the controller's lines for these names")
    out = cluster.kubectl_("-n", RELEASE_NS, "logs", "daemonset/" + daemonset(cluster), quiet=True).stdout
    lines = [line for line in out.splitlines() if any(host in line for _, _, host in APPS)]
    print("\n".join(lines))
    for _, _, host in APPS:
        assert any(f"added {host}" in line for line in lines), f"no 'added {host}' line"
        assert any(f"updated {host} -> {ip}" in line for line in lines), f"no 'updated {host}' line"


def daemonset(cluster: Tools) -> str:
    sets = cluster.kubectl_json(
        "-n", RELEASE_NS, "get", "daemonsets", "-l", f"app.kubernetes.io/instance={RELEASE}"
    )
    return sets["items"][0]["metadata"]["name"]


def test_lb_host_mode(cluster: Tools, pool: lb.Pool, host_file: Path, tmp_path: Path) -> None:
    """scripts/hosts-sync.sh with the CLI on the host, for the Ingresses of class traefik; then the load
    balancer moves again while it runs."""
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    ip = lb.lb_address(cluster)
    hosts_sync = HostsSync(cluster, host_file, NAMESPACES, tmp_path, "--ingress-class", "traefik")

    step("host mode: scripts/hosts-sync.sh start (--ingress-class traefik)")
    try:
        hosts_sync("start")
        hosts_sync("wait", *(host for _, _, host in APPS))
        assert sorted(block(host_file)) == expected_lines(ip)
        show_file(host_file, "written by the controller on the host")
        check_curl_through_traefik(cluster, host_file)

        since = len(traefik_status_updates(cluster))
        ip = lb.move_lb(cluster, ip, pool)
        check_traefik_wrote_status(cluster, ip, since)
        eventually(lambda: sorted(block(host_file)) == expected_lines(ip), 120, 0.5, what="the moved address")
        show_file(host_file, "after the load balancer moved, the controller still running")
        check_curl_through_traefik(cluster, host_file)
    finally:
        hosts_sync("stop")
    print(hosts_sync.log())
    for _, _, host in APPS:
        assert f"updated {host} -> {ip}" in hosts_sync.log(), f"no 'updated {host}' line in the log"
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    print("byte-identical to the file before start")
