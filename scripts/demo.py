"""A real demonstration without a kind cluster: a local kube-apiserver + etcd, the user's Ingresses, the
controller writing a temporary hosts file, then an IP change, a deletion, metrics and shutdown cleanup.

Run with `make demo` (it builds or reuses the control-plane binaries first).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from kubernetes import client, config

from testkit.controlplane import ControlPlane
from testkit.ports import free_port
from testkit.samples import TYK_INGRESSES

CONTROLLER = [sys.executable, "-m", "controller"]
USER_CONTENT = b"# Existing entries...\n127.0.0.1 localhost\n::1 localhost\n"
INGRESSES = TYK_INGRESSES


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def show(path: Path) -> None:
    print(path.read_text(), end="", flush=True)


def wait(hosts_file: Path, *args: str) -> None:
    subprocess.run(
        [*CONTROLLER, "wait", "--hosts-file", str(hosts_file), "--timeout", "60s", *args], check=True
    )


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="k8s-hosts-controller-demo-"))
    step("starting a real kube-apiserver + etcd on loopback (RBAC on)")
    cp = ControlPlane(workdir / "controlplane").start()
    controller = None
    try:
        print(f"kube-apiserver {cp.version()} at {cp.url}")
        configuration = client.Configuration()
        config.load_kube_config(str(cp.kubeconfig), client_configuration=configuration)
        api = client.ApiClient(configuration)
        core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)

        step("creating the user's Ingresses (status set as cloud-provider-kind would: 172.18.0.200)")
        for ns in sorted({ns for ns, _, _ in INGRESSES}):
            core.create_namespace({"metadata": {"name": ns}})
        for ns, name, host in INGRESSES:
            net.create_namespaced_ingress(
                ns, {"metadata": {"name": name}, "spec": {"rules": [{"host": host}]}}
            )
            net.patch_namespaced_ingress_status(
                name, ns, {"status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.200"}]}}}
            )
            print(f"  {ns}/{name}: {host} -> 172.18.0.200")

        hosts_file = workdir / "hosts"
        hosts_file.write_bytes(USER_CONTENT)
        port = free_port()
        step(f"starting the controller on a temporary hosts file ({hosts_file})")
        controller = subprocess.Popen(
            [
                *CONTROLLER,
                "--namespaces",
                "tyk,tyk-dp-1,tyk-dp-2",
                "--hosts-file",
                str(hosts_file),
                "--kubeconfig",
                str(cp.kubeconfig),
                "--metrics-bind-address",
                f"127.0.0.1:{port}",
            ]
        )
        wait(
            hosts_file,
            "--ready-url",
            f"http://127.0.0.1:{port}/readyz",
            "--host",
            ",".join(host for _, _, host in INGRESSES),
        )
        show(hosts_file)

        step("the load balancer moves tyk/dashboard-ingress to 172.18.0.201")
        net.patch_namespaced_ingress_status(
            "dashboard-ingress", "tyk", {"status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.201"}]}}}
        )
        deadline = time.monotonic() + 30
        while b"172.18.0.201 chart-dash.local" not in hosts_file.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        show(hosts_file)

        step("deleting tyk/mdcb-ingress")
        net.delete_namespaced_ingress("mdcb-ingress", "tyk")
        wait(hosts_file, "--absent", "--host", "chart-mdcb.local")
        show(hosts_file)

        step("a few metrics from /metrics")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith(
                (
                    "k8s_hosts_controller_managed_entries",
                    "k8s_hosts_controller_writes_total",
                    "k8s_hosts_controller_watched_objects",
                    "k8s_hosts_controller_ready",
                )
            ):
                print(f"  {line}")

        step("SIGTERM: the controller removes its block and exits")
        controller.send_signal(signal.SIGTERM)
        print(f"controller exited with {controller.wait(timeout=30)}")
        controller = None
        show(hosts_file)
        assert hosts_file.read_bytes() == USER_CONTENT, "the user's file was not restored byte for byte"
        print("\nThe file is byte-identical to what it was before the controller started.")
        step("real usage")
        print(
            "  sudo -E k8s-hosts-controller --namespaces tyk,tyk-dp-1   # host mode, writes /etc/hosts\n"
            "  helm install hosts-sync ./chart --set namespaces={tyk}   # in-cluster DaemonSet (see README)"
        )
        return 0
    finally:
        if controller is not None:
            controller.kill()
            controller.wait()
        cp.stop()
        if not os.environ.get("KEEP_DEMO"):
            subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    sys.exit(main())
