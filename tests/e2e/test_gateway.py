"""End to end with a real Gateway API implementation, the way users leave ingress-nginx: Traefik's
kubernetesGateway provider serves a Gateway whose address is that of its LoadBalancer Service, given by
MetalLB; Traefik writes the Gateway's status.addresses and the HTTPRoute's status.parents itself. The
controller (the chart's DaemonSet with the ingress and gateway-httproute sources, then host mode with --source
gateway-httproute) writes the route's spec.hostnames at the Gateway's address, and `curl http://NAME/` from
the host, resolved through the managed file, goes LB address -> Traefik's Gateway -> backend pod. A detached
route leaves the file, the Gateway's address moving is followed with nothing restarted, an Ingress not yet
migrated shares the block with the HTTPRoute, and the chart's RBAC lets the pod read what the enabled sources
need and nothing else (docs/usage.md, "Migrating from ingress-nginx")."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import lb
from tests.e2e.conftest import (
    HOST_FILE_CONTENT,
    REPO_ROOT,
    HostsSync,
    Tools,
    chart_image_args,
    show_file,
    step,
)
from tests.e2e.test_kind import RELEASE, RELEASE_NS, check_then_uninstall, controller_pod
from tests.helpers import block_lines as block
from tests.helpers import eventually

# A kind cluster (or another module's), MetalLB, Traefik and two controller deployments: minutes.
pytestmark = pytest.mark.timeout(1500)

GATEWAY_NS, APPS_NS = "gw-infra", "gw-apps"  # the platform's Gateway; the application's routes
NAMESPACES = f"{APPS_NS},{GATEWAY_NS}"  # the controller watches the Gateway's namespace too
GATEWAY, PARENT = "web", {"name": "web", "namespace": "gw-infra"}
BACKEND = "gw-backend"
ROUTE, ROUTE_HOSTS = "app", ("gw-api.local", "gw-app.local")
INGRESS, INGRESS_HOST = "legacy", "gw-legacy.local"  # an Ingress of class traefik, not migrated yet
CONTROLLER_NAME = "traefik.io/gateway-controller"
FULLNAME = (
    f"{RELEASE}-k8s-hosts-controller"  # the chart's DaemonSet and ServiceAccount, for release hosts-sync
)


def route_doc() -> dict:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "namespace": APPS_NS},
        "spec": {
            "parentRefs": [PARENT],
            "hostnames": list(ROUTE_HOSTS),
            "rules": [{"backendRefs": [{"name": BACKEND, "port": 80}]}],
        },
    }


@pytest.fixture(scope="module")
def pool(cluster: Tools, lb_pool: lb.Pool, images: dict[str, str]) -> Iterator[lb.Pool]:
    """The Gateway (gw-infra/web), a backend, the HTTPRoute and the Ingress (gw-apps) on the session's MetalLB
    + Traefik; the namespaces and the GatewayClass go afterwards. Yields MetalLB's pool."""
    step(
        f"GatewayClass traefik, Gateway {GATEWAY_NS}/{GATEWAY}, a backend, HTTPRoute and Ingress in {APPS_NS}"
    )
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in (GATEWAY_NS, APPS_NS)
    ]
    try:
        lb.apply(
            cluster,
            [
                *namespaces,
                *lb.render("gateway.yaml", GATEWAY_NS=GATEWAY_NS),
                *lb.backend_docs(APPS_NS, BACKEND, images["python"]),
                route_doc(),
                lb.ingress_doc(APPS_NS, INGRESS, INGRESS_HOST, BACKEND),
            ],
        )
        cluster.kubectl_(
            "-n", APPS_NS, "rollout", "status", f"deployment/{BACKEND}", "--timeout=180s", timeout=200
        )
        yield lb_pool
    finally:
        step("remove the Gateway's and the routes' namespaces and the GatewayClass")
        cluster.kubectl_(
            "delete", "--ignore-not-found", "--wait=false", "namespace", GATEWAY_NS, APPS_NS, check=False
        )
        cluster.kubectl_("delete", "--ignore-not-found", "gatewayclass", "traefik", check=False)


def gateway_addresses(cluster: Tools) -> list[dict]:
    gw = cluster.kubectl_json("-n", GATEWAY_NS, "get", "gateway", GATEWAY)
    return gw.get("status", {}).get("addresses") or []


