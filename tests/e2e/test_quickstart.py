"""docs/usage.md's Quick start, top to bottom on one kind cluster: host mode first (the default write mode,
nothing forced), then the in-cluster section on the same cluster, the names checked at every step on the host
(resolved through the file, curl by name) and from the kind node (the file it bind-mounts, resolved there).

Host mode's default (`auto`) write mode once replaced the file by rename: the node kept the old inode, and the
DaemonSet installed next wrote to an orphaned file, with no error anywhere. Here the inode the node sees is
checked after every step, and the in-cluster names must reach the host.

Offline stand-ins, as everywhere in the e2e: the session's cluster from kind-config.yaml with MetalLB and
Traefik (conftest.py, lb.py) instead of `scripts/create-cluster.sh`'s cloud-provider-kind and ingress-nginx
(whose images come from the internet), so examples/ingress/echo.yaml is applied with class traefik and a
Python echo server in place of agnhost's netexec. The end of the day (`create-cluster.sh delete`) deletes a
cluster, so it runs on a throw-away one in test_stale.py."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e import lb
from tests.e2e.conftest import (
    HOST_FILE_CONTENT,
    REPO_ROOT,
    HostsSync,
    Tools,
    curl_by_name,
    show_file,
    step,
    tools_path,
)
from tests.helpers import block_lines as block
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(900)

ECHO = REPO_ROOT / "examples" / "ingress" / "echo.yaml"
NAMESPACES = "echo-a,echo-b"  # the Quick start's HOSTS_SYNC_NAMESPACES
# examples/ingress/echo.yaml's names and the Ingress (namespace/name) of each.
OWNERS = {
    "echo-a.hosts-sync.test": "echo-a/echo",
    "echo-b.hosts-sync.test": "echo-b/echo",
    "extra-a.hosts-sync.test": "echo-a/extra",
}
HOSTS = list(OWNERS)
NODE_PATH = "/mnt/host-etc-hosts/hosts"  # kind-config.yaml's containerPath
# agnhost netexec's /echo?msg=M answers M; /healthz answers for the readiness probe.
ECHO_SERVER = """
import http.server, urllib.parse
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        body = urllib.parse.parse_qs(url.query).get("msg", [""])[0] if url.path == "/echo" else "ok"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())
http.server.ThreadingHTTPServer(("", 8080), Echo).serve_forever()
"""


def echo_docs(python_image: str) -> list[dict]:
    """examples/ingress/echo.yaml with the offline stand-ins: class traefik, the Python echo server."""
    docs = [doc for doc in yaml.safe_load_all(ECHO.read_text()) if doc]
    for doc in docs:
        if doc["kind"] == "Ingress":
            assert doc["spec"]["ingressClassName"] == "nginx"
            doc["spec"]["ingressClassName"] = "traefik"
        elif doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            assert container["image"].startswith("registry.k8s.io/e2e-test-images/agnhost:")
            container.update(image=python_image, imagePullPolicy="IfNotPresent", args=["-c", ECHO_SERVER])
            container["command"] = ["python3"]
    owners = {
        rule["host"]: f"{doc['metadata']['namespace']}/{doc['metadata']['name']}"
        for doc in docs
        if doc["kind"] == "Ingress"
        for rule in doc["spec"]["rules"]
    }
    assert owners == OWNERS, f"{ECHO} names {owners}"
    return docs


@pytest.fixture(scope="module")
def echo(cluster: Tools, lb_pool: lb.Pool, images: dict[str, str]) -> Iterator[str]:
    """`kubectl apply -f examples/ingress/echo.yaml` on the session's MetalLB + Traefik; yields the address
    Traefik publishes into the Ingresses' status. The namespaces go afterwards."""
    step("kubectl apply -f examples/ingress/echo.yaml (class traefik, a Python echo server)")
    docs = echo_docs(images["python"])
    try:
        lb.apply(cluster, docs)
        for doc in docs:
            if doc["kind"] == "Deployment":
                namespace, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
                cluster.kubectl_(
                    "-n", namespace, "rollout", "status", f"deployment/{name}", "--timeout=180s", timeout=200
                )  # fmt: skip
        ip = lb.lb_address(cluster)
        ingresses = [
            (d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Ingress"
        ]

        def published() -> bool:
            return all(lb.ingress_ip(cluster, namespace, name) == ip for namespace, name in ingresses)

        eventually(published, 120, 1, what=f"Traefik's address {ip} in the status of {ingresses}")
        yield ip
    finally:
        step("remove the echo namespaces (not waiting: nothing later uses them)")
        cluster.kubectl_("delete", "--ignore-not-found", "--wait=false", "namespace", *NAMESPACES.split(","))


def node_name() -> str:
    return f"{os.environ.get('E2E_CLUSTER', 'k8s-hosts-e2e')}-control-plane"


def node_view(node: str) -> bytes:
    """The file as the kind node sees it, through its bind mount."""
    return subprocess.run(["docker", "exec", node, "cat", NODE_PATH], capture_output=True, check=True).stdout


def node_resolves(node: str, host: str) -> str:
    """HOST resolved on the kind node through the file it mounts (getent, in a mount namespace of its own
    that binds the mounted file over the node's /etc/hosts); the address, or "" when it does not resolve."""
    script = f'mount --bind {NODE_PATH} /etc/hosts && getent hosts "$1"'
    argv = ["docker", "exec", node, "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "-"]
    proc = subprocess.run([*argv, host], capture_output=True, text=True, timeout=30)
    return proc.stdout.split()[0] if proc.returncode == 0 else ""


def check_both_sides(host_file: Path, node: str, inode: int, expected: dict[str, str]) -> None:
    """The node sees the host's file (same inode, same bytes); each name in EXPECTED resolves to its
    address there, and "" means absent."""
    assert host_file.stat().st_ino == inode, "the hosts file was replaced: the node keeps the old inode"
    assert node_view(node) == host_file.read_bytes(), "the node sees another file than the host"
    for host, address in expected.items():
        assert node_resolves(node, host) == address, f"{host} on the node: expected {address or 'absent'}"
    print(f"the node sees the host's file (inode {inode}); {expected} resolve there", flush=True)


def check_names(host_file: Path, node: str, inode: int, ip: str, curled: str) -> None:
    """Every name of echo.yaml in the block at IP, seen alike on the node, and `curl` by CURLED answers."""
    assert block(host_file) == sorted(f"{ip} {host}  # {owner}" for host, owner in OWNERS.items())
    check_both_sides(host_file, node, inode, dict.fromkeys(HOSTS, ip))
    out = curl_by_name(host_file, curled, "/echo?msg=hello")
    assert out.splitlines()[-1] == "hello", out


def test_quick_start_on_one_cluster(
    cluster: Tools, echo: str, host_file: Path, tmp_path: Path, images: dict[str, str]
) -> None:
    node, ip = node_name(), echo
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    inode = host_file.stat().st_ino
    check_both_sides(host_file, node, inode, dict.fromkeys(HOSTS, ""))

    step("host mode: HOSTS_SYNC_NAMESPACES=echo-a,echo-b scripts/hosts-sync.sh start (default write mode)")
    (tmp_path / "host").mkdir()
    hosts_sync = HostsSync(cluster, host_file, NAMESPACES, tmp_path / "host")
    del hosts_sync.env["HOSTS_SYNC_WRITE_MODE"]  # as the Quick start has it: auto
    try:
        hosts_sync("start")
        hosts_sync("wait", *HOSTS[:2])
        show_file(host_file, "written by host mode")
        check_names(host_file, node, inode, ip, HOSTS[0])
        assert "bind-mounted elsewhere" in hosts_sync.log(), "auto did not say why it writes in place"
    finally:
        hosts_sync("stop")
    assert host_file.read_bytes() == HOST_FILE_CONTENT, "stop left bytes behind"
    check_both_sides(host_file, node, inode, dict.fromkeys(HOSTS, ""))

    step("in-cluster mode on the same cluster: HOSTS_SYNC_MODE=cluster scripts/hosts-sync.sh start")
    in_cluster = HostsSync(cluster, host_file, NAMESPACES, tmp_path / "cluster")
    del in_cluster.env["HOSTS_SYNC_WRITE_MODE"]  # the chart's own (inplace)
    in_cluster.env.update(
        HOSTS_SYNC_MODE="cluster", HOSTS_SYNC_IMAGE=images["controller"], PATH=tools_path(cluster)
    )
    try:
        in_cluster("start", HOSTS[0])
        in_cluster("status")
        in_cluster("metrics")
        in_cluster("wait", *HOSTS)
        show_file(host_file, "written by the chart's DaemonSet through the node's mount")
        check_names(host_file, node, inode, ip, HOSTS[1])
    finally:
        in_cluster("stop")
    assert host_file.read_bytes() == HOST_FILE_CONTENT, "helm uninstall left bytes behind"
    check_both_sides(host_file, node, inode, dict.fromkeys(HOSTS, ""))
    print("byte-identical to the file before the Quick start, on the host and on the node")
