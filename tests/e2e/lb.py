"""A real load balancer and Ingress controller for the e2e: MetalLB (L2 mode) gives Traefik's LoadBalancer
Service an address from a pool inside the kind Docker network, and Traefik publishes that address into the
status of every Ingress of its class, as cloud-provider-kind and ingress-nginx do in the user's cluster.

The manifests are tests/e2e/manifests/*.yaml; MetalLB's CRDs come from its Go module (E2E_METALLB_CRDS)."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.e2e.conftest import Tools, step
from tests.helpers import eventually

MANIFESTS = Path(__file__).resolve().parent / "manifests"
TRAEFIK_NS, TRAEFIK_SVC = "traefik", "traefik"
POOL = "e2e-pool"


@dataclass(frozen=True)
class Pool:
    first: str
    last: str

    def __contains__(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return ipaddress.ip_address(self.first) <= address <= ipaddress.ip_address(self.last)

    def pick_other(self, ip: str) -> str:
        """The pool's last address, or its first when IP is the last: a move that MetalLB can honour."""
        return self.first if ip == self.last else self.last


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


def install_traefik(cluster: Tools, image: str) -> None:
    step("Traefik: kubernetesIngress provider, IngressClass traefik, a LoadBalancer Service it publishes")
    apply(cluster, render("traefik.yaml", TRAEFIK_IMAGE=image))
    cluster.kubectl_(
        "-n", TRAEFIK_NS, "rollout", "status", "deployment/traefik", "--timeout=180s", timeout=200
    )


def lb_address(cluster: Tools, not_ip: str | None = None) -> str:
    """The address MetalLB gave Traefik's Service (once it differs from NOT_IP), from MetalLB's pool."""

    def address() -> str | None:
        svc = cluster.kubectl_json("-n", TRAEFIK_NS, "get", "service", TRAEFIK_SVC)
        ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress") or []
        ip = ingress[0].get("ip") if ingress else None
        if ip and ip != not_ip:
            pool = svc["metadata"].get("annotations", {}).get("metallb.io/ip-allocated-from-pool")
            assert pool == POOL, (
                f"{TRAEFIK_NS}/{TRAEFIK_SVC} got {ip} from {pool!r}, not from MetalLB's {POOL}"
            )
            return ip
        return None

    ip = eventually(address, 120, interval=1, what=f"a LoadBalancer address on {TRAEFIK_NS}/{TRAEFIK_SVC}")

    def allocated() -> list[str]:
        lines = logs(cluster, "metallb-system", "deployment/controller", '"ipAllocated"')
        return [line for line in lines if f'"{ip}"' in line]

    print(
        "MetalLB controller:\n" + "\n".join(eventually(allocated, 30, 1, what=f"MetalLB's ipAllocated {ip}"))
    )
    print(
        f"{TRAEFIK_NS}/{TRAEFIK_SVC}: LoadBalancer address {ip} (metallb.io/ip-allocated-from-pool: {POOL})"
    )
    return ip


def move_lb(cluster: Tools, old_ip: str, new_ip: str) -> str:
    """An address change from the load balancer's side: Traefik's Service re-created, asking for NEW_IP."""
    step(f"the load balancer moves: {TRAEFIK_SVC} re-created with metallb.io/loadBalancerIPs={new_ip}")
    (service,) = [d for d in render("traefik.yaml", TRAEFIK_IMAGE="unused") if d["kind"] == "Service"]
    service["metadata"]["annotations"] = {"metallb.io/loadBalancerIPs": new_ip}
    cluster.kubectl_("-n", TRAEFIK_NS, "delete", "service", TRAEFIK_SVC, "--wait=true")
    apply(cluster, [service])
    ip = lb_address(cluster, not_ip=old_ip)
    assert ip == new_ip, f"MetalLB gave {ip}, not the requested {new_ip}"
    return ip


def status_writers(cluster: Tools, namespace: str, name: str) -> list[str]:
    """The field managers that wrote the Ingress's status (managedFields of the status subresource)."""
    ing = cluster.kubectl_json("-n", namespace, "get", "ingress", name, "--show-managed-fields")
    return sorted(
        {
            f"{m['manager']} ({m['operation']})"
            for m in ing["metadata"].get("managedFields", [])
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


def uninstall(cluster: Tools, crds: str, images: dict[str, str]) -> None:
    """Everything install_metallb and install_traefik made, so later modules see the cluster as before."""
    step("remove Traefik and MetalLB")
    traefik = render("traefik.yaml", TRAEFIK_IMAGE=images["traefik"])
    metallb = render(
        "metallb.yaml",
        METALLB_CONTROLLER_IMAGE=images["metallb_controller"],
        METALLB_SPEAKER_IMAGE=images["metallb_speaker"],
    )
    for docs in (traefik, metallb):
        cluster.kubectl_(
            "delete", "--ignore-not-found", "--wait=true", "--timeout=180s", "-f", "-",
            input=yaml.safe_dump_all(docs), timeout=240, check=False,
        )  # fmt: skip
    cluster.kubectl_("delete", "--ignore-not-found", "-f", crds, timeout=120, check=False)