def check_gateway_status(cluster: Tools, ip: str) -> None:
    """The Gateway's status.addresses is IP, written by Traefik (its field manager on the status)."""
    want = [{"type": "IPAddress", "value": ip}]
    eventually(lambda: gateway_addresses(cluster) == want, 120, 1, what=f"Gateway {GATEWAY} at {ip}")
    gw = cluster.kubectl_json("-n", GATEWAY_NS, "get", "gateway", GATEWAY)
    conditions = {c["type"]: c["status"] for c in gw["status"].get("conditions", [])}
    writers = lb.status_writers(cluster, GATEWAY_NS, GATEWAY, "gateway")
    print(f"{GATEWAY_NS}/{GATEWAY}: status.addresses {want}, conditions {conditions}, written by {writers}")
    assert conditions.get("Programmed") == "True", f"Traefik did not program the Gateway: {conditions}"
    assert any(w.startswith("traefik") for w in writers), f"Traefik did not write {GATEWAY}'s status"


def route_parents(cluster: Tools) -> list[dict]:
    route = cluster.kubectl_json("-n", APPS_NS, "get", "httproute", ROUTE)
    return route.get("status", {}).get("parents") or []


def accepted(parent: dict) -> str:
    return next((c["status"] for c in parent.get("conditions", []) if c["type"] == "Accepted"), "")


def check_route_status(cluster: Tools, parent: dict, status: str) -> None:
    """Traefik wrote Accepted=STATUS for PARENT into the route's status.parents."""

    def written() -> list[dict] | None:
        parents = route_parents(cluster)
        for p in parents:
            ref, mine = p["parentRef"], p["controllerName"] == CONTROLLER_NAME
            same = ref["name"] == parent["name"] and ref.get("sectionName") == parent.get("sectionName")
            if mine and same and accepted(p) == status:
                return parents
        return None

    parents = eventually(written, 60, 1, what=f"Accepted={status} for {parent} in {ROUTE}'s status")
    writers = lb.status_writers(cluster, APPS_NS, ROUTE, "httproute")
    summary = [(p["parentRef"], p["controllerName"], accepted(p)) for p in parents]
    print(f"{APPS_NS}/{ROUTE}: status.parents {summary}, written by {writers}")
    assert any(w.startswith("traefik") for w in writers), f"Traefik did not write {ROUTE}'s status"


def set_parent(cluster: Tools, parent: dict) -> None:
    patch = json.dumps({"spec": {"parentRefs": [parent]}})
    cluster.kubectl_("-n", APPS_NS, "patch", "httproute", ROUTE, "--type=merge", "-p", patch)


def route_lines(ip: str) -> list[str]:
    return [f"{ip} {host}  # {APPS_NS}/{ROUTE}" for host in ROUTE_HOSTS]


def expected_lines(gateway_ip: str, ingress_ip: str | None) -> list[str]:
    lines = route_lines(gateway_ip)
    if ingress_ip:
        lines.append(f"{ingress_ip} {INGRESS_HOST}  # {APPS_NS}/{INGRESS}")
    return sorted(lines)


def wait_block(host_file: Path, lines: list[str], what: str) -> None:
    eventually(lambda: block(host_file) == sorted(lines), 120, 0.5, what=what)
    show_file(host_file, what)


def curl_routes(cluster: Tools, host_file: Path) -> None:
    for host in ROUTE_HOSTS:
        lb.curl_through_traefik(cluster, host_file, host, APPS_NS, BACKEND, router="@kubernetesgateway")


def check_detach(cluster: Tools, host_file: Path, others: list[str], attached: list[str]) -> None:
    """The route leaves the file when its Gateway does not accept it (a listener it does not have) and when
    its parentRefs move to another Gateway, and comes back when re-attached; OTHERS stay throughout."""
    step("detach: the route asks for a listener the Gateway does not have (Traefik: Accepted=False)")
    not_accepted = {**PARENT, "sectionName": "no-such-listener"}
    set_parent(cluster, not_accepted)
    check_route_status(cluster, not_accepted, "False")
    wait_block(host_file, others, "the not accepted route's names gone")
    set_parent(cluster, PARENT)
    check_route_status(cluster, PARENT, "True")
    wait_block(host_file, attached, "the route accepted again")

    step("detach: the route's parentRefs move to a Gateway no controller serves")
    set_parent(cluster, {**PARENT, "name": "elsewhere"})
    wait_block(host_file, others, "the moved route's names gone")
    # Traefik v3.6 updates only routes that still name one of its Gateways: the old Accepted entry stays.
    stale = [(p["parentRef"]["name"], accepted(p)) for p in route_parents(cluster)]
    print(f"{APPS_NS}/{ROUTE}: spec.parentRefs names 'elsewhere'; status.parents left as {stale}")
    set_parent(cluster, PARENT)
    check_route_status(cluster, PARENT, "True")
    wait_block(host_file, attached, "the route attached again")


