"""A real load balancer, Ingress controller and Gateway for the e2e: MetalLB (L2 mode) gives Traefik's two
LoadBalancer Services addresses from a pool inside the kind Docker network; Traefik publishes the first into
the status of every Ingress of its class, as cloud-provider-kind and ingress-nginx do in the user's cluster,
and the second into the status.addresses of the Gateways of its GatewayClass (kubernetesGateway provider).

Installed once per session (the lb_pool fixture of conftest.py) and shared by test_lb.py and test_gateway.py.
The manifests are tests/e2e/manifests/*.yaml; MetalLB's CRDs come from its Go module (E2E_METALLB_CRDS), the
Gateway API standard channel from sigs.k8s.io/gateway-api at Traefik's version (E2E_GATEWAY_CRDS)."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.e2e.conftest import Tools, curl_by_name, env_or_fail, load_images, step
from tests.helpers import eventually

MANIFESTS = Path(__file__).resolve().parent / "manifests"
TRAEFIK_NS, TRAEFIK_SVC = "traefik", "traefik"
GATEWAY_SVC = "traefik-gateway"  # the address of the Gateways (--providers.kubernetesgateway.statusaddress)
POOL = "e2e-pool"


@dataclass(frozen=True)
class Pool:
    first: str
    last: str

    def __contains__(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return ipaddress.ip_address(self.first) <= address <= ipaddress.ip_address(self.last)


def render(name: str, **values: str) -> list[dict]:
    """The manifest's documents with every ${NAME} replaced by VALUES[NAME] (a missing one is an error)."""
    text = re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], (MANIFESTS / name).read_text())
    return [doc for doc in yaml.safe_load_all(text) if doc]


def apply(cluster: Tools, docs: list[dict], *args: str) -> None:
    cluster.kubectl_("apply", *args, "-f", "-", input=yaml.safe_dump_all(docs))


