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
from tests.e2e.conftest import HOST_FILE_CONTENT, REPO_ROOT, HostsSync, Tools, step
from tests.e2e.test_kind import RELEASE, RELEASE_NS, curl_by_name, show_file
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


def body(namespace: str) -> str:
    return f"hello from {namespace}/{BACKEND}"


@pytest.fixture(scope="module")
def pool(cluster: Tools, load_balancer: lb.Pool, images: dict[str, str]) -> Iterator[lb.Pool]:
    """A backend per namespace and the Ingresses of class traefik, behind the session's MetalLB + Traefik; all
    removed afterwards (the namespaces' other objects belong to test_kind.py and stay untouched)."""
    apps = app_docs(images["python"])
    try:
        step("backends and the Ingresses of class traefik in tyk, tyk-dp-1")
        lb.apply(cluster, apps)
        for ns, _, _ in APPS:
            cluster.kubectl_(
                "-n", ns, "rollout", "status", f"deployment/{BACKEND}", "--timeout=180s", timeout=200
            )
        yield load_balancer
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
    labels = {"app": BACKEND}
    for ns, name, host in APPS:
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": BACKEND, "namespace": ns},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "securityContext": {
                                "runAsUser": 65534,
                                "runAsGroup": 65534,
                                "runAsNonRoot": True,
                            },
                            "containers": [
                                {
                                    "name": "http",
                                    "image": python_image,
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": ["sh", "-c"],
                                    "args": [
                                        f"mkdir -p /tmp/srv && echo '{body(ns)}' > /tmp/srv/index.html && "
                                        "exec python3 -m http.server 8080 --directory /tmp/srv"
                                    ],
                                    "ports": [{"name": "http", "containerPort": 8080}],
                                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                                }
                            ],
                        },
                    },
                },
            }
        )
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": BACKEND, "namespace": ns},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
            }
        )
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "ingressClassName": "traefik",
                    "rules": [
                        {
                            "host": host,
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": BACKEND, "port": {"name": "http"}}},
                                    }
                                ]
                            },
                        }
                    ],
                },
            }
        )
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
    """curl by name from the host answers with each namespace's own backend, and Traefik's access log shows
    that request (a line more than before) proxied to that backend's pod."""
    for ns, _, host in APPS:
        seen = len(lb.logs(cluster, lb.TRAEFIK_NS, "deployment/traefik", '"GET / HTTP/1.1" 200'))
        out = eventually(lambda host=host: try_curl(host_file, host), 60, 2, what=f"curl http://{host}/")
        assert body(ns) in out, f"http://{host}/ did not answer with {ns}'s backend: {out!r}"
        pod_ips = [
            p["status"]["podIP"]
            for p in cluster.kubectl_json("-n", ns, "get", "pods", "-l", f"app={BACKEND}")["items"]
        ]
        access = lb.logs(cluster, lb.TRAEFIK_NS, "deployment/traefik", '"GET / HTTP/1.1" 200')[seen:]
        through = [line for line in access if any(f"http://{pod_ip}:8080" in line for pod_ip in pod_ips)]
        print(f"Traefik's access log for {ns}/{BACKEND} ({', '.join(pod_ips)}):\n" + "\n".join(through))
        assert through, f"Traefik's access log has no request proxied to {ns}/{BACKEND}"


def try_curl(host_file: Path, host: str) -> str | None:
    try:
        return curl_by_name(host_file, host)
    except AssertionError:
        return None


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
    try:
        check_in_cluster(cluster, pool, host_file, ip)
    except BaseException:
        cluster.helm_("uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait", timeout=240, check=False)
        raise

    step("helm uninstall: the file is byte-identical to before")
    cluster.helm_("uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait", "--timeout", "3m", timeout=240)
    eventually(lambda: host_file.read_bytes() == HOST_FILE_CONTENT, 90, what="the file to be as before")
    print("byte-identical to the file before helm install")


def check_in_cluster(cluster: Tools, pool: lb.Pool, host_file: Path, ip: str) -> None:
    eventually(lambda: sorted(block(host_file)) == expected_lines(ip), 120, 0.5, what="the names in the file")
    show_file(host_file, "written by the chart's DaemonSet from Traefik's status")
    assert host_file.read_bytes().startswith(HOST_FILE_CONTENT), "the user's lines are untouched"

    step("curl by name: LB address -> Traefik -> backend")
    check_curl_through_traefik(cluster, host_file)

    since = len(traefik_status_updates(cluster))
    ip = lb.move_lb(cluster, ip, pool.pick_other(ip))
    assert ip in pool
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
        ip = lb.move_lb(cluster, ip, pool.pick_other(ip))
        assert ip in pool
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