def check_rbac(cluster: Tools) -> None:
    """With sources {ingress, gateway-httproute} in gw-apps and gw-infra, the pod's own ServiceAccount token
    reads ingresses, gateways and httproutes there and nothing else; `kubectl auth can-i` agrees."""
    step("the chart's RBAC on the node: what the pod's ServiceAccount may read")
    subject = f"--as=system:serviceaccount:{RELEASE_NS}:{FULLNAME}"
    print(cluster.kubectl_("auth", "can-i", "--list", subject, "-n", APPS_NS).stdout)
    expected = {
        ("list", "ingresses.networking.k8s.io", APPS_NS): True,
        ("watch", "httproutes.gateway.networking.k8s.io", APPS_NS): True,
        ("list", "gateways.gateway.networking.k8s.io", GATEWAY_NS): True,
        ("create", "events", APPS_NS): True,
        ("get", "secrets", APPS_NS): False,
        ("list", "services", APPS_NS): False,
        ("list", "grpcroutes.gateway.networking.k8s.io", APPS_NS): False,  # gateway-grpcroute not enabled
        ("patch", "httproutes.gateway.networking.k8s.io", APPS_NS): False,
        ("list", "httproutes.gateway.networking.k8s.io", "default"): False,  # not a watched namespace
    }
    for (verb, resource, ns), allowed in expected.items():
        proc = cluster.kubectl_("auth", "can-i", verb, resource, "-n", ns, subject, check=False, quiet=True)
        print(f"can-i {verb} {resource} -n {ns}: {proc.stdout.strip()}")
        assert (proc.returncode == 0) == allowed, f"can-i {verb} {resource} -n {ns}: {proc.stdout.strip()}"

    # Real requests with the token mounted in the controller's pod, from the pod.
    probe = {
        f"/apis/gateway.networking.k8s.io/v1/namespaces/{APPS_NS}/httproutes": 200,
        f"/apis/gateway.networking.k8s.io/v1/namespaces/{GATEWAY_NS}/gateways": 200,
        f"/apis/networking.k8s.io/v1/namespaces/{APPS_NS}/ingresses": 200,
        f"/api/v1/namespaces/{APPS_NS}/secrets": 403,
        f"/api/v1/namespaces/{RELEASE_NS}/secrets": 403,
        f"/apis/gateway.networking.k8s.io/v1/namespaces/{APPS_NS}/grpcroutes": 403,
        "/apis/gateway.networking.k8s.io/v1/httproutes": 403,
    }
    pod = controller_pod(cluster)["metadata"]["name"]
    out = cluster.kubectl_(
        "-n", RELEASE_NS, "exec", pod, "--", "python3", "-c", TOKEN_PROBE, *probe, timeout=60
    ).stdout  # fmt: skip
    print(f"requests with {pod}'s own token:\n{out}")
    got = {path: int(code) for code, path, *_ in (line.split(" ", 2) for line in out.splitlines())}
    assert got == probe, f"the pod's token got {got}, expected {probe}"


# GET each path of argv with the pod's mounted ServiceAccount token; prints "STATUS PATH [reason]".
TOKEN_PROBE = """
import json, os, ssl, sys, urllib.error, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
token = open(sa + "token").read().strip()
ctx = ssl.create_default_context(cafile=sa + "ca.crt")
api = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
for path in sys.argv[1:]:
    req = urllib.request.Request(api + path, headers={"Authorization": "Bearer " + token})
    try:
        print(urllib.request.urlopen(req, context=ctx, timeout=10).status, path)
    except urllib.error.HTTPError as e:
        print(e.code, path, json.loads(e.read()).get("message", ""))
"""