def kind_pool() -> Pool:
    """Addresses .200 to .250 of the last /24 of the kind Docker network's IPv4 subnet: on that network, so
    the host reaches them (the speaker answers ARP for them from the node), and far from the addresses Docker
    hands out from the start of the subnet."""
    out = subprocess.run(
        ["docker", "network", "inspect", "kind", "--format", "{{json .IPAM.Config}}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    subnets = [c["Subnet"] for c in json.loads(out) if ":" not in c["Subnet"]]
    assert subnets, f"the kind Docker network has no IPv4 subnet: {out}"
    network = ipaddress.ip_network(subnets[0])
    assert network.prefixlen <= 24, f"the kind network {network} is too small for an address pool"
    top = network.broadcast_address
    return Pool(str(top - 55), str(top - 5))


def install_metallb(cluster: Tools, crds: str, controller_image: str, speaker_image: str, pool: Pool) -> None:
    step(f"MetalLB (L2): CRDs from the module ({crds}), controller, speaker, pool {pool.first}-{pool.last}")
    cluster.kubectl_("apply", "--server-side", "-f", crds)
    cluster.kubectl_("wait", "--for=condition=Established", "--timeout=60s", "-f", crds, quiet=True)
    apply(
        cluster,
        render(
            "metallb.yaml", METALLB_CONTROLLER_IMAGE=controller_image, METALLB_SPEAKER_IMAGE=speaker_image
        ),
    )
    for workload in ("deployment/controller", "daemonset/speaker"):
        cluster.kubectl_("-n", "metallb-system", "rollout", "status", workload, "--timeout=180s", timeout=200)
    apply(
        cluster,
        [
            {
                "apiVersion": "metallb.io/v1beta1",
                "kind": "IPAddressPool",
                "metadata": {"name": POOL, "namespace": "metallb-system"},
                "spec": {"addresses": [f"{pool.first}-{pool.last}"]},
            },
            {
                "apiVersion": "metallb.io/v1beta1",
                "kind": "L2Advertisement",
                "metadata": {"name": "e2e", "namespace": "metallb-system"},
                "spec": {"ipAddressPools": [POOL]},
            },
        ],
    )


def install_gateway_crds(cluster: Tools, crds: str) -> None:
    """The Gateway API standard-channel CRDs; a no-op when the cluster has them at this bundle version."""
    bundle = bundle_version(crds)
    present = cluster.kubectl_(
        "get", "crd", "gateways.gateway.networking.k8s.io", "--ignore-not-found",
        "-o", "jsonpath={.metadata.annotations.gateway\\.networking\\.k8s\\.io/bundle-version}", quiet=True,
    ).stdout.strip()  # fmt: skip
    if present == bundle:
        step(f"Gateway API CRDs {bundle} (standard channel): present")
        return
    step(f"Gateway API CRDs {bundle} (standard channel) from the module ({crds})")
    print(cluster.kubectl_("apply", "--server-side", "-f", crds).stdout)
    cluster.kubectl_("wait", "--for=condition=Established", "--timeout=60s", "-f", crds, quiet=True)


def bundle_version(crds: str) -> str:
    doc = yaml.safe_load((Path(crds) / "gateway.networking.k8s.io_gateways.yaml").read_text())
    return doc["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]


def install_traefik(cluster: Tools, image: str) -> None:
    step(
        "Traefik: kubernetesIngress provider (IngressClass traefik) and kubernetesGateway provider "
        "(entryPoint gateway), each with a LoadBalancer Service it publishes"
    )
    apply(cluster, render("traefik.yaml", TRAEFIK_IMAGE=image))
    cluster.kubectl_(
        "-n", TRAEFIK_NS, "rollout", "status", "deployment/traefik", "--timeout=180s", timeout=200
    )


def install(cluster: Tools) -> Pool:
    """MetalLB, the Gateway API CRDs and Traefik with both providers, both of its addresses from the pool."""
    images = {
        name: env_or_fail(f"E2E_{name.upper()}_IMAGE")
        for name in ("metallb_controller", "metallb_speaker", "traefik")
    }
    load_images(cluster, *images.values())
    pool = kind_pool()
    install_metallb(
        cluster,
        env_or_fail("E2E_METALLB_CRDS"),
        images["metallb_controller"],
        images["metallb_speaker"],
        pool,
    )
    install_gateway_crds(cluster, env_or_fail("E2E_GATEWAY_CRDS"))
    install_traefik(cluster, images["traefik"])
    for service in (TRAEFIK_SVC, GATEWAY_SVC):
        ip = lb_address(cluster, service=service)
        assert ip in pool, f"{ip} is not in MetalLB's pool {pool}"
    return pool


def lb_address(cluster: Tools, not_ip: str | None = None, service: str = TRAEFIK_SVC) -> str:
    """The address MetalLB gave Traefik's SERVICE (once it differs from NOT_IP), from MetalLB's pool."""

    def address() -> str | None:
        svc = cluster.kubectl_json("-n", TRAEFIK_NS, "get", "service", service)
        ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress") or []
        ip = ingress[0].get("ip") if ingress else None
        if ip and ip != not_ip:
            pool = svc["metadata"].get("annotations", {}).get("metallb.io/ip-allocated-from-pool")
            assert pool == POOL, f"{TRAEFIK_NS}/{service} got {ip} from {pool!r}, not from MetalLB's {POOL}"
            return ip
        return None

    ip = eventually(address, 120, interval=1, what=f"a LoadBalancer address on {TRAEFIK_NS}/{service}")

    def allocated() -> list[str]:
        lines = logs(cluster, "metallb-system", "deployment/controller", '"ipAllocated"')
        return [line for line in lines if f'"{ip}"' in line]

    print(
        "MetalLB controller:\n" + "\n".join(eventually(allocated, 30, 1, what=f"MetalLB's ipAllocated {ip}"))
    )
    print(f"{TRAEFIK_NS}/{service}: LoadBalancer address {ip} (metallb.io/ip-allocated-from-pool: {POOL})")
    return ip


def free_address(cluster: Tools, pool: Pool) -> str:
    """The highest pool address no LoadBalancer Service holds: a move that MetalLB can honour."""
    services = cluster.kubectl_json("get", "services", "--all-namespaces")["items"]
    used = {
        item.get("ip")
        for svc in services
        for item in svc.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    }
    first, last = ipaddress.ip_address(pool.first), ipaddress.ip_address(pool.last)
    return next(str(last - n) for n in range(int(last) - int(first) + 1) if str(last - n) not in used)


def move_lb(cluster: Tools, old_ip: str, pool: Pool, service: str = TRAEFIK_SVC) -> str:
    """An address change from the load balancer's side: Traefik's SERVICE re-created, asking MetalLB for
    another free address of the pool. Returns the new address."""
    new_ip = free_address(cluster, pool)
    step(f"the load balancer moves: {service} re-created with metallb.io/loadBalancerIPs={new_ip}")
    docs = render("traefik.yaml", TRAEFIK_IMAGE="unused")
    (svc,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == service]
    svc["metadata"]["annotations"] = {"metallb.io/loadBalancerIPs": new_ip}
    cluster.kubectl_("-n", TRAEFIK_NS, "delete", "service", service, "--wait=true")
    apply(cluster, [svc])
    ip = lb_address(cluster, not_ip=old_ip, service=service)
    assert ip == new_ip, f"MetalLB gave {ip}, not the requested {new_ip}"
    assert ip in pool
    return ip


def status_writers(cluster: Tools, namespace: str, name: str, resource: str = "ingress") -> list[str]:
    """The field managers that wrote the object's status (managedFields of the status subresource)."""
    obj = cluster.kubectl_json("-n", namespace, "get", resource, name, "--show-managed-fields")
    return sorted(
        {
            f"{m['manager']} ({m['operation']})"
            for m in obj["metadata"].get("managedFields", [])
            if m.get("subresource") == "status"
        }
    )


def ingress_ip(cluster: Tools, namespace: str, name: str) -> str | None:
    ing = cluster.kubectl_json("-n", namespace, "get", "ingress", name)
    lb = ing.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    return lb[0].get("ip") if lb else None


def logs(cluster: Tools, namespace: str, workload: str, grep: str) -> list[str]:
    out = cluster.kubectl_("-n", namespace, "logs", workload, "--tail=-1", quiet=True).stdout
    return [line for line in out.splitlines() if grep in line]


def backend_body(namespace: str, name: str) -> str:
    return f"hello from {namespace}/{name}"


def backend_docs(namespace: str, name: str, python_image: str) -> list[dict]:
    """A Deployment answering backend_body() on HTTP port 8080 (label app=NAME) and its Service on port 80."""
    labels = {"app": name}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {"runAsUser": 65534, "runAsGroup": 65534, "runAsNonRoot": True},
                        "containers": [
                            {
                                "name": "http",
                                "image": python_image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["sh", "-c"],
                                "args": [
                                    f"mkdir -p /tmp/srv && cd /tmp/srv && "
                                    f"echo '{backend_body(namespace, name)}' > index.html && "
                                    "exec python3 -m http.server 8080"
                                ],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    ]


def ingress_doc(namespace: str, name: str, host: str, backend: str) -> dict:
    """An Ingress of class traefik: HOST, every path, to BACKEND's Service port http."""
    path = {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": backend, "port": {"name": "http"}}},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ingressClassName": "traefik", "rules": [{"host": host, "http": {"paths": [path]}}]},
    }


def try_curl(host_file: Path, host: str) -> str | None:
    try:
        return curl_by_name(host_file, host)
    except AssertionError:
        return None


def curl_through_traefik(
    cluster: Tools, host_file: Path, host: str, namespace: str, backend: str, router: str = ""
) -> None:
    """curl http://HOST/ from the host, resolved through the managed file, answers with NAMESPACE/BACKEND's
    body, and Traefik's access log shows that request (a line more than before) proxied to that backend's
    pod, by a router whose name ends with ROUTER (@kubernetes: an Ingress; @kubernetesgateway: a route)."""
    access = '"GET / HTTP/1.1" 200'
    seen = len(logs(cluster, TRAEFIK_NS, "deployment/traefik", access))
    out = eventually(lambda: try_curl(host_file, host), 60, 2, what=f"curl http://{host}/")
    assert backend_body(namespace, backend) in out, f"http://{host}/ did not answer with {backend}: {out!r}"
    pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", f"app={backend}")["items"]
    pod_ips = [p["status"]["podIP"] for p in pods]
    lines = logs(cluster, TRAEFIK_NS, "deployment/traefik", access)[seen:]
    through = [
        line
        for line in lines
        if any(f"http://{ip}:8080" in line for ip in pod_ips) and f'{router}" "http://' in line
    ]
    print(f"Traefik's access log for {namespace}/{backend} ({', '.join(pod_ips)}):\n" + "\n".join(through))
    assert through, (
        f"Traefik's access log has no request for {host} proxied to {namespace}/{backend} by {router}"
    )