def test_gateway_in_cluster(cluster: Tools, pool: lb.Pool, host_file: Path, images: dict[str, str]) -> None:
    gateway_ip = lb.lb_address(cluster, service=lb.GATEWAY_SVC)
    ingress_ip = lb.lb_address(cluster)
    step(f"Traefik published MetalLB's {gateway_ip} on the Gateway and accepted the HTTPRoute")
    check_gateway_status(cluster, gateway_ip)
    check_route_status(cluster, PARENT, "True")

    assert host_file.read_bytes() == HOST_FILE_CONTENT
    step(
        "helm install hosts-sync ./chart --set sources={ingress,gateway-httproute} "
        f"--set ingressClass={{traefik}} --set namespaces={{{NAMESPACES}}}"
    )
    cluster.helm_(
        "install", RELEASE, str(REPO_ROOT / "chart"), "--namespace", RELEASE_NS, "--create-namespace",
        *chart_image_args(images), "--set", f"namespaces={{{NAMESPACES}}}",
        "--set", "sources={ingress,gateway-httproute}", "--set", "ingressClass={traefik}",
        "--wait", "--timeout", "5m", timeout=360,
    )  # fmt: skip
    check_then_uninstall(
        cluster, host_file, lambda: check_in_cluster(cluster, pool, host_file, gateway_ip, ingress_ip)
    )


def check_in_cluster(
    cluster: Tools, pool: lb.Pool, host_file: Path, gateway_ip: str, ingress_ip: str
) -> None:
    both = expected_lines(gateway_ip, ingress_ip)
    wait_block(host_file, both, "the HTTPRoute's names at the Gateway's address, the Ingress's beside them")
    assert host_file.read_bytes().startswith(HOST_FILE_CONTENT), "the user's lines are untouched"

    step("curl by name: Gateway address -> Traefik's Gateway -> backend (and the Ingress through Traefik)")
    curl_routes(cluster, host_file)
    lb.curl_through_traefik(cluster, host_file, INGRESS_HOST, APPS_NS, BACKEND, router="@kubernetes")

    check_rbac(cluster)

    ingress_line = [line for line in both if INGRESS_HOST in line]
    check_detach(cluster, host_file, ingress_line, both)

    pod = controller_pod(cluster)
    gateway_ip = move_gateway(cluster, gateway_ip, pool)
    wait_block(host_file, expected_lines(gateway_ip, ingress_ip), "after the Gateway's address moved")
    curl_routes(cluster, host_file)
    after = controller_pod(cluster)
    restarts = [c["restartCount"] for c in after["status"]["containerStatuses"]]
    assert after["metadata"]["uid"] == pod["metadata"]["uid"] and restarts == [0], "the controller restarted"

    step("kubectl logs: the controller's lines for the route's names")
    out = cluster.kubectl_("-n", RELEASE_NS, "logs", f"daemonset/{FULLNAME}", quiet=True).stdout
    lines = [line for line in out.splitlines() if any(h in line for h in (*ROUTE_HOSTS, INGRESS_HOST))]
    print("\n".join(lines))
    for host in ROUTE_HOSTS:
        assert any(f"added {host}" in line for line in lines), f"no 'added {host}' line"
        assert any(f"removed {host}" in line for line in lines), f"no 'removed {host}' line"
        assert moved_to(lines, host, gateway_ip), f"no line for {host} at the moved address {gateway_ip}"


def moved_to(lines: list[str], host: str, ip: str) -> bool:
    """A line that writes HOST at IP: 'updated', or 'added' after a moment without any address."""
    return any(f"updated {host} -> {ip}" in line or f"added {host} -> {ip}" in line for line in lines)


def move_gateway(cluster: Tools, old_ip: str, pool: lb.Pool) -> str:
    """The Gateway's LoadBalancer Service re-created with another MetalLB address; prints the Gateway's
    status.addresses as Traefik wrote them meanwhile (a watch), and checks where they end."""
    argv = [
        cluster.kubectl, "--kubeconfig", str(cluster.kubeconfig), "-n", GATEWAY_NS, "get", "gateway", GATEWAY,
        "--watch", "--output-watch-events", "-o", "jsonpath={.type} {.object.status.addresses}{'\\n'}",
    ]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as watch:
        try:
            ip = lb.move_lb(cluster, old_ip, pool, service=lb.GATEWAY_SVC)
            check_gateway_status(cluster, ip)
        finally:
            watch.terminate()
        seen = watch.communicate(timeout=30)[0]
    print(f"{GATEWAY_NS}/{GATEWAY} status.addresses while the Service was re-created (kubectl get --watch):")
    print(seen)
    return ip


def test_gateway_host_mode(cluster: Tools, pool: lb.Pool, host_file: Path, tmp_path: Path) -> None:
    """scripts/hosts-sync.sh with the CLI on the host and only --source gateway-httproute: the route's names,
    not the Ingress's; a detached route leaves, and the Gateway's address moves again while it runs."""
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    gateway_ip = lb.lb_address(cluster, service=lb.GATEWAY_SVC)
    hosts_sync = HostsSync(cluster, host_file, NAMESPACES, tmp_path, "--source", "gateway-httproute")

    step("host mode: scripts/hosts-sync.sh start (--source gateway-httproute)")
    try:
        hosts_sync("start")
        hosts_sync("wait", *ROUTE_HOSTS)
        wait_block(host_file, route_lines(gateway_ip), "written by the controller on the host")
        curl_routes(cluster, host_file)
        check_detach(cluster, host_file, [], route_lines(gateway_ip))

        pid = Path(hosts_sync.env["HOSTS_SYNC_PID_FILE"]).read_text().strip()
        gateway_ip = move_gateway(cluster, gateway_ip, pool)
        wait_block(
            host_file, route_lines(gateway_ip), "after the Gateway moved, the controller still running"
        )
        curl_routes(cluster, host_file)
        assert Path(hosts_sync.env["HOSTS_SYNC_PID_FILE"]).read_text().strip() == pid, (
            "the controller restarted"
        )
    finally:
        hosts_sync("stop")
    print(hosts_sync.log())
    for host in ROUTE_HOSTS:
        assert moved_to(hosts_sync.log().splitlines(), host, gateway_ip), f"{host} at {gateway_ip} not logged"
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    print("byte-identical to the file before start")


# Two Gateways, one listener each with a wildcard hostname, and one route naming a host under each.
SPLIT_GATEWAYS = {"gw-one": "*.one.local", "gw-two": "*.two.local"}
SECOND_SVC = "traefik-gateway-two"  # a second address for Traefik's gateway entryPoint
SPLIT_ROUTE, SPLIT_HOSTS = "split", {"app.one.local": "gw-one", "app.two.local": "gw-two"}


def split_docs(two_ip: str) -> list[dict]:
    annotations = {"gw-two": {"k8s-hosts-controller.io/target": two_ip}}
    gateways = [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": name, "namespace": GATEWAY_NS, "annotations": annotations.get(name, {})},
            "spec": {
                "gatewayClassName": "traefik",
                "listeners": [
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "port": 8001,
                        "hostname": hostname,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        }
        for name, hostname in SPLIT_GATEWAYS.items()
    ]
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": SPLIT_ROUTE, "namespace": APPS_NS},
        "spec": {
            "parentRefs": [{"name": name, "namespace": GATEWAY_NS} for name in SPLIT_GATEWAYS],
            "hostnames": list(SPLIT_HOSTS),
            "rules": [{"backendRefs": [{"name": BACKEND, "port": 80}]}],
        },
    }
    return [*gateways, route]


def own_address(cluster: Tools, gateway: str) -> str | None:
    """GATEWAY's single IP in its status.addresses, once Traefik programmed it."""
    gw = cluster.kubectl_json("-n", GATEWAY_NS, "get", "gateway", gateway)
    status = gw.get("status", {})
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    ips = [a["value"] for a in status.get("addresses") or [] if a.get("type", "IPAddress") == "IPAddress"]
    return ips[0] if conditions.get("Programmed") == "True" and len(ips) == 1 else None


def split_accepted(cluster: Tools) -> list | None:
    route = cluster.kubectl_json("-n", APPS_NS, "get", "httproute", SPLIT_ROUTE)
    parents = route.get("status", {}).get("parents") or []
    ok = {p["parentRef"]["name"] for p in parents if accepted(p) == "True"}
    return parents if ok == set(SPLIT_GATEWAYS) else None


def routers_for(cluster: Tools, host_file: Path, host: str) -> list[str]:
    """curl http://HOST/ by name answers with the backend's body; returns the Traefik routers that Traefik's
    access log shows proxying the requests made meanwhile to the backend's pods."""
    access = '"GET / HTTP/1.1" 200'
    seen = len(lb.logs(cluster, lb.TRAEFIK_NS, "deployment/traefik", access))
    out = eventually(lambda: lb.try_curl(host_file, host), 60, 2, what=f"curl http://{host}/")
    assert lb.backend_body(APPS_NS, BACKEND) in out, f"http://{host}/ did not answer with {BACKEND}: {out!r}"
    pods = cluster.kubectl_json("-n", APPS_NS, "get", "pods", "-l", f"app={BACKEND}")["items"]
    pod_ips = {p["status"]["podIP"] for p in pods}

    def new_lines() -> list[str] | None:
        lines = lb.logs(cluster, lb.TRAEFIK_NS, "deployment/traefik", access)[seen:]
        found = re.findall(r'"([^"\s]+@kubernetesgateway)" "http://([0-9.]+):8080"', "\n".join(lines))
        return [router for router, ip in found if ip in pod_ips] or None

    routers = eventually(new_lines, 30, 1, what=f"Traefik's access log line for http://{host}/")
    print(f"http://{host}/ proxied to {APPS_NS}/{BACKEND} by {routers}")
    return routers


def test_gateway_split_listeners(cluster: Tools, pool: lb.Pool, host_file: Path, tmp_path: Path) -> None:
    """Two Gateways, listeners `*.one.local` and `*.two.local`, and one HTTPRoute naming app.one.local and
    app.two.local with both Gateways as parents: the controller (host mode) writes each name once, at the
    address of the Gateway whose listener admits it, and `curl` by each name reaches the backend through a
    router Traefik built for that Gateway's listener.

    Traefik's kubernetesGateway provider copies one Service's address (--providers.kubernetesgateway.
    statusaddress) into the status of every Gateway it serves, so by status both Gateways share one IP. To
    tell them apart in the file, gw-two is reached through a second LoadBalancer Service on that entryPoint
    and says so with the target annotation (which stands for a Gateway's status addresses): a name written at
    every parent's address would show twice. Which Gateway served a request is told by Traefik's access log:
    the router's name carries the Gateway's name, and Traefik builds gw-one's router only for app.one.local
    (the listener hostname intersected with the route's)."""
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    gateway_ip = lb.lb_address(cluster, service=lb.GATEWAY_SVC)
    step("two Gateways (*.one.local, *.two.local) and HTTPRoute split naming a host under each")
    second = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SECOND_SVC, "namespace": lb.TRAEFIK_NS},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "traefik"},
            "ports": [{"name": "gateway", "port": 80, "targetPort": "gateway"}],
        },
    }
    lb.apply(cluster, [second])
    hosts_sync = HostsSync(cluster, host_file, NAMESPACES, tmp_path, "--source", "gateway-httproute")
    try:
        two_ip = lb.lb_address(cluster, service=SECOND_SVC)
        assert two_ip != gateway_ip
        lb.apply(cluster, split_docs(two_ip))
        statuses = {
            gw: eventually(lambda gw=gw: own_address(cluster, gw), 120, 1, what=f"{gw} programmed")
            for gw in SPLIT_GATEWAYS
        }
        print(f"status.addresses written by Traefik: {statuses} (the Gateway Service: {gateway_ip})")
        assert statuses == {"gw-one": gateway_ip, "gw-two": gateway_ip}
        addresses = {"gw-one": gateway_ip, "gw-two": two_ip}  # gw-two's target annotation
        parents = eventually(lambda: split_accepted(cluster), 60, 1, what=f"{SPLIT_ROUTE} accepted by both")
        print(f"{APPS_NS}/{SPLIT_ROUTE}: status.parents {[(p['parentRef'], accepted(p)) for p in parents]}")

        step("host mode: scripts/hosts-sync.sh start (--source gateway-httproute)")
        hosts_sync("start")
        hosts_sync("wait", *SPLIT_HOSTS)
        split = [f"{addresses[gw]} {host}  # {APPS_NS}/{SPLIT_ROUTE}" for host, gw in SPLIT_HOSTS.items()]
        wait_block(host_file, route_lines(gateway_ip) + split, "one line per name, at its Gateway's address")
        for host, gw in SPLIT_HOSTS.items():
            mine = [line for line in block(host_file) if line.split()[1] == host]
            assert mine == [f"{addresses[gw]} {host}  # {APPS_NS}/{SPLIT_ROUTE}"], f"{host}: {mine}"

        step("curl by each name: Traefik's access log names the Gateway whose listener matched")
        for host, gw in SPLIT_HOSTS.items():
            other = next(g for g in SPLIT_GATEWAYS if g != gw)
            routers = routers_for(cluster, host_file, host)
            assert all(gw in r and other not in r for r in routers), f"{host} not routed by {gw}: {routers}"
    finally:
        hosts_sync("stop")
        cluster.kubectl_("-n", APPS_NS, "delete", "--ignore-not-found", "httproute", SPLIT_ROUTE, check=False)
        names = list(SPLIT_GATEWAYS)
        cluster.kubectl_("-n", GATEWAY_NS, "delete", "--ignore-not-found", "gateway", *names, check=False)
        cluster.kubectl_(
            "-n", lb.TRAEFIK_NS, "delete", "--ignore-not-found", "service", SECOND_SVC, check=False
        )
    print(hosts_sync.log())
    assert host_file.read_bytes() == HOST_FILE_CONTENT
